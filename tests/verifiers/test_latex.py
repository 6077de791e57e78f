"""LaTeX answers through the Math-Verify worker process: equivalence, fallbacks, threads, timeouts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaprompts.verifiers import answer_class, score_answer, score_answer_detailed
from deltaprompts.verifiers import latex

pytest.importorskip("math_verify", reason="LaTeX scoring needs the optional extra deltaprompts[math]")


@pytest.mark.parametrize(
    ("prediction", "truth", "expected"),
    [
        ("\\boxed{\\frac{1}{2}}", "\\frac{2}{4}", 1.0),
        ("The answer is $0.5$.", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}", 1.0),
        ("\\boxed{(1, 2]}", "(1,2]", 1.0),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),
        ("$x + 1$", "1 + x", 1.0),
        ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", 0.0),
    ],
)
def test_latex_equivalence(prediction, truth, expected):
    assert score_answer(prediction, truth, "latex") == expected


def test_number_falls_back_to_math_verify_for_latex():
    assert score_answer("\\boxed{\\frac{3}{4}}", "0.75", "number") == 1.0
    assert score_answer("Final answer: $\\dfrac{3}{4}$", "0.76", "number") == 1.0  # within 5%
    assert score_answer("\\boxed{2\\sqrt{2}}", "2.83", "number") == 1.0
    assert score_answer("\\boxed{\\frac{1}{2}}", "0.75", "number") == 0.0


def test_latex_canonical_class():
    assert answer_class("\\boxed{\\frac{2}{4}}", "latex") == answer_class("$\\frac{1}{2}$", "latex")


def test_unreadable_latex_prediction_is_unparseable():
    result = score_answer_detailed("I do not know", "\\frac{1}{2}", "latex")
    assert result.score == 0.0
    assert not result.parsed


def test_bad_latex_ground_truth_is_an_error():
    with pytest.raises(ValueError, match="ground truth"):
        score_answer("1", "not math at all !!", "latex")


def test_scoring_from_threads():
    """Math-Verify's own timeout is signal-based and fails outside the main thread; the worker is not."""
    cases = [(f"\\boxed{{\\frac{{{n}}}{{{2 * n}}}}}", "\\frac{1}{2}") for n in range(1, 25)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        scores = list(pool.map(lambda case: score_answer(case[0], case[1], "latex"), cases))
    assert scores == [1.0] * len(cases)


def test_timeout_kills_the_worker_and_the_next_call_restarts_it(monkeypatch):
    score_answer("\\frac{1}{2}", "0.5", "latex")
    monkeypatch.setattr(latex, "CALL_TIMEOUT_S", 0.02)
    # Comparing two 40th powers takes Math-Verify 0.17-0.4 s here (0.2 s was too tight: it flaked in CI).
    result = score_answer_detailed("$(x+2)^{40}$", "(x+1)^{40}", "latex")
    assert (result.score, result.parsed, result.reason) == (0.0, False, "timeout")
    monkeypatch.undo()
    assert score_answer("\\boxed{\\frac{1}{2}}", "\\frac{2}{4}", "latex") == 1.0


def test_a_dead_worker_is_replaced():
    score_answer("\\frac{1}{2}", "0.5", "latex")
    latex._worker.proc.kill()
    latex._worker.proc.wait()
    assert score_answer("\\boxed{\\frac{1}{2}}", "\\frac{2}{4}", "latex") == 1.0


def test_missing_math_verify_is_reported_not_guessed(monkeypatch):
    monkeypatch.setattr(latex, "available", lambda: False)
    result = score_answer_detailed("\\boxed{\\frac{3}{4}}", "0.75", "number")
    assert (result.score, result.parsed, result.reason) == (0.0, False, "math_verify_missing")


@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=40))
def test_latex_scoring_never_raises_on_arbitrary_text(text):
    result = score_answer_detailed(text, "\\frac{1}{2}", "latex")
    assert 0.0 <= result.score <= 1.0
    assert result.parsed or result.score == 0.0
