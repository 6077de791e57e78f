"""A ground truth always matches itself: for every answer type, its canonical form, its rendering in
the item format (`questions.format_answer`) and the usual ways of writing it all score 1 against each
other, and against the class `answer_class` gives it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaprompts.questions import format_answer
from deltaprompts.records import Facts
from deltaprompts.verifiers import ANSWER_TYPES, UNPARSEABLE, answer_class, score_answer
from deltaprompts.verifiers.text import normalize_string

# Words and labels as charts and documents show them: some hold commas, "and" or "&", which only a
# stronger separator (`|`, `;`) keeps inside one list element.
WORDS = ["apples", "pears", "North America", "Sales, North", "Research and Development", "R&D", "Tom & Jerry",
         "Q3 2024", "Zürich", "café au lait", "x-ray", "Net income (loss)", "O'Brien", "blue", "Total"]
# Option texts of a choice question: distinct words of three letters or more, none a letter form.
OPTION_WORDS = ["cat", "dog", "bird", "fish", "black cat", "North America", "Sales, North", "Research and Development",
                "12.5", "25%", "$1,200.00", "2008"]
EXACT = ("count", "year", "string", "yes_no", "choice")


@dataclass
class Case:
    """One ground truth: its equivalent forms as ground truths, and as predictions."""

    truths: list[Any]
    predictions: list[str]
    rendering: str  # the item format: what a generated item stores as `question.answer`
    options: dict[str, str] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def _facts(symbol: str = "$") -> Facts:
    return Facts(domain="chart", kind="bar", width=10, height=10, context={"currency_symbol": symbol})


def _item_format(value: Any, answer_type: str, symbol: str = "$") -> str:
    return format_answer(value, answer_type, _facts(symbol))


amounts = st.integers(-10**8, 10**8).map(lambda c: c / 100)  # two decimals, as the item format writes them


@st.composite
def number_case(draw) -> Case:
    v = draw(amounts)
    r = _item_format(v, "number")
    return Case([v, r, f"{v:,}"], [r, repr(v), f"{v:,}", f"The answer is {v:,.2f}.", f"\\boxed{{{r}}}"], r)


@st.composite
def count_case(draw) -> Case:
    v = draw(st.integers(0, 10**6))
    r = _item_format(v, "count")
    return Case([v, r], [r, f"{v:,}", f"There are {v}.", f"{v}.0"], r)


@st.composite
def percent_case(draw) -> Case:
    v = draw(st.integers(-1000, 10000)) / 10  # one decimal, as the item format writes it
    r = _item_format(v, "percent")
    return Case([v, r], [r, f"{v} percent", f"{v} %", f"The share is {r}."], r)


@st.composite
def currency_case(draw) -> Case:
    v = draw(amounts)
    symbol = draw(st.sampled_from(["$", "€", "£", "¥", "₹"]))
    r = _item_format(v, "currency", symbol)
    sign = "-" if v < 0 else ""
    return Case([r, f"{sign}{symbol}{abs(v):,.2f}"], [r, f"{sign}{symbol}{abs(v):,.2f}", f"It cost {r}."], r)


@st.composite
def year_case(draw) -> Case:
    v = draw(st.integers(1000, 2999))
    r = _item_format(v, "year")
    return Case([v, r], [r, f"in {v}", f"{v}."], r)


@st.composite
def string_case(draw) -> Case:
    v = draw(st.sampled_from(WORDS) | st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=20))
    r = _item_format(v, "string")
    if not normalize_string(r):  # "the", " ": nothing left to compare; such a ground truth is rejected
        return draw(string_case())
    upper = [r.upper()] if r.upper().casefold() == r.casefold() else []  # "ı".upper() is "I", another letter
    return Case([v], [r, *upper, f"The answer is {r}.", f'"{r}"', f"**{r}**"], r)


@st.composite
def yes_no_case(draw) -> Case:
    v = draw(st.booleans())
    r = _item_format(v, "yes_no")
    word = r.lower()
    return Case([v, r, word.upper()], [r, word, f"{r}.", f"{r}, it is.", f"Answer: **{word}**"], r)


@st.composite
def choice_case(draw) -> Case:
    texts = draw(st.lists(st.sampled_from(OPTION_WORDS), min_size=2, max_size=5, unique=True))
    options = {chr(65 + i): t for i, t in enumerate(texts)}
    letter = draw(st.sampled_from(sorted(options)))
    text = options[letter]
    listed = " ".join(f"({k}) {t}" for k, t in options.items())
    forms = [letter, letter.lower(), f"({letter})", f"{letter}.", f"({letter}) {text}", f"{letter}. {text}",
             f"Option {letter}", text, f"The answer is ({letter}) {text}.", f"Options: {listed}\nAnswer: {letter}"]
    return Case([letter, text], forms, letter, options)


def _element_texts(elements: list[Any]) -> list[str]:
    return [e if isinstance(e, str) else _item_format(e, "number") for e in elements]


# Joins a list may be written with; each keeps the elements apart unless one holds a separator of its
# strength or stronger (the documented rule: `|` > `;` and newline > `,`, `and`, ` & `).
_JOINS = [("|", None), ("; ", re.compile(r"[|;\n]")), ("\n", re.compile(r"[|;\n]")),
          (", ", re.compile(r"[|;\n]|(?<!\d),|,(?!\d{3}(?!\d))|\band\b|\s&\s", re.IGNORECASE)),
          (" and ", re.compile(r"[|;\n]|(?<!\d),|,(?!\d{3}(?!\d))|\band\b|\s&\s", re.IGNORECASE))]


@st.composite
def list_case(draw, answer_type: str = "list") -> Case:
    numeric = draw(st.booleans())
    element = amounts if numeric else st.sampled_from(WORDS)
    elements = draw(st.lists(element, min_size=1, max_size=5, unique=answer_type == "set"))
    r = _item_format(elements, answer_type)
    texts = _element_texts(elements)
    shown = [f"{e:,}" for e in elements] if numeric and draw(st.booleans()) else texts  # 1,234.5 in lists too
    joins = {sep: sep.join(shown) for sep, forbidden in _JOINS
             if forbidden is None or not any(forbidden.search(t) for t in shown)}
    forms = [*joins.values(), *([f"[{joins[', ']}]"] if ", " in joins else [])]
    truths = [elements, tuple(texts), r, *joins.values()]
    if answer_type == "set":
        truths.append(set(texts))
        forms.append("|".join(reversed(shown)))
    return Case(truths, [*forms, f"The answer is {forms[0]}", f"<answer>{forms[-1]}</answer>"], r)


@st.composite
def span_case(draw) -> Case:
    v = draw(st.sampled_from(WORDS) | st.text(st.characters(categories=["L", "N", "Zs"]), min_size=1, max_size=30))
    if not v.strip():
        return draw(span_case())
    r = _item_format(v, "span")
    other = draw(st.sampled_from(WORDS))
    # the DocVQA normalisation lower-cases (not casefold): "ß".upper() is "SS", which lower-cases to "ss"
    upper = [f"  {r.upper()} "] if r.upper().lower() == r.lower() else []
    return Case([v, [v, other], (other, v)], [r, *upper, f"The answer is {r}"], r)


@st.composite
def latex_case(draw) -> Case:
    a, b = draw(st.integers(1, 50)), draw(st.integers(2, 50))
    v = draw(st.sampled_from([f"\\frac{{{a}}}{{{b}}}", f"\\sqrt{{{a}}}", f"{a} + \\sqrt{{{b}}}", f"x^{{{b}}}"]))
    r = _item_format(v, "latex")
    return Case([v], [r, f"\\boxed{{{r}}}", f"${r}$"], r)


CASES = {
    "number": number_case(), "count": count_case(), "percent": percent_case(), "currency": currency_case(),
    "year": year_case(), "string": string_case(), "yes_no": yes_no_case(), "choice": choice_case(),
    "list": list_case("list"), "set": list_case("set"), "span": span_case(), "latex": latex_case(),
}


def test_every_answer_type_has_a_case():
    assert sorted(CASES) == sorted(ANSWER_TYPES)


def _check(answer_type: str, case: Case) -> None:
    for truth in case.truths:
        for prediction in case.predictions:
            score = score_answer(prediction, truth, answer_type, case.options, **case.kwargs)
            assert score == 1.0, (prediction, truth)
    # the ground truth as stored, scored against itself and against its own class
    assert score_answer(case.rendering, case.rendering, answer_type, case.options) == 1.0
    canon = answer_class(case.rendering, answer_type, case.options)
    assert canon != UNPARSEABLE
    if answer_type != "latex":  # a LaTeX class is sympy's text ("sqrt(2)"), not LaTeX
        assert score_answer(canon, case.rendering, answer_type, case.options) == 1.0, canon
    if answer_type in EXACT + ("latex",):  # every form that scores 1 shares the ground truth's class
        assert {answer_class(p, answer_type, case.options) for p in case.predictions} == {canon}


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(answer_type=st.sampled_from([t for t in ANSWER_TYPES if t != "latex"]), data=st.data())
def test_a_ground_truth_matches_itself_in_every_form(answer_type, data):
    _check(answer_type, data.draw(CASES[answer_type], label=answer_type))


@pytest.mark.parametrize("answer_type", ["list", "set", "choice", "string", "yes_no"])
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_closed_and_list_types_match_themselves(answer_type, data):
    _check(answer_type, data.draw(CASES[answer_type], label=answer_type))


@settings(max_examples=8, deadline=None)
@given(case=latex_case())
def test_latex_ground_truth_matches_itself(case):
    pytest.importorskip("math_verify")
    _check("latex", case)
