"""Thompson sampling moves the budget toward the arm with the higher yield, reproducibly."""

import numpy as np
import pytest

from deltaprompts.errors import UserError
from deltaprompts.pipeline.bandit import Arm, allocate, make_arms, posteriors, state
from deltaprompts.pipeline.mine import KnobCondition, MineReport, Pattern


def simulate(true_yield: dict[str, float], rounds: int, budget: int = 40, seed: int = 0) -> list[dict[str, int]]:
    """Rounds of allocate -> Binomial outcomes -> rounds.json-like history; returns the allocations."""
    arms = [Arm(id=a, family="scene.shapes") for a in sorted(true_yield)]
    world = np.random.default_rng(seed + 100)
    history, allocations = [], []
    for r in range(1, rounds + 1):
        alloc = allocate(posteriors(arms, history), budget, 4, seed, r)
        allocations.append(alloc)
        kept = {a: int(world.binomial(n, true_yield[a])) for a, n in alloc.items()}
        arms_row = {a: {"generated": n, "screened": n, "kept": kept[a]} for a, n in alloc.items()}
        history.append({"round": r, "arms": arms_row})
    return allocations


def test_budget_moves_to_the_higher_yield_arm():
    allocs = simulate({"good": 0.6, "poor": 0.1, "none": 0.0}, rounds=6)
    assert all(sum(a.values()) == 40 for a in allocs)
    first, last = allocs[0], allocs[-1]
    assert first["poor"] + first["none"] > 0  # it explores at first (flat priors)
    assert last["good"] >= 36 and sum(a["good"] for a in allocs[-3:]) > sum(a["good"] for a in allocs[:2]) * 1.2


def test_allocation_is_seeded_and_depends_only_on_the_history():
    assert simulate({"a": 0.3, "b": 0.2}, 4, seed=5) == simulate({"a": 0.3, "b": 0.2}, 4, seed=5)
    post = {"a": (3.0, 1.0), "b": (1.0, 3.0)}
    assert allocate(post, 17, 4, 0, 2) == allocate(dict(reversed(post.items())), 17, 4, 0, 2)
    assert sum(allocate(post, 17, 4, 0, 2).values()) == 17
    with pytest.raises(UserError):
        allocate({}, 10, 4, 0, 1)


def test_priors_come_from_pattern_rates_and_posteriors_from_rounds():
    def pattern(pid, fam, rate):
        return Pattern(id=pid, family=fam, question_family=None, knobs={"n_objects": KnobCondition(lo=3, hi=5)},
                       support=10, events=int(rate * 10), rate=rate, ci=(0, 1), base_rate=0.2, lift=rate / 0.2,
                       student_error=0.5, teacher_error=0.1, mean_delta=0.3, zero_delta_fraction=0.2, summary=f"{pid}")

    report = MineReport(event="delta", metric="tv", min_delta=0.3, min_teacher_acc=0.5, items=20, events=4,
                        base_rate=0.2, level=0.95,
                        patterns=[pattern("p1", "external.x", 0.9), pattern("p2", "scene.shapes", 0.5),
                                  pattern("p3", "scene.grid", 0.25)])
    arms = make_arms(report, 2, 4.0, ["chart.bar"], renderable=["scene.shapes", "scene.grid", "chart.bar"])
    assert [a.id for a in arms] == ["p2", "p3", "family:chart.bar"]  # external families cannot be rendered
    assert arms[0].prior == (3.0, 3.0) and arms[2].prior == (1.0, 1.0) and arms[0].text == "p2"
    history = [{"round": 1, "arms": {"p2": {"generated": 8, "screened": 8, "kept": 6}, "gone": {"kept": 1}}}]
    assert posteriors(arms, history)["p2"] == (9.0, 5.0)
    s = state(arms, history)
    assert s["rounds"] == [1] and s["arms"][0]["posterior"] == [9.0, 5.0]
    with pytest.raises(UserError, match="no arm"):
        make_arms(report, 2, 4.0, [], renderable=[])
