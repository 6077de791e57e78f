"""Transfer: `audit` on a screened run with another pair scores the kept set into RUN/transfer/<pair>/
(the original scores untouched) and reports the share still kept under the run's screen rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.errors import UserError
from deltaprompts.store import RunStore, ScoreStore

TEACHER, STUDENT = "sim:t?skill=0.95&zero=0.2", "sim:s?skill=0.2&zero=0.2"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def screened(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("transfer")
    res = invoke("generate", "--family", "scene.shapes", "--n", 40, "--seed", 4, "--out", root / "run", "--quiet")
    assert res.exit_code == 0, res.output
    res = invoke("score", root / "run", "--teacher", TEACHER, "--student", STUDENT, "--k", 16)
    assert res.exit_code == 0, res.output
    res = invoke("screen", root / "run", "--min-delta", 0.1, "--out", root / "kept")
    assert res.exit_code == 0, res.output
    assert len(list(RunStore(root / "kept").iter_items())) > 5
    return root / "kept"


def _original(run: Path) -> bytes:
    return (run / "scores" / "deltas.jsonl").read_bytes()


def test_a_strong_student_keeps_little_and_a_weak_one_much(screened):
    from deltaprompts.models.specs import load_backend
    from deltaprompts.pipeline.audit import transfer_run

    before = _original(screened)
    near = transfer_run(screened, load_backend(TEACHER), load_backend("sim:s2?skill=0.95&zero=0.2"), k=16)
    far = transfer_run(screened, load_backend(TEACHER), load_backend("sim:s3?skill=0.05&zero=0.2"), k=16)
    assert _original(screened) == before  # the original pair's scores are not touched
    assert near.scores != far.scores and Path(far.scores).is_dir()
    assert near.items == far.items == len(list(RunStore(screened).iter_items()))
    assert near.still_kept_fraction < far.still_kept_fraction
    assert near.zero_delta_fraction > far.zero_delta_fraction
    lo, hi = far.wilson
    assert lo <= far.still_kept_fraction <= hi
    assert near.original["student"] == load_backend(STUDENT).identity and near.rule == "debiased"
    assert near.min_delta == 0.1 and sum(near.dropped.values()) == near.items - near.still_kept
    assert sum(r.items for r in near.families) == near.items
    saved = json.loads((screened / "transfer.json").read_text())
    assert saved["student"] == far.student  # the latest transfer


def test_transfer_needs_a_screened_run(screened, tmp_path):
    from deltaprompts.models.specs import load_backend
    from deltaprompts.pipeline.audit import transfer_run

    src = Path(json.loads((screened / "manifest.json").read_text())["screen"]["source"])
    with pytest.raises(UserError, match="not a screened run"):
        transfer_run(src, load_backend(TEACHER), load_backend(STUDENT))


def test_cli_audit_reports_transfer_and_the_report_shows_it(screened):
    res = invoke("audit", screened, "--teacher", TEACHER, "--student", "sim:s4?skill=0.5&zero=0.2", "--k", 16)
    assert res.exit_code == 0, res.output
    assert "still kept:" in res.output and "Wilson" in res.output and "zero-delta for the new pair" in res.output
    assert ScoreStore(screened).meta()["student"] != "sim:s4"  # original scores kept
    res = invoke("report", screened)
    assert res.exit_code == 0, res.output
    html = next(Path(screened / "report").glob("*.html")).read_text()
    assert "Transfer" in html and "still kept" in html
