"""Issue 21: the shortcuts of the per-item path give what the long way gives (program memo, the checks'
shared depends_on, venn's windowed coverage, the balance pass's plain-JSON read)."""

import importlib.metadata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError
from deltaprompts.generate import GenerateConfig, _balance_view, _make_items, generate, resolve_all_knobs
from deltaprompts.generators import FAMILIES
from deltaprompts.generators import venn
from deltaprompts.questions import load_templates
from deltaprompts.store import RunStore
from deltaprompts.verifiers import checks


def _items(family: str, n: int = 4):
    fam = FAMILIES.get(family)()
    knobs = fam.resolve_knobs({})
    cfg = GenerateConfig(families=[family], n=2 * n, knobs={family: knobs}, questions_per_image=2)
    out = []
    for i in range(n):
        spec = fam.sample(0, i, knobs)
        out += _make_items(cfg, load_templates(), fam.render(spec), spec, 2, 0, Counter())
    return out


@pytest.mark.parametrize("family", ["scene.shapes", "scene.maze"])
def test_memo_gives_the_values_and_errors_of_plain_execution(family):
    items = _items(family)
    assert items
    for it in items:
        program, facts = it.question.program, it.facts
        plain = engine.execute(program, facts)
        with engine.memo():
            first, again = engine.execute(program, facts), engine.execute(program, facts)
            assert first == plain and again is first
            assert engine.degenerate_step(program, facts) == engine.degenerate_step(program, facts)
    # an ill-posed program raises the same reason every time inside the memo, as outside
    bad = engine.parse("unique(filter[attr=color, value=nosuchcolor](scene()))")
    with pytest.raises(ProgramError) as plain_err:
        engine.execute(bad, items[0].facts)
    with engine.memo():
        for _ in range(2):
            with pytest.raises(ProgramError) as memo_err:
                engine.execute(bad, items[0].facts)
            assert memo_err.value.reason == plain_err.value.reason


def test_memo_is_scoped_to_its_block_and_its_facts():
    items = _items("scene.shapes", 2)
    a, b = items[0], items[-1]
    with engine.memo():
        va = engine.execute(a.question.program, a.facts)
        # the same program over other Facts is run again, not taken from the memo
        assert engine.execute(a.question.program, b.facts) == engine.execute(a.question.program, b.facts)
    assert engine._memo is None
    assert engine.execute(a.question.program, a.facts) == va


def test_check_item_shares_depends_on_and_rejects_as_before():
    tried = 0
    for it in _items("chart.grouped_bar", 3) + _items("document.invoice", 2):
        used, texts = checks.depends_on(it)
        assert checks.check_item(it) == []
        assert checks.depends_on(it) == (used, texts)  # nothing cached outside check_item
        # a needed text drawn over by another is still caught with the disjoint-box shortcut
        t = texts[0] if texts else None
        if t is not None:
            clash = t.model_copy(update={"text": t.text + "x", "box": (t.box[0] + 1, t.box[1], t.box[2] + 1, t.box[3])})
            bad = it.model_copy(update={"facts": it.facts.model_copy(update={"texts": [*it.facts.texts, clash]})})
            assert "text_overlap" in checks.check_item(bad)
            tried += 1
    assert tried >= 3


def test_venn_windowed_coverage_equals_the_whole_image():
    size, ss = 120, 3
    for circ in (venn.circles(2, size), venn.circles(3, size)):
        yy, xx = (np.mgrid[0:size * ss, 0:size * ss] + 0.5) / ss
        for cx, cy, r in circ:
            dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            fill = (dist < r).reshape(size, ss, size, ss).mean((1, 3))[..., None]
            ring = (np.abs(dist - r) < venn.STROKE / 2).reshape(size, ss, size, ss).mean((1, 3))[..., None]
            win, wfill, wring = venn._coverage((cx, cy, r), size, ss)
            full_fill, full_ring = np.zeros_like(fill), np.zeros_like(ring)
            full_fill[win], full_ring[win] = wfill, wring
            assert np.array_equal(full_fill, fill) and np.array_equal(full_ring, ring)
            assert not wfill.flags.writeable  # cached: shared by every image of the layout


def test_balance_view_reads_what_whole_items_say(tmp_path):
    fams = ["scene.shapes", "scene.grid"]
    cfg = GenerateConfig(families=fams, n=30, shard_size=8, knobs=resolve_all_knobs(fams, {}))
    generate(cfg, tmp_path / "r")
    store = RunStore(tmp_path / "r")
    whole = [(it.id, it.question.question_family, str(it.question.value)) for it in store.iter_items()]
    light = [(v.id, v.question.question_family, str(v.question.value)) for v in _balance_view(store)]
    assert light == whole and len(whole) > 20
    # a run written before question.family was renamed question_family reads the same
    for path in store.shard_files():
        path.write_text(path.read_text().replace('"question_family":', '"family":'))
    old = [(v.id, v.question.question_family, str(v.question.value)) for v in _balance_view(store)]
    assert old == whole


def _run_python(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout


def test_our_processes_skip_pymupdf_layout_and_a_library_import_does_not():
    ours = _run_python("from deltaprompts.procsetup import skip_pymupdf_layout; skip_pymupdf_layout()\n"
                       "import pymupdf, sys; print(pymupdf._get_layout is None, sys.modules['pymupdf.layout'] is None)")
    assert ours.split() == ["True", "True"]
    try:
        importlib.metadata.version("pymupdf_layout")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pymupdf_layout is not installed: nothing for a library import to load")
    library = _run_python("import deltaprompts.generators.documents, sys; print(sys.modules['pymupdf.layout'] is None)")
    assert library.strip() == "False"  # a user's process loads what PyMuPDF loads


def test_templates_parse_the_same_with_libyaml_and_pyyaml():
    import yaml

    from deltaprompts.questions import _YAML_LOADER, load_template

    files = sorted(Path(load_templates()[0].source).parents[1].rglob("*.yaml"))
    assert len(files) > 200
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=_YAML_LOADER) == yaml.safe_load(text), path
    with pytest.raises(TemplateError, match=r"(?s)bad\.yaml: not valid YAML: .*line 2"):
        load_template("bad.yaml", "name: x\nphrasings: [unclosed\n")


def test_pool_workers_fork_from_a_server_that_preloaded_the_renderers():
    import multiprocessing

    from deltaprompts.generate import _worker_context

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform: the pool spawns its workers")
    ctx = _worker_context()
    assert ctx.get_start_method() == "forkserver"
    from multiprocessing import forkserver

    assert "deltaprompts.worker_preload" in forkserver._forkserver._preload_modules
