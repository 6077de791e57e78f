"""The zero-delta test and the debiased Δ: exact against brute force, calibrated on identical samplers,
sensitive to real differences; Deltas written before them still read; screen's keep rules."""

import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from deltaprompts.divergence import Delta, keep_decision, make_delta, p_same, posterior, shared_posterior
from deltaprompts.divergence.metrics import total_variation
from deltaprompts.divergence.null import check_level
from deltaprompts.divergence.records import Sample, SampleSet
from deltaprompts.errors import UnknownNameError, UserError


def brute_p(ct, cs):
    """The permutation p-value by enumerating every split of the pooled samples."""
    pool = [c for c, n in enumerate(ct) for _ in range(n)] + [c for c, n in enumerate(cs) for _ in range(n)]
    nt, k = sum(ct), len(ct)

    def tv(idx):
        t = np.bincount([pool[i] for i in idx], minlength=k)
        s = np.bincount(pool, minlength=k) - t
        return 0.5 * np.abs(t / nt - s / (len(pool) - nt)).sum()

    observed = tv(range(nt))
    splits = [tv(c) for c in itertools.combinations(range(len(pool)), nt)]
    return sum(v >= observed - 1e-12 for v in splits) / len(splits)


@pytest.mark.parametrize("ct, cs", [([3, 1, 0], [1, 2, 1]), ([5, 0, 1], [2, 2, 2]), ([4, 1], [1, 3]),
                                    ([2, 2, 1, 1], [0, 3, 2, 1]), ([6, 0], [0, 2]), ([3, 2], [1, 1])])
def test_p_same_is_the_exact_permutation_p_value(ct, cs):
    assert p_same(ct, cs) == pytest.approx(brute_p(ct, cs), abs=1e-12)


def test_p_same_ignores_class_order_and_empty_classes():
    assert p_same([5, 2, 1], [1, 3, 4]) == p_same([1, 5, 2, 0], [4, 1, 3, 0])
    assert p_same([4, 4], [4, 4]) == 1.0  # identical samples are as alike as any split
    assert p_same([4, 0], [0, 4]) == pytest.approx(2 / math.comb(8, 4))  # only the two disjoint splits


def test_identical_samplers_are_zero_delta_at_the_stated_rate():
    # Two samplers of one distribution: rejected at level 0.05 in at most ~5% of items (the
    # discrete test is conservative), however flat the distribution.
    rng = np.random.default_rng(0)
    for probs in ([0.6, 0.4], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.05, 0.05]):
        rejected = sum(p_same(rng.multinomial(8, probs), rng.multinomial(8, probs)) <= 0.05 for _ in range(400))
        assert rejected / 400 <= 0.06


def test_clearly_different_samplers_are_not_zero_delta():
    rng = np.random.default_rng(1)
    hits = sum(p_same(rng.multinomial(16, [0.9, 0.1]), rng.multinomial(16, [0.1, 0.9])) <= 0.05 for _ in range(200))
    assert hits >= 195
    assert p_same([8, 0], [0, 8]) < 0.001


def test_debiased_delta_is_zero_for_one_class_and_below_the_plug_in_for_noise():
    assert posterior("tv", [8, 0], [8, 0]) == (0.0, 0.0)
    # 5/3 against 3/5 is sampling noise for a 50/50 model: plug-in TV 0.25, debiased far lower
    mean, lower = posterior("tv", [5, 3], [3, 5])
    assert total_variation({"a": 5, "b": 3}, {"a": 3, "b": 5}) == 0.25
    assert 0.0 <= lower <= mean < 0.12
    # disjoint samples: a large Δ with a lower bound well above 0
    mean, lower = posterior("tv", [8, 0], [0, 8])
    assert mean > 0.8 and 0.5 < lower <= mean


def test_debiased_delta_drifts_with_k_far_less_than_the_plug_in():
    # Identical flat 50/50 models (true Δ 0, the hardest case for a posterior): the plug-in TV is
    # pure noise that falls with k; the debiased one starts at under two thirds of it, shrinks
    # faster, and moves across k = 4..32 by well under the plug-in's drift.
    rng = np.random.default_rng(2)
    plug, deb = [], []
    for k in (4, 8, 16, 32):
        draws = [(rng.multinomial(k, [0.5, 0.5]), rng.multinomial(k, [0.5, 0.5])) for _ in range(300)]
        plug.append(np.mean([0.5 * np.abs(t / k - s / k).sum() for t, s in draws]))
        deb.append(np.mean([posterior("tv", t, s)[0] for t, s in draws]))
    assert all(d < 0.65 * p for d, p in zip(deb, plug))
    assert deb == sorted(deb, reverse=True) and deb[-1] < 0.06
    assert deb[0] - deb[-1] < 0.75 * (plug[0] - plug[-1])


def test_posterior_is_a_pure_function_of_the_counts():
    assert posterior("js", [5, 2, 1], [1, 3, 4]) == posterior("js", [1, 5, 2], [4, 1, 3])
    assert posterior("kl", [6, 2], [2, 6])[0] > 0
    assert shared_posterior([6, 2], [6, 2]) > 0.7 and shared_posterior([7, 1], [1, 7]) < 0.05


@pytest.mark.parametrize("level", [0, 1, -0.5, 1.5, float("nan"), float("inf"), "0.5", True])
def test_levels_outside_zero_one_get_one_clear_line(level):
    with pytest.raises(UserError, match="strictly between 0 and 1") as e:
        check_level(level, "zero_level")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError):
        posterior("tv", [1, 1], [1, 1], level=level)


def test_bad_counts_and_metrics_are_refused():
    with pytest.raises(UserError):
        p_same([0, 0], [1, 1])
    with pytest.raises(UserError):
        p_same([1, 2], [1])
    with pytest.raises(UnknownNameError):
        posterior("hellinger", [1, 1], [1, 1])


def sample_set(item, role, classes, right="A"):
    return SampleSet(item=item, role=role, samples=[
        Sample(item=item, index=i, text=c, answer_class=c, score=float(c == right)) for i, c in enumerate(classes)])


def delta(t, s, **kw):
    return make_delta(sample_set("x", "teacher", t), sample_set("x", "student", s), family="f",
                      question_family="q", **kw)


def test_a_delta_records_both_identity_and_the_statistical_test():
    d = delta("AAAAAAAA", "BBBBBBBB")
    assert not d.identical and not d.zero_delta and d.p_same < 0.001 and d.zero_level == 0.05
    assert d.debiased["tv"] > 0.8 and d.lower["tv"] > 0.5 and set(d.debiased) == set(d.lower) == {"tv", "js", "kl"}
    noisy = delta("AAAAABBB", "AAABBBBB")
    assert not noisy.identical and noisy.zero_delta and noisy.p_same > 0.05 and noisy.value == 0.25
    assert delta("AABB", "ABAB").identical
    strict = delta("AAAAABBB", "AAABBBBB", zero_level=0.9)
    assert strict.zero_level == 0.9 and not strict.zero_delta


def test_a_delta_written_before_the_test_existed_still_reads():
    old = {"item": "x", "family": "f", "question_family": "q", "metric": "tv", "value": 0.25,
           "values": {"tv": 0.25, "js": 0.05, "kl": 0.1, "gap": 0.25}, "teacher": {"A": 5, "B": 3},
           "student": {"A": 3, "B": 5}, "teacher_accuracy": 0.625, "student_accuracy": 0.375, "n_teacher": 8,
           "n_student": 8, "ci": [0.0, 0.6], "ci_level": 0.95, "bootstrap": 1000, "zero_delta": False, "rounds": 1,
           "stop": "fixed"}
    d = Delta.model_validate_json(json.dumps(old))
    assert not d.identical  # the old field meant identity
    assert d.zero_delta and d.p_same == pytest.approx(p_same([5, 3], [3, 5]))  # computed from the counts
    assert d.debiased["tv"] == posterior("tv", [5, 3], [3, 5])[0]
    assert Delta.model_validate_json(d.model_dump_json()) == d


def test_keep_rules():
    clear = delta("AAAAAAAA", "BBBBBBBB")
    noise = delta("AAAAABBB", "AAABBBBB")
    assert keep_decision(clear, "debiased", "tv", 0.3) == "kept"
    assert keep_decision(clear, "confident", "tv", 0.3) == "kept"
    assert keep_decision(noise, "debiased", "tv", 0.2) == "zero_delta"
    assert keep_decision(noise, "plugin", "tv", 0.2) == "kept"  # the old rule keeps sampling noise
    assert keep_decision(noise, "debiased", "tv", 0.0) == "kept"  # a threshold of 0 asks for nothing
    assert keep_decision(clear, "debiased", "tv", 0.95) == "low_delta"
    assert keep_decision(clear, "debiased", "tv", 0.3, min_teacher_acc=1.0) == "kept"
    wrong = delta("BBBBBBBB", "AAAAAAAA")
    assert keep_decision(wrong, "debiased", "tv", 0.3, min_teacher_acc=0.5) == "teacher_wrong"
    assert keep_decision(clear, "debiased", "gap", 0.5) == "kept"  # gap is compared as it is
    with pytest.raises(UnknownNameError, match="keep rule"):
        keep_decision(clear, "loose", "tv", 0.3)


def test_screen_and_score_refuse_bad_levels_thresholds_and_rules(tmp_path):
    from deltaprompts.cli import app

    cli = CliRunner()
    for args in (["--zero-level", "1.5"], ["--zero-level", "0"], ["--threshold", "nan"], ["--threshold", "inf"]):
        res = cli.invoke(app, ["score", str(tmp_path), "--teacher", "sim:t", "--student", "sim:s", *args])
        assert res.exit_code != 0 and res.exception is None or isinstance(res.exception, SystemExit), res.output
        assert "Traceback" not in res.output and ("zero_level" in res.output or "threshold" in res.output)
    res = cli.invoke(app, ["screen", str(tmp_path), "--min-delta", "0.3", "--out", str(tmp_path / "o"),
                           "--rule", "loose"])
    assert res.exit_code != 0 and "Traceback" not in res.output
