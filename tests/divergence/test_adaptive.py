"""Adaptive sampling: schedules, stopping decisions, and agreement with fixed k=16 on simulated models."""

import numpy as np
import pytest

from deltaprompts.verifiers import answer_class
from deltaprompts.divergence import AdaptiveConfig, decide, distribution, sample_rounds, schedule
from deltaprompts.divergence.adaptive import keeps, predictive_interval, shared_probability
from deltaprompts.errors import UnknownNameError, UserError
from deltaprompts.models.base import Message, Request, Sampling
from deltaprompts.models.specs import load_backend


def test_schedule_starts_with_four_samples_then_quarters():
    assert schedule(16) == (4, 4, 4, 4)
    assert schedule(8) == (4, 2, 2)
    assert schedule(32) == (8, 8, 8, 8)
    assert schedule(3) == (3,)
    assert all(sum(schedule(k)) == k for k in range(1, 40))
    with pytest.raises(UserError):
        schedule(0)


def test_config_rejects_bad_rounds_and_metrics():
    with pytest.raises(ValueError, match="rounds"):
        AdaptiveConfig(rounds=(4, 0))
    with pytest.raises(UnknownNameError, match="did you mean 'js'"):
        AdaptiveConfig(metric="jsd")


def rng():
    return np.random.default_rng(0)


def test_unanimous_samples_on_one_class_stop_as_zero_delta():
    d = decide(list("AAAA"), list("AAAA"), AdaptiveConfig(), rng())
    assert d.stop and d.reason == "zero_delta"


def test_disjoint_unanimous_samples_stop_above_the_threshold():
    d = decide(list("AAAA"), list("BBBB"), AdaptiveConfig(threshold=0.3), rng())
    assert d.stop and d.reason == "above" and d.p_keep >= 0.9
    # and screen keeps what the samples show: distinguishable, debiased Δ above the threshold
    assert keeps([4, 0], [0, 4], 4, AdaptiveConfig(threshold=0.3))


def test_nearly_identical_peaked_samples_stop_below_after_two_rounds():
    d = decide(list("AAAAAAAA"), list("AAAAAAAB"), AdaptiveConfig(threshold=0.3), rng())
    assert d.stop and d.reason == "below" and d.p_keep <= 0.1


def test_a_teacher_that_keeps_failing_stops_the_item_when_screen_needs_it_right():
    # Disjoint samples would be kept, but the teacher's class is not the right one.
    cfg = AdaptiveConfig(threshold=0.3, min_teacher_acc=0.5)
    d = decide(list("AAAA"), list("BBBB"), cfg, rng(), correct={"B"})
    assert d.stop and d.reason == "below"
    assert decide(list("AAAA"), list("BBBB"), cfg, rng(), correct={"A"}).reason == "above"


def test_ambiguous_samples_continue_and_the_budget_stops_them():
    cfg = AdaptiveConfig(threshold=0.3)
    assert decide(list("AABB"), list("ABBB"), cfg, rng()).reason == "continue"
    full = decide(list("AABBAABBAABBAABB"), list("ABBBABBBABBBABBB"), cfg, rng())
    assert full.stop and full.reason == "budget"


def test_a_stop_never_contradicts_the_decision_on_the_samples_so_far():
    # With a lax level the prediction alone would stop many items; a stop must still agree with
    # what screen decides on the samples drawn.
    cfg = AdaptiveConfig(threshold=0.1, level=0.51)
    for t, s in [("AAAA", "BBBB"), ("AAAB", "ABBB"), ("AAAA", "AAAB"), ("AABB", "BBBB"), ("ABCD", "ABCD")]:
        d = decide(list(t), list(s), cfg, rng())
        counts = ([t.count(c) for c in "ABCD"], [s.count(c) for c in "ABCD"])
        if d.reason == "above":
            assert keeps(*counts, 4, cfg)
        if d.reason == "below":
            assert not keeps(*counts, 4, cfg)


def test_shared_probability_follows_the_evidence():
    cfg = AdaptiveConfig()
    same = shared_probability(np.array([8.0, 0, 0]), np.array([8.0, 0, 0]), cfg)
    apart = shared_probability(np.array([8.0, 0, 0]), np.array([0, 8.0, 0]), cfg)
    assert same > 0.85 and apart < 0.01
    assert shared_probability(np.array([4.0, 0]), np.array([4.0, 0]), cfg.model_copy(update={"zero_prior": 0.0})) == 0


def test_predictive_interval_is_deterministic_for_a_seeded_generator():
    cfg = AdaptiveConfig()
    a = predictive_interval(list("AAB"), list("ABB"), 16, cfg, np.random.default_rng(5))
    assert a == predictive_interval(list("AAB"), list("ABB"), 16, cfg, np.random.default_rng(5))
    assert 0.0 <= a[0] <= a[1] <= 1.0


def test_sample_rounds_fixed_mode_draws_everything_once():
    calls = []

    def draw(keys, start, count):
        calls.append((tuple(keys), start, count))
        return [["A"] * count for _ in keys], [["A"] * count for _ in keys]

    out = sample_rounds(["x", "y"], draw, AdaptiveConfig(rounds=(16,)), adaptive=False)
    assert calls == [(("x", "y"), 0, 16)]
    assert [(o.rounds, o.reason, len(o.teacher)) for o in out] == [(1, "fixed", 16), (1, "fixed", 16)]


def test_sample_rounds_asks_only_undecided_items_for_the_next_round():
    calls = []

    def draw(keys, start, count):
        calls.append((tuple(keys), start, count))
        t = [["A"] * count if k == "same" else list("AABB") for k in keys]
        s = [["A"] * count if k == "same" else list("ABBB") for k in keys]
        return t, s

    out = sample_rounds(["same", "mixed"], draw, AdaptiveConfig(rounds=(4, 4, 4, 4)))
    assert calls[0] == (("same", "mixed"), 0, 4)
    assert [c[1:] for c in calls[1:]] == [(4 * r, 4) for r in range(1, len(calls))]
    assert all(keys == ("mixed",) for keys, _, _ in calls[1:])
    assert out[0].reason == "zero_delta" and out[0].rounds == 1 and len(out[0].teacher) == 4
    assert out[1].rounds == len(calls) > 1 and len(out[1].teacher) == len(out[1].student) == 4 * len(calls)


def test_sample_rounds_rejects_a_draw_that_returns_the_wrong_count():
    with pytest.raises(UserError, match="expected 4"):
        sample_rounds(["x"], lambda keys, start, count: ([["A"]], [["A"]]), AdaptiveConfig(rounds=(4,)))


def _simulated(n, adaptive):
    reqs = {r.key: r for r in (Request(id=f"q{i}", messages=[Message(role="user", content=[
        {"type": "text", "text": f"simulated question {i}"}])]) for i in range(n))}
    teacher = load_backend("sim:teacher?skill=0.8&seed=7")
    student = load_backend("sim:student?skill=0.3&seed=7")
    samplings = (Sampling(seed=1), Sampling(seed=2))

    def draw(keys, start, count):
        rows = []
        for backend, sampling in zip((teacher, student), samplings):
            done = backend.sample([reqs[k] for k in keys], sampling, [list(range(start, start + count))] * len(keys))
            rows.append([[answer_class(c.text, "string") for c in row] for row in done])
        return rows[0], rows[1]

    return sample_rounds(list(reqs), draw, CFG, adaptive=adaptive), teacher.completions + student.completions


CFG = AdaptiveConfig(rounds=schedule(16), threshold=0.3)


def test_adaptive_sampling_agrees_with_fixed_k16_at_a_fraction_of_the_calls():
    fixed, fixed_calls = _simulated(300, adaptive=False)
    adapt, adapt_calls = _simulated(300, adaptive=True)
    assert fixed_calls == 300 * 16 * 2
    assert adapt_calls / fixed_calls < 0.6

    def keep(o):  # screen's default rule on the samples (teacher accuracy not required here)
        t, s = distribution(o.teacher), distribution(o.student)
        classes = sorted(set(t) | set(s))
        return keeps([t.get(c, 0) for c in classes], [s.get(c, 0) for c in classes], 0, CFG)

    agree = sum(keep(f) == keep(a) for f, a in zip(fixed, adapt)) / 300
    assert agree >= 0.93
    for f, a in zip(fixed, adapt):  # adaptive samples are a prefix of the fixed ones
        assert f.teacher[:len(a.teacher)] == a.teacher and f.student[:len(a.student)] == a.student
        if a.reason == "budget":
            assert keep(f) == keep(a)
