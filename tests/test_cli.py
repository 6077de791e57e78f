"""The CLI end to end: output, exit codes, error messages, determinism across workers, kill and resume."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app

runner = CliRunner()
FAST = ["--family", "scene.shapes,document.invoice", "--mc-fraction", "0.3", "--quiet"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def tree_digest(run: Path) -> dict[str, str]:
    """sha256 of every item shard and image of a run (the manifest holds times, so it is left out)."""
    files = sorted([*run.glob("items/*.jsonl"), *run.glob("images/**/*.png")])
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    res = invoke("generate", *FAST, "--n", 24, "--seed", 3, "--out", out, "--shard-size", 5)
    assert res.exit_code == 0, res.output
    return out, res


def test_generate_writes_a_complete_run(small_run):
    out, res = small_run
    assert "wrote 24 items" in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["seed"] == 3
    assert manifest["config"]["families"] == ["scene.shapes", "document.invoice"]
    assert "matplotlib" in manifest["versions"] and manifest["command"].startswith("deltaprompts generate")
    lines = [json.loads(x) for p in sorted(out.glob("items/*.jsonl")) for x in p.read_text().splitlines()]
    assert len(lines) == manifest["counts"]["items"] == 24
    assert len({x["id"] for x in lines}) == 24
    for x in lines:
        img = out / x["image"]["path"]
        assert hashlib.sha256(img.read_bytes()).hexdigest() == x["image"]["sha256"]
    assert not list(out.rglob("*.tmp"))


def test_same_run_twice_gives_the_same_bytes_with_one_or_two_workers(small_run, tmp_path):
    out, _ = small_run
    res = invoke("generate", *FAST, "--n", 24, "--seed", 3, "--out", tmp_path / "b", "--shard-size", 5, "--workers", 2)
    assert res.exit_code == 0, res.output
    assert tree_digest(tmp_path / "b") == tree_digest(out)


def test_a_non_empty_out_dir_is_refused_without_resume_or_overwrite(small_run):
    out, _ = small_run
    res = invoke("generate", *FAST, "--n", 24, "--seed", 3, "--out", out, "--shard-size", 5)
    assert res.exit_code == 2
    assert "is not empty: pass --resume" in res.output


def test_resume_with_another_config_names_what_differs(small_run):
    out, _ = small_run
    res = invoke("generate", *FAST, "--n", 30, "--seed", 3, "--out", out, "--shard-size", 5, "--resume")
    assert res.exit_code == 2 and "n differ" in res.output


@pytest.mark.parametrize("args,code,message", [
    (["--family", "chart.bat"], 2, "unknown family 'chart.bat'; did you mean 'chart.bar'?"),
    (["--domain", "charts"], 2, "unknown domain 'charts'; did you mean 'chart'? Allowed: chart, document, scene"),
    (["--family", "scene.shapes", "--knob", "n_objects=999"], 2, "knob 'n_objects': '999' is out of range"),
    (["--family", "scene.shapes", "--knob", "colour=red"], 2, "unknown knob 'colour'"),
    (["--family", "scene.shapes", "--knob", "n_objects"], 2, "expected name=value"),
    ([], 2, "choose what to generate"),
])
def test_bad_input_gets_one_clear_message(tmp_path, args, code, message):
    res = invoke("generate", *args, "--n", 2, "--out", tmp_path / "x", "--quiet")
    assert res.exit_code == code
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output
    assert not (tmp_path / "x" / "items").exists()


def test_a_broken_user_template_is_named(tmp_path):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "bad.yaml").write_text("name: my.q\ndomain: scene\nanswer_type: count\n"
                                   "program: 'count(filtr[attr=color, value=red](scene()))'\nphrasings: ['x']\n")
    res = invoke("generate", "--family", "scene.shapes", "--n", 2, "--out", tmp_path / "o", "--templates", tdir)
    assert res.exit_code == 2
    assert "bad.yaml (template my.q): unknown op 'filtr'; did you mean 'filter'?" in " ".join(res.output.split())


def test_list_shows_families_knobs_and_question_families():
    res = invoke("list", "--json")
    assert res.exit_code == 0
    cat = json.loads(res.output)
    names = {f["name"] for f in cat["families"]}
    assert {"scene.shapes", "document.invoice", "document.receipt", "chart.bar", "chart.pie"} <= names
    for domain in ("chart", "document", "scene"):
        assert sum(q["domain"] == domain for q in cat["questions"]) >= 8, domain
    assert all(k["allowed"] for k in cat["knobs"])
    res = invoke("list", "knobs")
    assert res.exit_code == 0 and "n_objects" in res.output
    assert invoke("list", "famlies").exit_code == 2


def test_list_shows_question_families_from_template_folders(tmp_path):
    dirs = [tmp_path / "a", tmp_path / "b" / "deeper"]
    for d, name in zip(dirs, ("my.red_count", "my.any_count")):
        d.mkdir(parents=True)
        (d / f"{name}.yaml").write_text(f"name: {name}\ndomain: scene\nanswer_type: count\n"
                                        "program: 'count(filter[attr=color, value=red](scene()))'\n"
                                        "phrasings: ['How many red objects are there?']\n")
    res = invoke("list", "questions", "--json", "--templates", tmp_path / "a", "--templates", tmp_path / "b")
    assert res.exit_code == 0, res.output
    origin = {q["name"]: q["origin"] for q in json.loads(res.output)["questions"]}
    assert origin["my.red_count"] == str((tmp_path / "a").resolve())
    assert origin["my.any_count"] == str((tmp_path / "b").resolve())
    assert origin["scene.cell_color"] == "built-in"
    res = invoke("list", "questions", "--templates", tmp_path / "a")
    assert res.exit_code == 0 and f"from {(tmp_path / 'a').resolve()}: my.red_count" in " ".join(res.output.split())
    res = invoke("list", "questions", "--templates", tmp_path / "missing")
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output


def test_schema_prints_the_item_schema(tmp_path):
    res = invoke("schema", "Item")
    assert res.exit_code == 0 and json.loads(res.output)["title"] == "Item"
    res = invoke("schema", "--out", tmp_path)
    assert res.exit_code == 0 and (tmp_path / "Question.schema.json").exists()
    assert invoke("schema", "Itme").exit_code == 2


def test_show_writes_an_offline_gallery(small_run):
    out, _ = small_run
    res = invoke("show", out)
    assert res.exit_code == 0
    page = (out / "gallery" / "index.html").read_text()
    assert page.count('class="card"') == 24
    assert "http://" not in page and "https://" not in page
    for src in __import__("re").findall(r'src="([^"]+)"', page):
        assert (out / "gallery" / src).resolve().exists()


def test_check_reports_no_ill_posed_items(small_run):
    out, _ = small_run
    res = invoke("check", out)
    assert res.exit_code == 0, res.output
    assert "0 ill-posed item(s) kept out of 24" in res.output


def test_check_catches_a_tampered_answer(small_run, tmp_path):
    import shutil

    out, _ = small_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    shard = sorted(bad.glob("items/*.jsonl"))[0]
    lines = shard.read_text().splitlines()
    item = json.loads(lines[0])
    item["question"]["value"] = "tampered"
    lines[0] = json.dumps(item)
    shard.write_text("\n".join(lines) + "\n")
    res = invoke("check", bad)
    assert res.exit_code == 1 and "answer_mismatch=1" in res.output


def test_kill_and_resume_loses_and_duplicates_nothing(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    # one image per shard, so the kill lands between shards of a run that is still going
    args = ["generate", *FAST, "--n", "24", "--seed", "3", "--shard-size", "1"]
    assert invoke(*args, "--out", ref).exit_code == 0
    cmd = [sys.executable, "-m", "deltaprompts.cli", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("items/*.stats.json"))) < 1:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("items/*.stats.json")))
    assert 1 <= done < 24, "the kill should land mid-run"
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert tree_digest(out) == tree_digest(ref)
    assert json.loads((out / "manifest.json").read_text())["counts"]["items"] == 24
