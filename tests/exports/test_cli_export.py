"""The split, export and report commands through the CLI runner: output, files and exit codes."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app as cli_app

runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    return cli_app


def invoke(app, *args):
    return runner.invoke(app, [str(a) for a in args])


def test_split_export_report_end_to_end(app, scored_run, tmp_path):
    pytest.importorskip("datasets")
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    res = invoke(app, "split", run, "--eval-fraction", 0.5, "--seed", 2)
    assert res.exit_code == 0, res.output
    assert "train" in res.output and "moved to train for sharing with train: spec=0, image=" in res.output
    saved = json.loads((run / "split.json").read_text())
    assert saved["config"]["seed"] == 2 and saved["counts"]["items"] == 12
    res = invoke(app, "export", run, "--format", "lmms-eval", "--split", "eval", "--out", tmp_path / "task")
    assert res.exit_code == 0, res.output
    assert "python -m lmms_eval --include_path" in res.output and (tmp_path / "task" / "utils.py").exists()
    res = invoke(app, "export", run, "--format", "messages", "--split", "train", "--out", tmp_path / "m")
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "m" / "messages.jsonl").read_text().splitlines()) == saved["counts"]["train"]
    res = invoke(app, "report", run, "--limit", 5)
    assert res.exit_code == 0 and (run / "report" / "index.html").exists()


@pytest.mark.parametrize("args, message", [
    (["export", "{run}", "--format", "csv", "--out", "{tmp}/o"], "unknown export format 'csv'"),
    (["export", "{run}", "--format", "llava", "--split", "eval", "--out", "{tmp}/o"], "deltaprompts split"),
    (["export", "{run}", "--format", "llava", "--split", "test", "--out", "{tmp}/o"], "unknown split 'test'"),
    (["split", "{run}", "--eval-fraction", "2"], "--eval-fraction=2.0: Input should be less than 1"),
    (["split", "{run}", "--unit", "page"], "--unit='page'"),
    (["report", "{tmp}/nowhere"], "no manifest.json"),
])
def test_user_mistakes_exit_2_with_one_line(app, generated_run, tmp_path, args, message):
    res = invoke(app, *[a.format(run=generated_run, tmp=tmp_path) for a in args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output


def test_without_datasets_the_hf_export_says_how_to_install_and_llava_still_works(app, generated_run, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    res = invoke(app, "export", generated_run, "--format", "hf", "--out", tmp_path / "hf")
    assert res.exit_code == 2 and "pip install datasets" in res.output
    assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf*"))
    res = invoke(app, "export", generated_run, "--format", "llava", "--out", tmp_path / "llava")
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "llava" / "llava.json").read_text())) == 12
