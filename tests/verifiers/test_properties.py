"""Property tests: accepted surface forms score 1, perturbations score 0, odd text never raises."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deltaprompts.verifiers import ANSWER_TYPES, answer_class, score_answer, score_answer_detailed

OPTIONS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}
# A valid ground truth per answer type, for the "never raises" property.
TRUTHS = {"number": "12.5", "count": "3", "percent": "25%", "currency": "$1,200", "year": "2008",
          "string": "Germany", "yes_no": "yes", "choice": "B", "list": "2007|2008", "set": "red|blue",
          "span": "ITC Limited|ITC", "latex": "\\frac{1}{2}"}

# Ways a model marks its answer; none adds a number or an answer-like word of its own.
_MARKED = ["{}", "The answer is {}.", "Answer: {}", "Final answer: {}", "**Answer:** {}", "\\boxed{{{}}}",
           "<answer>{}</answer>", "<think>Let me think about 17 and 4.</think>{}",
           "<think>hmm</think>\nThe final answer is **{}**"]
MARKED = st.sampled_from(_MARKED)
# ... and unmarked sentences, which only value types read (a bare letter in a sentence is no option).
WRAPPERS = st.sampled_from(_MARKED + ["So the total is {}.", "Looking at the chart carefully, the value is {}"])

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
decimals = st.one_of(st.integers(-10**9, 10**9).map(float), finite.map(lambda v: round(v, 3)))


def _number_forms(v: float) -> list[str]:
    forms = [repr(v), f"{v:.6e}", f"{v:.4E}", f"{v:,}", f"{v:,.4f}"]
    if v.is_integer():
        forms += [str(int(v)), f"{int(v):,}"]
    if abs(v) >= 1e6:
        forms.append(f"{v / 1e6:.6f} million")
    return forms


@given(v=decimals, form=st.data(), wrapper=WRAPPERS)
def test_number_surface_forms_score_1(v, form, wrapper):
    shown = form.draw(st.sampled_from(_number_forms(v)))
    assert score_answer(wrapper.format(shown), repr(v), "number") == 1.0


@given(v=decimals.filter(lambda v: abs(v) > 1e-3), factor=st.floats(1.06, 100), sign=st.sampled_from([1, -1]))
def test_number_beyond_tolerance_scores_0(v, factor, sign):
    wrong = v * factor if sign == 1 else v / factor
    assert score_answer(repr(wrong), repr(v), "number") == 0.0
    assert score_answer(repr(-v), repr(v), "number") == 0.0


@given(delta=st.floats(2e-6, 1e6))
def test_zero_truth_uses_absolute_tolerance(delta):
    assert score_answer(repr(delta), "0", "number") == 0.0
    assert score_answer(repr(delta / 10**7), "0", "number") == (1.0 if delta / 10**7 <= 1e-6 else 0.0)


@given(p=st.integers(0, 1000), truth_form=st.sampled_from(["{}", "{}%"]), wrapper=WRAPPERS, data=st.data())
def test_percent_surface_forms_score_1(p, truth_form, wrapper, data):
    shown = data.draw(st.sampled_from([f"{p}%", f"{p} %", f"{p} percent", f"{p} per cent", str(p), repr(p / 100)]))
    assert score_answer(wrapper.format(shown), truth_form.format(p), "percent") == 1.0


@given(v=st.integers(1, 10**9), truth_form=st.sampled_from(["{}", "${}", "USD {}", "${:,}"]),
       wrapper=WRAPPERS, data=st.data())
def test_currency_surface_forms_score_1(v, truth_form, wrapper, data):
    forms = [f"${v}", f"${v:,}", f"USD {v:,}", f"{v} USD", f"{v:,} dollars", f"US${v}", str(v)]
    if v % 1000 == 0:
        forms += [f"${v // 1000}k", f"${v / 1e6:g} million", f"{v / 1e6:g}M USD"]
    shown = data.draw(st.sampled_from(forms))
    assert score_answer(wrapper.format(shown), truth_form.format(v), "currency") == 1.0


@given(v=st.integers(1, 10**6), symbol=st.sampled_from(["€", "£", "₹", "EUR ", "GBP "]))
def test_currency_other_currency_scores_0(v, symbol):
    assert score_answer(f"{symbol}{v}", f"${v}", "currency") == 0.0


@given(letter=st.sampled_from(sorted(OPTIONS)), wrapper=MARKED, data=st.data())
def test_choice_letter_forms_score_1(letter, wrapper, data):
    text = OPTIONS[letter]
    shown = data.draw(st.sampled_from([
        letter, letter.lower(), f"({letter})", f"{letter}.", f"{letter})", f"**{letter}**", f"{letter}. {text}",
        f"({letter}) {text}", f"Option {letter}", text, text.upper(),
    ]))
    assert score_answer(wrapper.format(shown), letter, "choice", OPTIONS) == 1.0


@given(word=st.sampled_from(["yes", "no"]), data=st.data(), wrapper=WRAPPERS, tail=st.sampled_from(["", ".", "!"]))
def test_yes_no_any_case_scores_1(word, data, wrapper, tail):
    cased = "".join(data.draw(st.sampled_from([c.lower(), c.upper()])) for c in word)
    truth = data.draw(st.sampled_from([word, word.capitalize(), word.upper()]))
    assert score_answer(wrapper.format(cased + tail), truth, "yes_no") == 1.0


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300), answer_type=st.sampled_from([t for t in ANSWER_TYPES if t != "latex"]))
def test_scoring_never_raises_on_arbitrary_text(text, answer_type):
    options = OPTIONS if answer_type == "choice" else None
    result = score_answer_detailed(text, TRUTHS[answer_type], answer_type, options)
    assert 0.0 <= result.score <= 1.0 and not math.isnan(result.score)
    assert result.parsed or result.score == 0.0
    canon = answer_class(text, answer_type, options)
    assert isinstance(canon, str)


_SNIPPETS = ["1,000", "1,00", "-", "−", "e5", "%", "$", "€", "k", "M", "million", "three", "(B)", "\\boxed{",
             "}", "<think>", "</think>", "<answer>", "</answer>", "Answer:", "the answer is", "**", "|", ",",
             "and", "yes", "no", "1e999", "9" * 400, "/0", "3/4", "\\frac{1}{0}", "İ", "\n", " "]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.sampled_from(_SNIPPETS) | st.text(max_size=5), max_size=12),
       answer_type=st.sampled_from([t for t in ANSWER_TYPES if t != "latex"]))
def test_scoring_never_raises_on_answer_like_text(parts, answer_type):
    text = "".join(parts)
    options = OPTIONS if answer_type == "choice" else None
    assert 0.0 <= score_answer(text, TRUTHS[answer_type], answer_type, options) <= 1.0


# Predictions for the exact types: surface forms of a few ground truths mixed with near misses.
EXACT_SAMPLES = {
    "count": ("3", ["3", "three", "3.0", "There are 3 bars", "\\boxed{3}", "4", "3.5", "three or four", "none"]),
    "year": ("2008", ["2008", "in 2008", "2008.", "2,008", "2009", "FY 2008", "2008-2009", "08"]),
    "string": ("North America", ["North America", "north-america", "The North America.", "NORTH AMERICA!",
                                 "America", "North  America", "south america", "\"North America\""]),
    "yes_no": ("Yes", ["yes", "Yes.", "YES!", "True", "correct", "no", "Nope", "maybe", "yes and no"]),
    "choice": ("B", ["B", "b", "(B)", "dog", "The dog.", "B. dog", "Option B", "A", "cat", "(A) or (B)", "A dog"]),
}


@given(answer_type=st.sampled_from(sorted(EXACT_SAMPLES)), data=st.data(), wrappers=st.tuples(WRAPPERS, MARKED))
def test_answer_class_agrees_with_scoring_for_exact_types(answer_type, data, wrappers):
    truth, samples = EXACT_SAMPLES[answer_type]
    options = OPTIONS if answer_type == "choice" else None
    a = wrappers[0].format(data.draw(st.sampled_from(samples)))
    b = wrappers[1].format(data.draw(st.sampled_from(samples)))
    assume(score_answer(a, truth, answer_type, options) == 1.0)
    assume(score_answer(b, truth, answer_type, options) == 1.0)
    assert answer_class(a, answer_type, options) == answer_class(b, answer_type, options)


@given(text=st.text(max_size=60), answer_type=st.sampled_from(sorted(EXACT_SAMPLES)))
def test_matching_arbitrary_text_shares_the_truths_class(text, answer_type):
    truth, _ = EXACT_SAMPLES[answer_type]
    options = OPTIONS if answer_type == "choice" else None
    if score_answer(text, truth, answer_type, options) == 1.0:
        assert answer_class(text, answer_type, options) == answer_class(truth, answer_type, options)
