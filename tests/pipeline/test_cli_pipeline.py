"""The pipeline commands through the CLI: output, exit codes, no traceback for a user mistake."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from deltaprompts.cli import app as cli_app
from deltaprompts.store import RunStore
from tests.pipeline.helpers import STUDENT, TEACHER
from tests.pipeline.test_external import jsonl  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def app():
    return cli_app


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def config(tmp_path, **extra):
    data = {"out": "run", "rounds": 1, "models": {"teacher": TEACHER, "student": STUDENT, "k": 3},
            "seed": {"generate": {"families": ["scene.shapes"], "n": 12, "cells": 2, "vary": {"n_objects": [3, 8]}}},
            "mine": {"min_support": 2}, "synthesize": {"budget": 4, "teacher_questions": False}, **extra}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_then_resume_and_the_stage_commands(app, tmp_path):
    cfg = config(tmp_path)
    res = invoke(app, "seed", "--config", cfg)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "seed" / "manifest.json").exists() and not (tmp_path / "run" / "mine").exists()
    res = invoke(app, "mine", "--config", cfg)
    assert res.exit_code == 0 and "failure patterns" in res.output and "SIMULATED" in res.output
    res = invoke(app, "synthesize", cfg)
    assert res.exit_code == 0 and "after synthesize:1" in res.output
    res = invoke(app, "run", cfg)
    assert res.exit_code == 2 and "pass --resume" in res.output and "Traceback" not in res.output
    res = invoke(app, "run", cfg, "--resume")
    assert res.exit_code == 0, res.output
    assert "yield per round" in res.output and "kept" in res.output
    rows = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert [r["round"] for r in rows] == [0, 1]


def test_bad_config_key_exits_2(app, tmp_path):
    cfg = config(tmp_path, synthesise={"budget": 3})
    res = invoke(app, "run", cfg)
    assert res.exit_code == 2 and "unknown key 'synthesise'" in res.output and "Traceback" not in res.output


def test_import_mine_and_audit_commands(app, tmp_path, jsonl):  # noqa: F811
    out = tmp_path / "imported"
    res = invoke(app, "seed", jsonl, "--out", out, "--image-column", "img", "--question-column", "q",
                 "--answer-column", "a", "--tag-column", "source")
    assert res.exit_code == 0 and "imported 7 items" in res.output and "unreadable_image=1" in res.output
    res = invoke(app, "mine", out, "--teacher", TEACHER, "--student", STUDENT, "--k", "3", "--min-support", "2")
    assert res.exit_code == 0, res.output
    assert (out / "mine" / "patterns.json").exists() and (out / "scores" / "deltas.jsonl").exists()
    res = invoke(app, "audit", jsonl, "--teacher", TEACHER, "--student", STUDENT, "--k", "3", "--out", tmp_path / "a",
                 "--image-column", "img", "--question-column", "q", "--answer-column", "a")
    assert res.exit_code == 0, res.output
    assert "zero-delta:" in res.output and "Wilson" in res.output and "teach the student nothing" in res.output
    assert len(list(RunStore(tmp_path / "a").iter_items())) == 7
    res = invoke(app, "audit", tmp_path / "nothing.jsonl", "--teacher", TEACHER, "--student", STUDENT)
    assert res.exit_code == 2 and "does not exist" in res.output
    res = invoke(app, "seed")
    assert res.exit_code == 2 and "--config" in res.output
