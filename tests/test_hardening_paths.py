"""Issue 17 hardening: paths confined to their root, exports from inside the run, escaped HTML, template
folders checked, a bounded template sandbox, and seed imports/options that refuse what they would
silently get wrong. Each case: exit 2, one `error:` line naming the culprit, no traceback, nothing
written where it should not be."""

import base64
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.errors import TemplateError
from deltaprompts.questions import load_template
from deltaprompts.store import RunStore
from tests.exports.helpers import make_run


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(res, *words):
    """Exit 2, one `error:` line (the last) holding every word, no traceback."""
    text = res.output.strip()
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in text.splitlines() if line.startswith("error:")]  # (a progress bar may precede it)
    assert len(lines) == 1 and not text.split("error:", 1)[1].count("\n"), text
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("h") / "run", n=4)


def _tamper(src: Path, dst: Path, image_path: str) -> str:
    """A copy of `src` whose first item points at `image_path`; returns that item's id."""
    shutil.copytree(src, dst)
    shard = min((dst / "items").glob("shard-*.jsonl"))
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["image"]["path"] = image_path
    lines[0] = json.dumps(item)
    shard.write_text("\n".join(lines) + "\n")
    return item["id"]


# ---------------------------------------------------------------- 2. paths confined to their root


@pytest.mark.parametrize("fmt", ["llava", "parquet"])
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_export_refuses_an_image_path_outside_the_run(run, tmp_path, fmt, kind):
    secret = tmp_path / "x" / "evil.png"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    bad = tmp_path / "bad"
    if kind == "symlink":
        item_id = _tamper(run, bad, "images/link.png")
        os.symlink(secret, bad / "images" / "link.png")
    else:
        item_id = _tamper(run, bad, "../x/evil.png" if kind == "dotdot" else str(secret))
    out = tmp_path / "sub" / "out"
    res = invoke("export", bad, "-f", fmt, "-o", out)
    refused(res, item_id, "outside")
    assert not out.exists() and not (tmp_path / "sub").exists() or not any((tmp_path / "sub").iterdir())
    assert secret.stat().st_nlink == 1  # never hard-linked anywhere


def test_llava_export_cannot_write_outside_out(run, tmp_path):
    # resolves inside the run through its parent, but the same relative path under --out leaves it
    bad = tmp_path / "bad"
    item_id = _tamper(run, bad, "../bad/images/" + next((run / "images").rglob("*.png")).relative_to(
        run / "images").as_posix())
    res = invoke("export", bad, "-f", "llava", "-o", tmp_path / "out")
    refused(res, item_id, "outside")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def _seed_set(tmp_path: Path, image) -> Path:
    d = tmp_path / "set"
    d.mkdir(exist_ok=True)
    (d / "set.jsonl").write_text(json.dumps({"image": image, "question": "How many?", "answer": "3"}) + "\n")
    return d / "set.jsonl"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "site-packages"])
def test_seed_refuses_an_image_outside_the_dataset_folder(tmp_path, kind):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (20, 10), "red").save(outside)
    if kind == "dotdot":
        image = "../outside.png"
    elif kind == "absolute":
        image = str(outside)
    elif kind == "site-packages":
        image = str(next(Path(Image.__file__).parent.parent.rglob("*.png")))
    else:
        (tmp_path / "set").mkdir()
        os.symlink(outside, tmp_path / "set" / "link.png")
        image = "link.png"
    source = _seed_set(tmp_path, image)
    res = invoke("seed", source, "--out", tmp_path / "run")
    refused(res, str(source), "row 1", "outside")
    assert not list((tmp_path / "run").rglob("*.png")) if (tmp_path / "run").exists() else True


def test_seed_still_imports_an_image_inside_the_folder(tmp_path):
    source = _seed_set(tmp_path, "imgs/a.png")
    (source.parent / "imgs").mkdir()
    Image.new("RGB", (20, 10), "red").save(source.parent / "imgs" / "a.png")
    res = invoke("seed", source, "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    assert RunStore(tmp_path / "run").read_manifest()["counts"]["items"] == 1


# ---------------------------------------------------------------- 3. export from inside the run


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_export_from_inside_the_run_keeps_every_image(run, tmp_path, fmt, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.chdir(run)
    res = invoke("export", ".", "-f", fmt, "-o", tmp_path / "out")
    assert res.exit_code == 0, res.output
    table = pq.read_table(next((tmp_path / "out" / "data").glob("*.parquet")))
    images = table.column("image").to_pylist()
    assert len(images) == 4 and all(im["bytes"] for im in images)
    if fmt == "hf":
        import datasets

        ds = datasets.load_from_disk(str(tmp_path / "out" / "arrow"))["train"]
        assert all(ds.cast_column("image", datasets.Image(decode=False))[i]["image"]["bytes"] for i in range(4))


# ---------------------------------------------------------------- 4. the gallery escapes the run


def test_gallery_escapes_a_tampered_run(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    m = json.loads((bad / "manifest.json").read_text())
    m["seed"] = "<script>alert(1)</script>"
    m["counts"]["items"] = "<script>alert(2)</script>"
    (bad / "manifest.json").write_text(json.dumps(m))
    shard = min((bad / "items").glob("shard-*.jsonl"))
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["id"] = "<script>alert(3)</script>"
    lines[0] = json.dumps(item)
    shard.write_text("\n".join(lines) + "\n")
    from deltaprompts.gallery import write_gallery

    page = write_gallery(bad).read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(3)" in page and page.count("<script>") == 1


# ---------------------------------------------------------------- 7. template folders checked


def test_generate_refuses_a_missing_or_file_templates_folder(tmp_path):
    res = invoke("generate", "--family", "scene.shapes", "--n", 2, "--out", tmp_path / "o",
                 "--templates", tmp_path / "nope")
    refused(res, "nope", "does not exist")
    (tmp_path / "f.yaml").write_text("x: 1\n")
    res = invoke("generate", "--family", "scene.shapes", "--n", 2, "--out", tmp_path / "o",
                 "--templates", tmp_path / "f.yaml")
    refused(res, "f.yaml", "not a folder")
    assert not (tmp_path / "o").exists()


def test_config_refuses_a_missing_template_dirs_entry(tmp_path):
    from deltaprompts.errors import UserError
    from deltaprompts.pipeline.config import parse_config
    from tests.pipeline.helpers import STUDENT, TEACHER

    data = {"out": str(tmp_path / "out"), "models": {"teacher": TEACHER, "student": STUDENT, "k": 8},
            "seed": {"generate": {"families": ["scene.shapes"], "n": 8, "template_dirs": ["@lab", "missing_dir"]}},
            "mine": {"min_support": 3}, "synthesize": {"budget": 8, "arms": 2, "chunk": 4}}
    with pytest.raises(UserError, match=r"template_dirs\[1\].*missing_dir.*does not exist"):
        parse_config(data, base=tmp_path)


# ---------------------------------------------------------------- 12. bounded template sandbox


def _template(tmp_path: Path, phrasing: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text(json.dumps({"name": "my.hostile", "domain": "scene", "answer_type": "count",
                             "program": "count(scene())", "phrasings": [phrasing]}))
    return p


@pytest.mark.parametrize("phrasing", ["{{ 'a' * 300000000 }}?", "{{ (7 ** 300000000) % 10 }}?",
                                      "{{ '%300000000s' % 'a' }}?", "{{ '{:>300000000}'.format('a') }}?",
                                      ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                                       "{% endfor %}?")])
def test_a_hostile_phrasing_fails_fast_naming_the_template(run, tmp_path, phrasing):
    import time

    import numpy as np

    from deltaprompts.questions import make_question

    tpl = load_template(_template(tmp_path, phrasing))
    facts = next(RunStore(run).iter_items()).facts
    t0 = time.perf_counter()
    with pytest.raises(TemplateError, match=r"\(template my.hostile\) phrasing 1: .*(allowed|wider|at most)"):
        make_question(tpl, facts, np.random.default_rng(0))
    assert time.perf_counter() - t0 < 5


def test_a_macro_is_refused_at_load(tmp_path):
    with pytest.raises(TemplateError, match="macros are not allowed"):
        load_template(_template(tmp_path, "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}?"))


# ---------------------------------------------------------------- 13. seed and score-answer options


def test_seed_with_config_refuses_source_and_out(tmp_path):
    res = invoke("seed", tmp_path / "x.jsonl", "--out", tmp_path / "d", "--config", tmp_path / "c.toml")
    refused(res, "SOURCE", "--out", "--config")
    assert not (tmp_path / "d").exists()


def test_score_answer_refuses_a_letter_given_twice():
    refused(invoke("score-answer", "A", "cat", "--type", "choice", "--options", "A=cat|A=dog"), "A", "more than once")


# ---------------------------------------------------------------- 8/13. hostile seed rows


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _ok_image(tmp_path):
    (tmp_path / "set").mkdir(exist_ok=True)
    Image.new("RGB", (20, 10), "red").save(tmp_path / "set" / "a.png")
    return "a.png"


@pytest.mark.parametrize("case", ["data_url_no_comma", "digits", "deep_json", "huge_png", "dict_answer"])
def test_seed_refuses_a_hostile_row_with_one_line(tmp_path, case):
    d = tmp_path / "set"
    d.mkdir()
    row = {"image": _ok_image(tmp_path), "question": "How many?", "answer": "3"}
    words = ["set.jsonl"]
    if case == "data_url_no_comma":
        row["image"] = "data:image/png;base64" + base64.b64encode(b"x").decode()
        words += ["row 1", "data:<type>;base64,<data>"]
    elif case == "digits":
        row["answer"] = "9" * 5000
        words += ["row 1", "finite"]
    elif case == "huge_png":
        (d / "big.png").write_bytes(_png_header(40000, 40000))
        row["image"] = "big.png"
        words += ["row 1", "pixels"]
    elif case == "dict_answer":
        row["answer"] = {"text": "3"}
        words += ["row 1", "string, number, bool"]
    line = json.dumps(row) + "\n"
    if case == "deep_json":
        line = "[" * 100_000 + "]" * 100_000 + "\n"
        words += [":1:", "nested too deeply"]
    (d / "set.jsonl").write_text(line)
    refused(invoke("seed", d / "set.jsonl", "--out", tmp_path / "run"), *words)


def test_seed_refuses_a_json_integer_of_5000_digits(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    image = _ok_image(tmp_path)
    (d / "set.jsonl").write_text(f'{{"image": "{image}", "question": "Q?", "answer": {"9" * 5000}}}\n')
    refused(invoke("seed", d / "set.jsonl", "--out", tmp_path / "run"), "set.jsonl:1", "not valid JSON")
