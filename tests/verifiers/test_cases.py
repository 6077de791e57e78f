"""The reference cases measured against standard scorers, plus worked examples for every answer type."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from deltaprompts.verifiers import ANSWER_TYPES, UNPARSEABLE, answer_class, score_answer, score_answer_detailed

DATA = Path(__file__).resolve().parent / "data" / "verifier_cases.tsv"
# The shared original, beside a fresh clone; the copy in data/ is what the tests read.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "verifier_cases.tsv"
OPTIONS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}


def _rows() -> list[dict[str, str]]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _options(field: str) -> dict[str, str] | None:
    return dict(pair.split("=", 1) for pair in field.split("|")) if field else None


ROWS = _rows()


def test_reference_file_has_all_cases():
    assert len(ROWS) == 31
    assert {r["answer_type"] for r in ROWS} <= set(ANSWER_TYPES)


def test_copy_matches_shared_original():
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not beside this checkout; the copy in tests/verifiers/data is used")
    assert SHARED.read_bytes() == DATA.read_bytes()


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}-{r['answer_type']}" for i, r in enumerate(ROWS)])
def test_reference_case(row):
    score = score_answer(row["prediction"], row["ground_truth"], row["answer_type"], _options(row["options"]))
    assert score == float(row["expected"]), row["source_note"]


EXAMPLES = [
    # number
    ("The answer is 1,234,567.", "1234567", "number", {}, 1.0),
    ("1,00", "100", "number", {}, 0.0),  # not a thousands number
    ("12,34", "1234", "number", {}, 0.0),
    ("2.5e-3", "0.0025", "number", {}, 1.0),
    ("-1.5E+2", "-150", "number", {}, 1.0),
    ("150", "-150", "number", {}, 0.0),  # the sign is kept
    ("2.5 million", "2500000", "number", {}, 1.0),
    ("3 thousand", "3000", "number", {}, 1.0),
    ("300K", "300", "number", {}, 1.0),  # K/M/B only scale money: 300K may be kelvin
    ("3/4", "0.75", "number", {}, 1.0),
    ("106", "100", "number", {}, 0.0),
    ("104", "100", "number", {}, 1.0),
    ("110", "100", "number", {"rel_tol": 0.1}, 1.0),
    ("0.0000001", "0", "number", {}, 1.0),  # within abs_tol 1e-6
    ("0.001", "0", "number", {}, 0.0),
    ("0.001", "0", "number", {"abs_tol": 0.01}, 1.0),
    ("5 (five)", "5", "number", {}, 1.0),  # the same number twice is one number
    ("In 2019 it was 12", "12", "number", {}, 0.0),
    ("seven", "7", "number", {}, 1.0),
    # count
    ("three", "3", "count", {}, 1.0),
    ("There are twenty-one bars.", "21", "count", {}, 1.0),
    ("3.0", "3", "count", {}, 1.0),
    ("4", "3", "count", {}, 0.0),
    # percent
    ("25 percent", "25", "percent", {}, 1.0),
    ("25 per cent", "25%", "percent", {}, 1.0),
    ("0.25", "25", "percent", {}, 1.0),
    ("0.25%", "25", "percent", {}, 0.0),  # an explicit percent is never rescaled
    ("0.5", "0.5%", "percent", {}, 1.0),
    ("30%", "25%", "percent", {}, 0.0),
    # currency
    ("$1,000", "1000", "currency", {}, 1.0),
    ("USD 1000", "$1000", "currency", {}, 1.0),
    ("€1000", "$1000", "currency", {}, 0.0),  # a different currency
    ("1000 euros", "EUR 1000", "currency", {}, 1.0),
    ("$1.2M", "$1,200,000", "currency", {}, 1.0),
    ("$3bn", "3000000000", "currency", {}, 1.0),
    ("2.5 million dollars", "$2500000", "currency", {}, 1.0),
    ("$5k", "5000", "currency", {}, 1.0),
    ("C$5", "CAD 5", "currency", {}, 1.0),
    ("C$5", "USD 5", "currency", {}, 0.0),
    ("-$5", "-5", "currency", {}, 1.0),
    ("£5 or €5", "5", "currency", {}, 0.0),
    # year
    ("in 2008", "2008", "year", {}, 1.0),
    ("2009", "2008", "year", {}, 0.0),
    ("2008-2009", "2008", "year", {}, 0.0),
    # string
    ("The Germany.", "germany", "string", {}, 1.0),
    ('"North-America"', "North America", "string", {}, 1.0),
    ("three apples", "3 apples", "string", {}, 1.0),
    ("Zürich", "Zurich", "string", {}, 1.0),
    ("USA", "United States", "string", {"synonyms": {"United States": ["USA", "U.S."]}}, 1.0),
    ("U.S.", "USA", "string", {"synonyms": {"United States": ["USA", "U.S."]}}, 1.0),
    ("Greece", "Germany", "string", {}, 0.0),
    # yes_no
    ("YES", "yes", "yes_no", {}, 1.0),
    ("No, it is not.", "No", "yes_no", {}, 1.0),
    ("True", "Yes", "yes_no", {}, 1.0),
    ("Yes, there is no gap.", "Yes", "yes_no", {}, 1.0),  # the first word decides
    ("maybe yes, maybe no", "Yes", "yes_no", {}, 0.0),
    # list / set: '|' separates ground-truth elements
    ("2007, 2008", "2007|2008", "list", {}, 1.0),
    ("2008, 2007", "2007|2008", "list", {}, 0.0),  # a list is ordered
    ("2008, 2007", "2007|2008", "set", {}, 1.0),  # a set is not
    ("2007 and 2008", "2007|2008", "set", {}, 1.0),
    ("[2007; 2008]", "2007|2008", "list", {}, 1.0),
    ("1,000, 2,000", "1000|2000", "list", {}, 1.0),
    ("2007", "2007|2008", "set", {}, 0.0),
    ("2007, 2008, 2009", "2007|2008", "set", {}, 0.0),
    ("2007, 2007, 2008", "2007|2008", "set", {}, 1.0),  # a set ignores repeats
    ("Red, blue", "red|Blue", "list", {}, 1.0),
    ("99, 201", "100|200", "list", {}, 0.0),  # list numbers are exact by default
    ("99, 201", "100|200", "list", {"rel_tol": 0.05}, 1.0),
    ("10%, 20%", "10|20", "list", {"element_type": "percent"}, 1.0),
    # span: ANLS, best over '|' alternatives
    ("ITC Limited", "ITC Limited", "span", {}, 1.0),
    ("  itc   limited ", "ITC Limited", "span", {}, 1.0),
    ("ITC Limite", "ITC Limited", "span", {}, 1 - 1 / 11),
    ("ITC", "ITC Limited|ITC", "span", {}, 1.0),
    ("abc", "xyz", "span", {}, 0.0),
    ("ab", "abcd", "span", {}, 0.0),  # normalised distance exactly 0.5: below the threshold rule
    ("abc", "abcd", "span", {}, 0.75),
]


@pytest.mark.parametrize(("prediction", "truth", "answer_type", "kwargs", "expected"), EXAMPLES)
def test_examples(prediction, truth, answer_type, kwargs, expected):
    assert score_answer(prediction, truth, answer_type, **kwargs) == pytest.approx(expected)


CHOICES = [
    ("B", 1.0), ("(B)", 1.0), ("B.", 1.0), ("B)", 1.0), ("[B]", 1.0), ("**B**", 1.0), ("\\boxed{B}", 1.0),
    ("\\boxed{\\text{B}}", 1.0), ("Answer: b", 1.0), ("The answer is (B) dog.", 1.0), ("B. dog", 1.0),
    ("Option B", 1.0), ("I choose option b because it barks.", 1.0), ("dog", 1.0), ("The Dog.", 1.0),
    ("A cat is not right; the answer is B", 1.0), ("A", 0.0), ("(A) cat", 0.0),
    ("B. cat", 0.0),  # letter and text disagree: ambiguous
    ("cat or dog", 0.0), ("(A) or (B)", 0.0), ("I'm not sure.", 0.0), ("E", 0.0), ("wolf", 0.0),
    ("A dog", 1.0),  # the article is not option A
]


@pytest.mark.parametrize(("prediction", "expected"), CHOICES)
def test_choice_forms(prediction, expected):
    assert score_answer(prediction, "B", "choice", OPTIONS) == expected


def test_choice_prefers_the_longer_option_text():
    options = {"A": "cat", "B": "black cat"}
    assert score_answer("It is a black cat", "B", "choice", options) == 1.0
    assert score_answer("It is a cat", "A", "choice", options) == 1.0


def test_choice_without_options_reads_letters_only():
    assert score_answer("(C)", "C", "choice") == 1.0
    assert score_answer("the dog", "B", "choice") == 0.0


def test_choice_ground_truth_may_be_option_text():
    assert score_answer("B", "dog", "choice", OPTIONS) == 1.0


@pytest.mark.parametrize(
    ("prediction", "answer_type", "reason"),
    [
        ("<think>never finished", "number", "no_answer"),
        ("I cannot tell.", "number", "no_number"),
        ("3 or 5", "number", "ambiguous"),
        ("maybe", "yes_no", "no_answer"),
        ("I'm not sure.", "choice", "no_option"),
        ("x " * 150, "span", "no_answer"),
    ],
)
def test_unparseable_is_told_apart_from_wrong(prediction, answer_type, reason):
    truth = {"number": "5", "yes_no": "yes", "choice": "B", "span": "abc"}[answer_type]
    result = score_answer_detailed(prediction, truth, answer_type, OPTIONS if answer_type == "choice" else None)
    assert (result.score, result.parsed, result.reason) == (0.0, False, reason)


def test_wrong_answer_is_parsed():
    result = score_answer_detailed("The answer is 7", "5", "number")
    assert (result.score, result.parsed, result.reason, result.answer) == (0.0, True, "mismatch", "7")


def test_span_partial_score_is_reported():
    result = score_answer_detailed("ITC Limite", "ITC Limited", "span")
    assert result.reason == "partial" and 0.5 < result.score < 1


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: score_answer("1", "1", "numbr"), "'numbr'; did you mean 'number'"),
        (lambda: score_answer("1", "1", "number", tol=0.1), "'tol'; did you mean 'rel_tol'"),
        (lambda: score_answer("1", "1", "count", rel_tol=0.1), "Allowed: (none)"),
        (lambda: score_answer("1", "1", "number", rel_tol=-1), "rel_tol=-1"),
        (lambda: score_answer("1", "1", "span", threshold=2), "threshold=2"),
        (lambda: score_answer("1", "1", "list", element_type="choice"), "element_type 'choice'"),
        (lambda: score_answer("1", "abc", "number"), "ground truth 'abc'"),
        (lambda: score_answer("1", "", "number"), "non-empty string"),
        (lambda: score_answer("1", "E", "choice", OPTIONS), "not_an_option"),
        (lambda: score_answer("1", "A", "choice", {"AB": "x"}), "single letters"),
        (lambda: score_answer("1", "1", "number", {"A": "x"}), "only used by answer_type 'choice'"),
        (lambda: answer_class("1", "nope"), "unknown answer_type 'nope'"),
    ],
)
def test_errors_name_the_value_and_the_allowed_ones(call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("answer", "answer_type", "kwargs", "expected"),
    [
        ("The answer is 1,000", "number", {}, "1000"),
        ("1e3", "number", {}, "1000"),
        ("three", "count", {}, "3"),
        ("0.25", "percent", {}, "25%"),
        ("25 percent", "percent", {}, "25%"),
        ("$1.2M", "currency", {}, "$ 1200000"),
        ("The Germany.", "string", {}, "germany"),
        ("USA", "string", {"synonyms": {"United States": ["USA"]}}, "united states"),
        ("Yes, it is.", "yes_no", {}, "yes"),
        ("2008, 2007", "list", {}, "2008|2007"),
        ("2008, 2007", "set", {}, "2007|2008"),
        ("  ITC  Limited ", "span", {}, "itc limited"),
        ("I cannot tell", "number", {}, UNPARSEABLE),
        ("<think>unfinished", "string", {}, UNPARSEABLE),
    ],
)
def test_answer_class(answer, answer_type, kwargs, expected):
    assert answer_class(answer, answer_type, **kwargs) == expected


def test_answer_class_choice():
    assert answer_class("the dog", "choice", OPTIONS) == answer_class("(B)", "choice", OPTIONS) == "B"


def _item(answer, answer_type, options=None, tolerance=None):
    from types import SimpleNamespace

    question = SimpleNamespace(answer=answer, answer_type=answer_type, options=options, tolerance=tolerance)
    return SimpleNamespace(question=question)


def test_score_item_answer_uses_the_question():
    from deltaprompts.verifiers import score_item_answer, score_item_answer_detailed

    assert score_item_answer(_item("100", "number"), "The answer is 104") == 1.0
    assert score_item_answer(_item("100", "number", tolerance=0.01), "104") == 0.0
    assert score_item_answer(_item("3", "count", tolerance=0.5), "3") == 1.0  # exact types ignore it
    assert score_item_answer(_item("B", "choice", OPTIONS), "the dog") == 1.0
    assert score_item_answer_detailed(_item("B", "choice", OPTIONS), "hmm").reason == "no_option"


OWN_ANSWERS = [
    ("12.5", "number", None), ("-1,234", "number", None), ("3", "count", None), ("25%", "percent", None),
    ("$1,200", "currency", None), ("EUR 5", "currency", None), ("2008", "year", None),
    ("North America", "string", None), ("Yes", "yes_no", None), ("B", "choice", OPTIONS),
    ("2007|2008", "list", None), ("red|blue", "set", None), ("ITC Limited", "span", None),
]


@pytest.mark.parametrize(("truth", "answer_type", "options"), OWN_ANSWERS)
def test_a_ground_truth_scores_1_against_itself(truth, answer_type, options):
    assert score_answer(truth, truth, answer_type, options) == 1.0
