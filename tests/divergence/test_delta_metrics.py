"""Δ metrics against hand-computed values, zero-delta detection, answer classes and the bootstrap CI."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaprompts.divergence import (
    bootstrap_ci,
    correctness_gap,
    distribution,
    distribution_metrics,
    jensen_shannon,
    kl_smoothed,
    token_kl,
    total_variation,
    identical,
)
from deltaprompts.errors import UnknownNameError, UserError
from deltaprompts.verifiers import UNPARSEABLE, answer_class


def test_total_variation_by_hand():
    assert total_variation({"A": 3, "B": 1}, {"A": 1, "B": 3}) == pytest.approx(0.5)
    assert total_variation({"A": 2}, {"B": 5}) == pytest.approx(1.0)
    # counts are normalised: 8 samples against 4
    assert total_variation({"A": 6, "B": 2}, {"A": 2, "B": 1, "C": 1}) == pytest.approx(0.5 * (0.25 + 0.0 + 0.25))


def test_jensen_shannon_by_hand_base_2():
    assert jensen_shannon({"A": 1}, {"B": 1}) == pytest.approx(1.0)
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4)
    kl_pm = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_qm = math.log2(1 / 0.75)
    assert jensen_shannon({"A": 1, "B": 1}, {"A": 4}) == pytest.approx(0.5 * (kl_pm + kl_qm))
    assert jensen_shannon({"A": 1, "B": 1}, {"A": 4}) == pytest.approx(0.311278, abs=1e-6)


def test_kl_smoothed_by_hand():
    # classes A, B; alpha 0.5: P = (3.5/4, 0.5/4), Q = (0.5/4, 3.5/4)
    assert kl_smoothed({"A": 3}, {"B": 3}) == pytest.approx(0.75 * math.log(7))
    # a class only the student has still counts in the smoothing denominator (K = 2)
    p, q = (2 + 1) / (2 + 2), (1 + 1) / (2 + 2)
    expected = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    assert kl_smoothed({"A": 2}, {"A": 1, "B": 1}, alpha=1.0) == pytest.approx(expected)
    assert kl_smoothed({"A": 5, "B": 1}, {"A": 5, "B": 1}) == 0.0


def test_correctness_gap_and_token_kl_by_hand():
    assert correctness_gap([1, 1, 0, 1], [0, 0, 1, 0]) == pytest.approx(0.5)
    assert correctness_gap([0.5, 0.5], [1.0]) == pytest.approx(-0.5)
    assert token_kl([-0.1, -0.5], [-1.0, -0.7]) == pytest.approx((0.9 + 0.2) / 2)
    assert token_kl([-2.0], [-1.0]) == pytest.approx(-1.0)  # one sample can be negative


@pytest.mark.parametrize("call", [
    lambda: token_kl([-1.0], [-1.0, -2.0]),
    lambda: token_kl([], []),
    lambda: token_kl([float("-inf")], [-1.0]),
    lambda: total_variation({}, {"A": 1}),
    lambda: kl_smoothed({"A": 1}, {"A": 1}, alpha=0),
    lambda: correctness_gap([], [1.0]),
    lambda: bootstrap_ci(["A"], [], "tv"),
    lambda: bootstrap_ci(["A"], ["B"], "tv", b=0),
])
def test_bad_inputs_raise_user_errors(call):
    with pytest.raises(UserError):
        call()


def test_unknown_metric_names_the_allowed_ones():
    with pytest.raises(UnknownNameError, match="did you mean 'tv'.*Allowed: js, kl, tv"):
        bootstrap_ci(["A"], ["B"], "tvd")


def test_identical_means_same_classes_in_same_proportions():
    assert identical({"A": 4}, {"A": 4})
    assert identical({"A": 2, "B": 2}, {"A": 1, "B": 1})  # same proportions
    assert not identical({"A": 4}, {"A": 3, "B": 1})
    assert not identical({"A": 1}, {"B": 1})
    values = distribution_metrics({"A": 3, UNPARSEABLE: 1}, {UNPARSEABLE: 1, "A": 3})
    assert values == {"tv": 0.0, "js": 0.0, "kl": 0.0}


def test_answer_classes_come_from_the_verifiers():
    assert answer_class("The answer is 7.", "count") == "7"
    assert answer_class("<think>hmm, maybe 7", "count") == UNPARSEABLE  # never closed: no answer
    assert answer_class("Answer: Yes", "yes_no") == answer_class("yes", "yes_no")
    assert answer_class("Answer: (B)", "choice", {"A": "cat", "B": "dog"}) == "B"
    assert distribution(["7", "7", UNPARSEABLE, "8"]) == {"7": 2, "8": 1, UNPARSEABLE: 1}


@given(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=12),
       st.lists(st.sampled_from("ABCD"), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_metric_bounds_and_symmetry(t, s):
    p, q = distribution(t), distribution(s)
    tv, js = total_variation(p, q), jensen_shannon(p, q)
    assert 0.0 <= js <= tv + 1e-12 <= 1.0 + 1e-12  # JS (bits) never exceeds TV
    assert tv == pytest.approx(total_variation(q, p)) and js == pytest.approx(jensen_shannon(q, p))
    assert kl_smoothed(p, q) >= 0.0
    assert (tv == 0.0) == identical(p, q)


@given(st.lists(st.sampled_from("ABC"), min_size=1, max_size=10),
       st.lists(st.sampled_from("ABC"), min_size=1, max_size=10),
       st.sampled_from(["tv", "js", "kl"]))
@settings(max_examples=60, deadline=None)
def test_bootstrap_ci_contains_the_point_estimate(t, s, metric):
    lo, hi = bootstrap_ci(t, s, metric, b=200, seed=3)
    point = distribution_metrics(distribution(t), distribution(s))[metric]
    assert lo <= point + 1e-12 and point <= hi + 1e-12


def test_bootstrap_ci_is_seeded_and_deterministic():
    t, s = list("AAABBC"), list("ABBBCC")
    a = bootstrap_ci(t, s, "tv", b=500, seed=11)
    assert a == bootstrap_ci(t, s, "tv", b=500, seed=11)
    assert a != bootstrap_ci(t, s, "tv", b=500, seed=12)
    wide = bootstrap_ci(t, s, "tv", b=500, seed=11, level=0.99)
    assert wide[0] <= a[0] and wide[1] >= a[1]
    assert bootstrap_ci(list("AAAA"), list("BBBB"), "tv") == (1.0, 1.0)  # nothing to resample
