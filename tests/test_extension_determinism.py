"""Adding a layout file or a phrasing moves only the items that now draw it; every other item keeps its bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.documents import LAYOUT_DIR, LAYOUT_PATH_ENV
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.rng import base_values, extensible_choice, item_rng

FAMILY = "document.invoice"


def _run(out: Path) -> dict[int, tuple[str, bytes]]:
    """Item JSON line and PNG bytes by family index, with the question part of the line kept."""
    cfg = GenerateConfig(families=[FAMILY], n=16, seed=3, knobs=resolve_all_knobs([FAMILY], {}), balance_ratio=None)
    generate(cfg, out)
    items = {}
    for shard in sorted((out / "items").glob("*.jsonl")):
        for line in shard.read_text().splitlines():
            it = json.loads(line)
            items[it["spec"]["index"]] = (line, (out / it["image"]["path"]).read_bytes())
    return items


def test_an_added_layout_moves_only_the_items_that_draw_it(tmp_path, monkeypatch):
    monkeypatch.delenv(LAYOUT_PATH_ENV, raising=False)
    before = _run(tmp_path / "before")
    extra = tmp_path / "layouts"
    extra.mkdir()
    # one name sorts before the built-ins and one after: neither may shift the others' draws
    for name in ("invoice_aaa_added", "invoice_zzz_added"):
        shutil.copy(LAYOUT_DIR / "invoice_classic.yaml.j2", extra / f"{name}.yaml.j2")
    monkeypatch.setenv(LAYOUT_PATH_ENV, str(extra))
    after = _run(tmp_path / "after")
    assert before.keys() == after.keys()
    moved = [i for i in after if json.loads(after[i][0])["spec"]["data"]["layout"].endswith("_added")]
    assert moved and len(moved) < len(after)  # 16 items over 5 layouts: some, not all, draw a new one
    for i in set(after) - set(moved):
        assert after[i] == before[i], f"item {i} changed though it did not draw an added layout"
    # the layout knob reads the files when asked, so the added one is a valid value
    knob = next(k for k in FAMILIES.get(FAMILY).knobs if k.name == "layout")
    assert knob.parse("invoice_zzz_added") == "invoice_zzz_added"


def test_an_added_phrasing_moves_only_the_questions_that_draw_it():
    fam = FAMILIES.get("chart.bar")()
    knobs = fam.resolve_knobs({})
    tpl = next(t for t in load_templates() if len(t.phrasings) >= 2 and "chart.bar" in t.applies_to and not t.slots)
    grown = tpl.model_copy(update={"phrasings": ["What is asked here, newly phrased?", *tpl.phrasings]})
    changed = same = 0
    for index in range(40):
        facts = fam.render(fam.sample(0, index, knobs)).facts
        if tpl not in templates_for(fam.name, facts, [tpl]):
            continue
        try:
            old = make_question(tpl, facts, item_rng(0, "q", index), mc_fraction=0.5)
        except Exception:  # an ill-posed question for this chart: nothing to compare
            continue
        new = make_question(grown, facts, item_rng(0, "q", index), mc_fraction=0.5)
        if new.text.startswith("What is asked here, newly phrased?"):
            changed += 1
        else:
            same += 1
            assert new.text == old.text and new.answer == old.answer and new.options == old.options
    assert changed and same


def _draws(values, base, seeds=range(3000)):
    return [extensible_choice(np.random.default_rng(seed), values, base=base) for seed in seeds]


def test_a_list_nobody_extended_draws_as_a_plain_index_draw():
    names = [f"v{i}" for i in range(7)]
    for seed in range(300):
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        assert extensible_choice(r1, names, base=frozenset(names)) == names[int(r2.integers(0, len(names)))]
        assert r1.random() == r2.random()  # the stream goes on as it did


def test_an_added_value_takes_its_share_and_moves_nothing_else():
    names = [f"v{i}" for i in range(7)]
    base = frozenset(names)
    before = _draws(names, base)
    one = _draws([*names, "new1"], base)
    two = _draws(["new2", *names, "new1"], base)  # where it is inserted does not matter
    assert all(b == a or b == "new1" for a, b in zip(before, one))
    assert all(c == b or c == "new2" for b, c in zip(one, two))  # a second one takes only from the others
    share = one.count("new1") / len(one)
    assert abs(share - 1 / 8) < 4 * (1 / 8 * 7 / 8 / len(one)) ** 0.5  # 1/(n+1), within 4 standard errors
    assert set(two) == {*names, "new1", "new2"}


def test_a_list_the_package_never_shipped_is_drawn_by_name_alone():
    names = [f"v{i}" for i in range(5)]
    before = _draws(names, None, range(500))
    assert _draws(names[::-1], None, range(500)) == before  # order does not matter
    after = _draws([*names, "new"], None, range(500))
    assert all(b == a or b == "new" for a, b in zip(before, after))


def test_every_base_value_still_ships():
    """A base value removed (or a phrasing reworded) would move the draws of other items: that is a
    new family version. A value the package adds later without listing it is an extension: it takes
    its share of items and moves no other (new chart kinds' topics and question families are)."""
    from deltaprompts.generators.chart_sampling import load_topics
    from deltaprompts.generators.documents import layout_files
    from deltaprompts.lab.data import template_dir
    from deltaprompts.rng import phrasing_key

    assert base_values("topics") <= {t.id for t in load_topics()}
    for kind in sorted(base_values("layouts")):  # every document kind the package shipped layouts for
        assert base_values(f"layouts.{kind}") <= set(layout_files(kind))
    templates = {t.name: t for t in [*load_templates(), *load_templates((str(template_dir()),))]}
    assert base_values("templates") <= set(templates)
    for name in base_values("templates"):
        assert base_values(f"phrasings.{name}") <= {phrasing_key(p) for p in templates[name].phrasings}, name
    assert base_values("phrasings.my.own.family") is None


def test_an_added_question_family_moves_only_the_items_that_ask_it(tmp_path):
    def run(out: Path, dirs: list[str]) -> dict[int, str]:
        cfg = GenerateConfig(families=["chart.bar"], n=40, seed=5, knobs=resolve_all_knobs(["chart.bar"], {}),
                             balance_ratio=None, template_dirs=dirs)
        generate(cfg, out)
        lines = [line for f in sorted((out / "items").glob("*.jsonl")) for line in f.read_text().splitlines()]
        return {json.loads(line)["spec"]["index"]: line for line in lines}  # one question per image

    before = run(tmp_path / "before", [])
    extra = tmp_path / "mine"
    extra.mkdir()
    src = Path(__file__).resolve().parents[1] / "templates" / "questions" / "chart" / "argmax.yaml"
    (extra / "my_argmax.yaml").write_text(src.read_text().replace("name: chart.argmax", "name: my.argmax"))
    after = run(tmp_path / "after", [str(extra)])
    mine = {i for i, line in after.items() if '"my.argmax"' in line}
    assert mine and len(mine) < len(after)
    assert all(after[i] == before[i] for i in after if i not in mine)
