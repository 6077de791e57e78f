"""Mining finds planted failure patterns (by question family, by knob range) with honest statistics."""

import json
import math

import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.specs import load_backend
from deltaprompts.pipeline.cells import Cell
from deltaprompts.pipeline.config import MineConfig
from deltaprompts.pipeline.mine import mine_patterns, mine_run, read_patterns
from deltaprompts.pipeline.seed import run_cells
from deltaprompts.pipeline.stats import bootstrap_proportion, wilson
from deltaprompts.score import score_run
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore
from tests.pipeline.helpers import Routed

PLANTED = "scene.count_color"


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """60 scene.shapes items over four knob cells (n_objects 3, 4, 7, 8), one question each."""
    out = tmp_path_factory.mktemp("mine") / "seed"
    cells = [Cell(id=f"c{i}", family="scene.shapes", knobs={"n_objects": n}, images=15, seed=i, candidates=4)
             for i, n in enumerate((3, 4, 7, 8))]
    run_cells(out, cells, {"command": "test", "seed": 0, "config": {}})
    return out


def scored(run, tmp_path, fails, k=8):
    import shutil

    run2 = tmp_path / "run"
    shutil.copytree(run, run2)
    teacher = load_backend("sim:t?skill=0.95&zero=0.0&alpha=0.05")
    student = Routed("sim:t?skill=0.95&zero=0.0&alpha=0.05", "sim:s?skill=0.0&zero=0.0", fails)
    score_run(run2, teacher, student, k=k, sampling=Sampling(seed=1))
    return run2


def test_wilson_and_bootstrap_intervals():
    lo, hi = wilson(8, 10, 0.95)
    assert math.isclose(lo, 0.4902, abs_tol=1e-3) and math.isclose(hi, 0.9433, abs_tol=1e-3)
    assert wilson(0, 0) == (0.0, 1.0) and wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    b = bootstrap_proportion(30, 100, 0.95, 4000, seed=0)
    assert b == bootstrap_proportion(30, 100, 0.95, 4000, seed=0)  # seeded
    assert 0.2 < b[0] < 0.3 < b[1] < 0.4
    with pytest.raises(UserError):
        wilson(5, 3)


def test_mine_finds_a_planted_question_family(seed_run, tmp_path):
    run = scored(seed_run, tmp_path, lambda it: it.question.question_family == PLANTED)
    rep = mine_run(run, run / "mine", MineConfig(min_support=3))
    top = rep.patterns[0]
    assert top.family == "scene.shapes" and top.question_family == PLANTED and not top.knobs
    n_planted = sum(it.question.question_family == PLANTED for it in RunStore(run).iter_items())
    assert top.support == n_planted >= 5
    assert top.student_error > top.teacher_error + 0.2
    assert top.lift > 2 and top.ci[0] > rep.base_rate
    assert top.ci[0] <= top.rate <= top.ci[1]
    # refinements of the top pattern by a knob say nothing new and are left out
    assert not any(p.question_family == PLANTED and p.knobs for p in rep.patterns)
    assert read_patterns(run).patterns[0].id == top.id
    data = json.loads((run / "mine" / "patterns.json").read_text())
    assert data["patterns"][0]["question_family"] == PLANTED and data["simulated"] is True
    assert "scene.count_color" in (run / "mine" / "patterns.txt").read_text()


def test_mine_finds_a_planted_knob_range(seed_run, tmp_path):
    run = scored(seed_run, tmp_path, lambda it: it.spec.knobs["n_objects"] >= 7, k=16)  # k=8 is too few to tell
    items = list(RunStore(run).iter_items())
    rep = mine_patterns(items, ScoreStore(run).deltas(required=True), MineConfig(min_support=3, bins=2), "tv", 0.3, 0.5)
    top = rep.patterns[0]
    assert top.question_family is None and list(top.knobs) == ["n_objects"]
    cond = top.knobs["n_objects"]
    assert cond.lo == 7 and cond.hi == 8  # two quantile bins over 3, 4, 7, 8
    assert top.support == 30 and top.lift > 1.8 and top.ci[0] > rep.base_rate


def test_mine_needs_scores(seed_run):
    with pytest.raises(UserError, match="score"):
        mine_run(seed_run, seed_run / "mine", MineConfig())
