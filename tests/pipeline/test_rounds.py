"""`run` end to end on simulated models: every stage's files, the yield per round, and resuming after a
kill at any step (raised from a stage hook, from a model, or SIGKILL of a process) with nothing lost
or duplicated."""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.specs import load_backend
from deltaprompts.pipeline.rounds import run_pipeline
from deltaprompts.report import yield_rows as report_rounds
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore
from tests.pipeline.helpers import STUDENT, assert_no_duplicates, small_config

REPO = Path(__file__).resolve().parents[2]


class Killed(Exception):
    """Stands for the process dying at a hook point."""


def outcome(root: Path) -> dict:
    """Everything a run produced that must not depend on interruptions."""
    rows = json.loads((root / "rounds.json").read_text())
    items = [it.id for it in RunStore(root).iter_items()]
    return {"rounds": rows, "items": items, "deltas": {k: d.model_dump() for k, d in ScoreStore(root).deltas(required=True).items()},
            "patterns": json.loads((root / "mine" / "patterns.json").read_text()),
            "plans": [json.loads((root / f"round-{r:02d}" / "plan.json").read_text()) for r in (1, 2)],
            "bandit": json.loads((root / "bandit.json").read_text()),
            "gen": [[it.id for it in RunStore(root / f"round-{r:02d}" / "gen").iter_items()] for r in (1, 2)],
            "seed": [it.id for it in RunStore(root / "seed").iter_items()]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run, and the hook points it passed."""
    root = tmp_path_factory.mktemp("ref") / "run"
    points: list[str] = []
    manifest = run_pipeline(small_config(root), hook=points.append)
    return root, points, manifest


def test_a_run_writes_every_stage_and_the_yield_per_round(reference):
    root, points, manifest = reference
    assert manifest["status"] == "complete" and manifest["pipeline"]["stopped"] == "rounds"
    for path in ("seed/manifest.json", "seed/scores/deltas.jsonl", "mine/patterns.json", "mine/patterns.txt",
                 "round-00/kept/manifest.json", "round-01/plan.json", "round-01/gen/scores/deltas.jsonl",
                 "round-01/teacher.jsonl", "round-01/kept/report/screen.json", "round-02/kept/manifest.json",
                 "rounds.json", "bandit.json", "scores/deltas.jsonl", "scores/meta.json"):
        assert (root / path).exists(), path
    assert not (root / "seed" / "cells").exists()  # merged, then removed
    rows = json.loads((root / "rounds.json").read_text())
    assert [r["round"] for r in rows] == [0, 1, 2]
    for r in rows:
        assert set(r) >= {"round", "generated", "screened", "kept", "zero_delta_fraction", "arms"}
        assert r["kept"] <= r["screened"] <= r["generated"]
    assert rows[0]["generated"] == 24 and all(r["generated"] == 8 for r in rows[1:])
    for r in rows[1:]:
        assert sum(a["generated"] for a in r["arms"].values()) == 8
        assert sum(a["kept"] for a in r["arms"].values()) == r["kept"]
        # a simulated teacher writes no JSON: every reply is rejected and template questions fill in
        assert r["teacher"]["replies"] == 16 and r["teacher"]["rejected"] == {"malformed_json": 16}
    # the run root is the kept set: each round's kept items, their Deltas, readable by the report module
    items = list(RunStore(root).iter_items())
    assert len(items) == manifest["counts"]["items"] == sum(r["added"] for r in rows)
    assert set(ScoreStore(root).deltas(required=True)) == {it.id for it in items}
    assert all(d.value >= 0.3 and d.teacher_accuracy >= 0.5 for d in ScoreStore(root).deltas(required=True).values())
    assert [r["round"] for r in report_rounds(root)] == [0, 1, 2]
    assert manifest["screen"]["min_delta"] == 0.3 and manifest["counts"]["images"] >= 1
    assert points[-1] == "round:2" and "teacher:r01-000:0" in points
    assert_no_duplicates(root)


def test_resume_after_a_kill_at_every_step(reference, tmp_path):
    ref_root, points, _ = reference
    root = tmp_path / "run"
    cfg = small_config(root)
    killed: list[str] = []

    def kill_at_new_point(point: str) -> None:
        if point not in killed:
            killed.append(point)
            raise Killed(point)

    for attempt in range(len(points) + 2):
        try:
            run_pipeline(cfg, resume=attempt > 0, hook=kill_at_new_point)
            break
        except Killed:
            pass
    assert killed == points  # each step was killed once, in order, and every resume went on from there
    assert outcome(root) == outcome(ref_root)
    assert_no_duplicates(root)
    again = run_pipeline(cfg, resume=True)  # a finished run: resuming changes nothing
    assert again["status"] == "complete" and outcome(root) == outcome(ref_root)


class Dying:
    """A backend that dies after `after` sample calls (the model server going away mid-score)."""

    def __init__(self, spec: str, after: int):
        self.inner, self.after, self.calls = load_backend(spec), after, 0
        self.identity = self.inner.identity
        self.score = self.inner.score  # still a Scorer, so Deltas keep token_kl

    def sample(self, requests, sampling, indices):
        self.calls += 1
        if self.calls > self.after:
            raise DeltaError("model server went away")
        return self.inner.sample(requests, sampling, indices)


def test_resume_after_a_model_dies_mid_score(reference, tmp_path):
    ref_root = reference[0]
    root = tmp_path / "run"
    cfg = small_config(root, models={"batch_size": 5})
    kills = 0
    for attempt in range(30):  # each run gets a call or two further before its student dies
        try:
            run_pipeline(cfg, resume=attempt > 0, student=Dying(STUDENT, 1 + attempt % 2))
            break
        except DeltaError as e:
            assert "went away" in str(e)
            kills += 1
    assert kills >= 5
    out = outcome(root)
    ref = outcome(ref_root)
    assert out == ref
    assert_no_duplicates(root)


def test_resume_after_sigkill(reference, tmp_path):
    ref_root = reference[0]
    root = tmp_path / "run"
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from tests.pipeline.helpers import small_config
        from deltaprompts.pipeline.rounds import run_pipeline
        run_pipeline(small_config({str(root)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and not (root / "round-01" / "teacher.jsonl").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (root / "rounds.json").exists() or len(json.loads((root / "rounds.json").read_text())) < 3
    run_pipeline(small_config(root), resume=True)
    assert outcome(root) == outcome(ref_root)
    assert_no_duplicates(root)


def test_refusals(reference, tmp_path):
    ref_root = reference[0]
    with pytest.raises(UserError, match="--resume"):
        run_pipeline(small_config(ref_root))
    with pytest.raises(UserError, match=r"different config \(synthesize.budget: 8 -> 9\)"):
        run_pipeline(small_config(ref_root, synthesize={"budget": 9}), resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a pipeline run"):
        run_pipeline(small_config(tmp_path / "other"), overwrite=True)
    assert (tmp_path / "other" / "notes.txt").exists()


def test_more_rounds_target_and_stop_after(reference, tmp_path):
    root = tmp_path / "run"
    m = run_pipeline(small_config(root, rounds=3), stop_after="synthesize")
    assert m["status"] == "running" and m["pipeline"]["stopped"] == "after synthesize:1"
    assert (root / "round-01" / "gen" / "manifest.json").exists() and not (root / "round-01" / "kept").exists()
    m = run_pipeline(small_config(root, rounds=1), resume=True)
    assert [r["round"] for r in json.loads((root / "rounds.json").read_text())] == [0, 1]
    m = run_pipeline(small_config(root, rounds=3, target=1), resume=True)  # rounds and target may change
    assert m["pipeline"]["stopped"] == "target" and m["status"] == "complete"
    assert [r["round"] for r in json.loads((root / "rounds.json").read_text())] == [0, 1]


def test_a_bad_prompt_format_fails_before_the_seed_stage(tmp_path):
    root = tmp_path / "run"
    with pytest.raises(UserError, match="prompt format"):
        run_pipeline(small_config(root, models={"prompt_format": "no-such-format"}))
    assert not root.exists()
