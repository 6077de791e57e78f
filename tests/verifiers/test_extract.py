"""Answer extraction from reasoning-model outputs."""

from __future__ import annotations

import pytest

from deltaprompts.verifiers import extract_answer
from deltaprompts.verifiers.extract import SHORT_OUTPUT_CHARS

LONG = "Let me look at the chart carefully. " * 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # reasoning blocks
        ("<think>maybe 7</think>The answer is 9", "9"),
        ("<think>a</think><think>b</think>12", "12"),
        ("<THINK>x</THINK> 5", "5"),
        ("<think>the answer is 9", None),
        ("<think>x</think>", None),
        # <answer> tags, the last one wins; an unclosed tag runs to the end
        ("<answer>Greece</answer>", "Greece"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),
        ("<answer>\\boxed{4}</answer>", "4"),
        ("<answer>Final answer: 6</answer>", "6"),
        (f"{LONG}<answer>7", "7"),
        # \boxed, balanced braces, the last one wins
        (f"{LONG}so \\boxed{{42}}.", "42"),
        ("\\boxed{1} and then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{a{b}c}", "a{b}c"),
        ("\\boxed{\\text{Paris}}", "Paris"),
        # answer markers
        (f"{LONG}\nAnswer: 12", "12"),
        (f"{LONG}\nFinal answer: 12\nThanks for asking!", "12"),
        (f"{LONG}\nFINAL ANSWER: 12", "12"),
        (f"{LONG} The answer is 12.", "12"),
        (f"{LONG}\n**Answer:** B", "B"),
        (f"{LONG}\n**Answer**: B", "B"),
        (f"{LONG}\nAnswer:\n\n  42", "42"),
        ("I answered: 5 before, but the answer is 6", "6"),
        ("The correct answer is (C).", "(C)"),
        # short outputs are the answer; long ones without a marker are not
        ("42", "42"),
        ("  Paris.  ", "Paris"),
        ("x" * SHORT_OUTPUT_CHARS, "x" * SHORT_OUTPUT_CHARS),
        ("x" * (SHORT_OUTPUT_CHARS + 1), None),
        (LONG, None),
        ("", None),
        ("   ", None),
        # normalisation
        ("\u22125", "-5"),
        ("\uff11\uff12", "12"),  # full-width digits (NFKC)
        ("**42**", "42"),
        ("`42`", "42"),
        ("_42_", "42"),
        ("*Paris*", "Paris"),
        ("snake_case_name", "snake_case_name"),
        ('"Paris"', "Paris"),
        ("“Paris”.", "Paris"),
        ("'B'", "B"),
        ("Yes!!", "Yes"),
        ("$5$", "5"),
        ("$5", "$5"),
        ("50\\%", "50%"),
        ("-5.", "-5"),
    ],
)
def test_extract(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("value", [None, 12, b"12", ["12"]])
def test_non_strings_have_no_answer(value):
    assert extract_answer(value) is None
