"""List and set ground truths in any common form, and hedged answers to closed questions scoring 0."""

from __future__ import annotations

import pytest

from deltaprompts.verifiers import VerifierError, UNPARSEABLE, answer_class, score_answer, score_answer_detailed
from deltaprompts.verifiers.rules import split_elements

OPTIONS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}

# ---- lists and sets ----------------------------------------------------------------------------

LIST_TRUTHS = ["apples|pears", "apples, pears", "apples; pears", "apples\npears", "apples and pears",
               "[apples, pears]", ["apples", "pears"], ("apples", "pears")]


@pytest.mark.parametrize("truth", LIST_TRUTHS, ids=repr)
@pytest.mark.parametrize("answer_type", ["list", "set"])
def test_a_list_ground_truth_in_any_form_matches_every_form(truth, answer_type):
    for prediction in ["apples, pears", "apples|pears", "apples; pears", "apples and pears", "- apples\n- pears",
                       "1. apples\n2. pears", "The answer is: apples, pears.", "['apples', 'pears']"]:
        assert score_answer(prediction, truth, answer_type) == 1.0, prediction
    assert score_answer("pears, apples", truth, answer_type) == (1.0 if answer_type == "set" else 0.0)
    assert score_answer("apples", truth, answer_type) == 0.0
    assert score_answer("apples, pears, plums", truth, answer_type) == 0.0


def test_the_issue_example_scores_1():
    assert score_answer("apples, pears", "apples, pears", "list") == 1.0
    assert score_answer("apples, pears", ["apples", "pears"], "list") == 1.0
    assert score_answer("pears and apples", {"apples", "pears"}, "set") == 1.0


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("1,000, 2,000", ["1,000", "2,000"]),  # a comma before exactly three digits groups thousands
        ("1,000,000, 5", ["1,000,000", "5"]),
        ("10,200", ["10,200"]),  # one number, not 10 and 200
        ("2007,2008", ["2007", "2008"]),  # four digits after the comma: a separator
        ("Sales, North|Sales, South", ["Sales, North", "Sales, South"]),  # the strongest separator wins
        ("Research and Development; Sales", ["Research and Development", "Sales"]),
        ("a, b and c", ["a", "b", "c"]),
        ("a, b, and c", ["a", "b", "c"]),
        ("R&D, Sales", ["R&D", "Sales"]),  # '&' separates only with spaces around it
        ("Tom & Jerry", ["Tom", "Jerry"]),
        ("- 5\n- -3\n* 7", ["5", "-3", "7"]),  # bullets dropped, the sign kept
        ("[2007; 2008]", ["2007", "2008"]),
        ("(red)", ["red"]),
        ("", []),
    ],
)
def test_split_elements(text, elements):
    assert split_elements(text) == elements


def test_numbers_with_thousands_separators_stay_whole_in_ground_truth_and_prediction():
    assert score_answer("1,000, 2,000", "1,000, 2,000", "list") == 1.0
    assert score_answer("1000, 2000", "1,000, 2,000", "list") == 1.0
    assert score_answer("1,000, 2,000", [1000, 2000], "list") == 1.0
    assert score_answer("1,000, 2,000", "1000|2000", "list") == 1.0
    assert score_answer("10,200", "10|200", "list") == 0.0
    assert score_answer("10, 200", "10|200", "list") == 1.0


def test_generated_bar_separated_ground_truths_keep_working():
    assert score_answer("2007, 2008", "2007|2008", "list") == 1.0
    assert score_answer("Sales, North; Sales, South", "Sales, North|Sales, South", "list") == 1.0
    assert score_answer("Sales, North|Sales, South", "Sales, North|Sales, South", "set") == 1.0
    assert score_answer("Sales, North, Sales, South", "Sales, North|Sales, South", "list") == 0.0


def test_an_element_holding_a_separator_matches_a_one_element_ground_truth():
    assert score_answer("Research and Development", ["Research and Development"], "list") == 1.0
    assert score_answer("Research and Development", "Research and Development", "list") == 1.0
    # three elements by the usual split, which the ground truth's two refute; split at commas only, it matches
    assert score_answer("Research and Development, Sales", ["Research and Development", "Sales"], "set") == 1.0
    assert score_answer("Research and Development; Sales", ["Research and Development", "Sales"], "set") == 1.0
    assert score_answer("Research, Development and Sales", ["Research and Development", "Sales"], "set") == 0.0
    assert answer_class("Research and Development", "list") == "research|development"  # no truth to guide it
    assert score_answer("2007 and 2008", ["2007"], "list") == 0.0  # two numbers are not one


def test_sequence_elements_may_be_numbers_and_bools():
    assert score_answer("1.5, 3", [1.5, 3], "list") == 1.0
    assert score_answer("yes, no", [True, False], "list") == 1.0
    assert score_answer("yes", True, "yes_no") == 1.0


def test_span_ground_truth_may_be_a_sequence_of_alternatives():
    assert score_answer("ITC", ["ITC Limited", "ITC"], "span") == 1.0
    assert score_answer("ITC Limited", ("ITC Limited", "ITC"), "span") == 1.0


def test_canonical_classes_of_list_forms_agree():
    forms = ["apples, pears", "apples; pears", "apples and pears", "- apples\n- pears", "apples|pears"]
    assert {answer_class(f, "list") for f in forms} == {"apples|pears"}
    assert answer_class("pears, apples", "set") == answer_class("apples and pears", "set") == "apples|pears"


@pytest.mark.parametrize(
    ("truth", "answer_type", "fragment"),
    [
        (["1"], "number", "only list, set, span take a list of elements"),
        ([], "list", "empty list; give at least one element"),
        (["a", {}], "list", "element 1 is {}; elements must be non-empty strings, numbers or bools"),
        (["a", " "], "set", "element 1 is ' '"),
        ({"a", "b"}, "list", "must be ordered (a list or tuple), not a set"),
        (None, "list", "a list, set or span ground truth may also be a list of elements"),
        ("|", "list", "ground truth '|' is not a valid 'list' answer"),
        (True, "number", "a bool for yes_no"),
    ],
)
def test_bad_ground_truths_name_the_problem(truth, answer_type, fragment):
    with pytest.raises(VerifierError) as info:
        score_answer("x", truth, answer_type)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# ---- hedged answers ----------------------------------------------------------------------------

HEDGED_YES_NO = ["Yes and no", "yes or no", "Yes/No", "either yes or no", "Yes. Actually, no.", "No, yes",
                 "Yes, but no.", "maybe yes, maybe no", "True or false", "Yes - no", "Yes. I think no."]


@pytest.mark.parametrize("prediction", HEDGED_YES_NO)
@pytest.mark.parametrize("truth", ["Yes", "No"])
def test_yes_no_naming_both_is_ambiguous(prediction, truth):
    result = score_answer_detailed(prediction, truth, "yes_no")
    assert (result.score, result.parsed, result.reason) == (0.0, False, "ambiguous")
    assert answer_class(prediction, "yes_no") == UNPARSEABLE


@pytest.mark.parametrize(
    ("prediction", "truth"),
    [("Yes, there is no gap.", "Yes"), ("No, it is not.", "No"), ("Yes, no-one was missing", "Yes"),
     ("Yes (no doubt)", "Yes"), ("I think no", "No"), ("yes and yes", "Yes"), ("No no no", "No")],
)
def test_yes_no_with_one_verdict_still_scores(prediction, truth):
    assert score_answer(prediction, truth, "yes_no") == 1.0
    assert answer_class(prediction, "yes_no") == truth.lower()


HEDGED_CHOICES = ["B or C", "b or c", "either B or C", "either b or c", "A/B", "B, C", "(A) or (B)", "(B) or (A)",
                  "B) or C)", "B and/or C", "both A and B", "I think B or C", "option B or option C",
                  "cat or dog", "either the dog or the cat", "B. cat", "B. dog or cat", "B, either dog or cat"]


@pytest.mark.parametrize("prediction", HEDGED_CHOICES)
def test_choice_naming_two_options_is_ambiguous(prediction):
    result = score_answer_detailed(prediction, "B", "choice", OPTIONS)
    assert (result.score, result.parsed, result.reason) == (0.0, False, "ambiguous")
    assert answer_class(prediction, "choice", OPTIONS) == UNPARSEABLE


@pytest.mark.parametrize("prediction", ["B", "(B) dog", "B. dog", "B (dog)", "Option B", "A dog",
                                        "I choose option b because it barks.", "B. dog, not cat",
                                        "B. The dog is larger than the cat"])
def test_choice_naming_one_option_still_scores(prediction):
    assert score_answer(prediction, "B", "choice", OPTIONS) == 1.0
    assert answer_class(prediction, "choice", OPTIONS) == "B"


def test_letters_that_are_not_options_are_no_alternative():
    assert score_answer_detailed("Q&A", "B", "choice", OPTIONS).reason == "no_option"
    assert score_answer_detailed("B or X", "B", "choice", OPTIONS).reason == "no_option"
    assert score_answer_detailed("B or C", "B", "choice").reason == "ambiguous"  # letters only: C may be one


@pytest.mark.parametrize(
    ("prediction", "truth", "answer_type"),
    [
        ("<think>Yes or no? It could be either.</think>The answer is no.", "No", "yes_no"),
        ("Yes and no are both plausible, but the bars differ.\nFinal answer: no", "No", "yes_no"),
        ("It is either B or C. Looking again, \\boxed{C}", "C", "choice"),
        ("A or B?\n<answer>B</answer>", "B", "choice"),
        ("Maybe cat, maybe dog. **Answer:** dog", "B", "choice"),
    ],
)
def test_the_final_answer_marker_wins_over_earlier_hedging(prediction, truth, answer_type):
    options = OPTIONS if answer_type == "choice" else None
    assert score_answer(prediction, truth, answer_type, options) == 1.0


def test_a_hedge_never_shares_a_class_with_a_clean_answer():
    clean = {answer_class(t, "yes_no") for t in ("yes", "no")} | {answer_class(t, "choice", OPTIONS) for t in "ABCD"}
    hedges = {answer_class(t, "yes_no") for t in HEDGED_YES_NO}
    hedges |= {answer_class(t, "choice", OPTIONS) for t in HEDGED_CHOICES}
    assert UNPARSEABLE not in clean and hedges == {UNPARSEABLE}
