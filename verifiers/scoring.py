"""Score a model's answer against its ground truth, and map answers to equivalence classes."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from deltaprompts.verifiers.extract import clean_answer, extract_answer, normalize_text
from deltaprompts.verifiers.numbers import locale_marks
from deltaprompts.verifiers.rules import ELEMENT_TYPES, RULES, Context, Rule, Unreadable, VerifierError
from deltaprompts.verifiers.text import normalize_string, synonym_map

#: Every answer type `score_answer` accepts; docs/verifiers.md states each one's rules.
ANSWER_TYPES: tuple[str, ...] = tuple(sorted(RULES))

_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Answer types whose ground truth may be given as a sequence: list/set elements, span alternatives.
SEQUENCE_TYPES = ("list", "set", "span")
_DEFAULTS = {name: Context(rel_tol=0.0) if name in ("list", "set") else Context() for name in RULES}


#: A ground truth: a string or number (a bool for yes_no); for list and set also a sequence of
#: elements, for span a sequence of accepted alternatives.
GroundTruth = str | float | Sequence[str | float] | AbstractSet[str | float]


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The outcome of scoring one prediction.

    `score` is in [0, 1]; `parsed` is False when no answer could be read from the prediction (no
    answer found, no number, several different numbers, no option, ...), so that "unparseable" can
    be counted apart from "wrong"; `reason` is a short tag: "match", "mismatch", "partial" (ANLS
    between 0 and 1), or why the prediction was unparseable ("no_answer", "no_number", "ambiguous",
    "no_option", "no_value", "timeout", "math_verify_missing"); `answer` is the extracted answer.
    """

    score: float
    parsed: bool
    reason: str
    answer: str | None


def _unknown(kind: str, value: object, allowed: Iterable[str]) -> VerifierError:
    allowed = sorted(allowed)
    hint = difflib.get_close_matches(str(value), allowed, n=1)
    maybe = f"; did you mean {hint[0]!r}?" if hint else "."
    return VerifierError(f"unknown {kind} {value!r}{maybe} Allowed: {', '.join(allowed) or '(none)'}")


def _rule(answer_type: str) -> Rule:
    rule = RULES.get(answer_type) if isinstance(answer_type, str) else None
    if rule is None:
        raise _unknown("answer_type", answer_type, ANSWER_TYPES)
    return rule


def _number_setting(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
        raise VerifierError(f"tolerance {name}={value!r} must be a number in [{low}, {high}]")
    return float(value)


def _context(answer_type: str, rule: Rule, options: Mapping[str, str] | None, tolerances: dict[str, Any]) -> Context:
    """Validate the options and tolerance keywords of one call and resolve them into a Context."""
    for key in tolerances:
        if key not in rule.keywords:
            raise _unknown(f"tolerance keyword for answer_type {answer_type!r}:", key, rule.keywords)
    tolerances = {k: v for k, v in tolerances.items() if v is not None}  # None means "the default"
    if not tolerances and not options:
        return _DEFAULTS[answer_type]
    base = _DEFAULTS[answer_type]
    ctx = Context(rel_tol=base.rel_tol)
    if "rel_tol" in tolerances:
        ctx.rel_tol = _number_setting("rel_tol", tolerances["rel_tol"], 0.0, math.inf)
    if "abs_tol" in tolerances:
        ctx.abs_tol = _number_setting("abs_tol", tolerances["abs_tol"], 0.0, math.inf)
    if "threshold" in tolerances:
        ctx.threshold = _number_setting("threshold", tolerances["threshold"], 0.0, 1.0)
    if "element_type" in tolerances:
        if tolerances["element_type"] not in ELEMENT_TYPES:
            raise _unknown("element_type", tolerances["element_type"], ELEMENT_TYPES)
        ctx.element_type = tolerances["element_type"]
    if "synonyms" in tolerances:
        if not isinstance(tolerances["synonyms"], Mapping):
            raise VerifierError(f"synonyms must be a dict[str, list[str]], not {type(tolerances['synonyms']).__name__}")
        ctx.synonyms = synonym_map(tolerances["synonyms"])
    if options:
        if answer_type != "choice":
            raise VerifierError(f"options are only used by answer_type 'choice', not {answer_type!r}")
        bad = [k for k in options if not (isinstance(k, str) and k.upper() in _LETTERS and len(k) == 1)]
        if bad:
            raise VerifierError(f"option labels must be single letters A-Z; got {bad!r}")
        ctx.options = {k.upper(): normalize_string(str(v)) for k, v in options.items()}
    return ctx


def _element_text(answer_type: str, index: int, value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    raise VerifierError(f"{answer_type} ground truth element {index} is {value!r}; "
                        "elements must be non-empty strings, numbers or bools")


def _ground_truth(answer_type: str, value: Any) -> str | tuple[str, ...]:
    """The ground truth as a string (a yes_no bool as Yes/No); for list, set and span a sequence
    becomes a tuple of element texts (a set's sorted), each one element whatever separators it holds."""
    if isinstance(value, (list, tuple, set, frozenset)) and answer_type in SEQUENCE_TYPES:
        if isinstance(value, (set, frozenset)) and answer_type != "set":
            raise VerifierError(f"a {answer_type} ground truth must be ordered (a list or tuple), not a "
                                f"{type(value).__name__}")
        elements = [_element_text(answer_type, i, v) for i, v in enumerate(value)]
        if not elements:
            raise VerifierError(f"{answer_type} ground truth is an empty {type(value).__name__}; "
                                "give at least one element")
        return tuple(sorted(elements) if isinstance(value, (set, frozenset)) else elements)
    if isinstance(value, bool) and answer_type == "yes_no":
        return "Yes" if value else "No"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        if answer_type in SEQUENCE_TYPES:
            also = "; a list, set or span ground truth may also be a list of elements"
        else:
            also = f"; only {', '.join(SEQUENCE_TYPES)} take a list of elements"
        raise VerifierError(f"ground truth must be a non-empty string or a number (a bool for yes_no), "
                            f"not {value!r}{also}")
    return value


def _truth(answer_type: str, rule: Rule, ground_truth: str | tuple[str, ...], ctx: Context) -> Any:
    if isinstance(ground_truth, tuple):
        cleaned: str | tuple[str, ...] = tuple(clean_answer(normalize_text(e)) for e in ground_truth)
    else:
        cleaned = clean_answer(normalize_text(ground_truth))
    value, reason = rule.read(cleaned, ctx, True)
    if value is None:
        raise VerifierError(f"ground truth {ground_truth!r} is not a valid {answer_type!r} answer ({reason})")
    return value


# Items are scored against many samples each; the parsed ground truth, options and tolerances are
# cached for calls whose tolerance keywords are scalars (every item's), keyed by hashable copies.
@functools.lru_cache(maxsize=1024)
def _plain_context(answer_type: str, options_key: tuple[tuple[str, str], ...] | None,
                   tol_key: tuple[tuple[str, str, Any], ...] = ()) -> Context:
    tolerances = {name: value for name, _, value in tol_key}
    return _context(answer_type, RULES[answer_type], dict(options_key) if options_key else None, tolerances)


@functools.lru_cache(maxsize=8192)
def _plain_truth(
    answer_type: str, ground_truth: str | tuple[str, ...], options_key: tuple[tuple[str, str], ...] | None,
    tol_key: tuple[tuple[str, str, Any], ...] = (),
) -> Any:
    return _truth(answer_type, RULES[answer_type], ground_truth, _plain_context(answer_type, options_key, tol_key))


def _scalar_key(tolerances: dict[str, Any]) -> tuple[tuple[str, str, Any], ...] | None:
    """A hashable key of tolerance keywords whose values are plain scalars (rel_tol, abs_tol, ...:
    every item's), so their contexts are cached too; None when one is not (synonyms)."""
    if all(v is None or (isinstance(v, (int, float, str)) and not isinstance(v, bool)) for v in tolerances.values()):
        return tuple(sorted(((k, type(v).__name__, v) for k, v in tolerances.items()), key=lambda kv: kv[0]))
    return None


_NO_TRUTH = object()  # answer_class has no ground truth; None is a bad one


def _with_locale(ctx: Context, locale: str | None) -> Context:
    """`ctx` reading predictions in `locale` (a copy: contexts are cached and shared); a locale
    with English conventions (en_US, ja_JP) changes nothing. Raises VerifierError for a bad name."""
    try:
        marks = locale_marks(locale)
    except ValueError as exc:
        raise VerifierError(str(exc)) from None
    return dataclasses.replace(ctx, locale=locale) if marks else ctx


def _prepare(
    answer_type: str, options: Mapping[str, str] | None, tolerances: dict[str, Any], ground_truth: Any = _NO_TRUTH,
    locale: str | None = None,
) -> tuple[Rule, Context, Any]:
    """Validate one call's arguments; returns its rule, context and parsed ground truth (if given)."""
    rule, ctx, truth = _prepare_plain(answer_type, options, tolerances, ground_truth)
    return rule, _with_locale(ctx, locale) if locale is not None else ctx, truth


def _prepare_plain(
    answer_type: str, options: Mapping[str, str] | None, tolerances: dict[str, Any], ground_truth: Any = _NO_TRUTH
) -> tuple[Rule, Context, Any]:
    rule = _rule(answer_type)
    if options is not None and not isinstance(options, Mapping):
        raise VerifierError(f"options must be a dict of letter -> text, not {type(options).__name__}")
    if ground_truth is not _NO_TRUTH:
        ground_truth = _ground_truth(answer_type, ground_truth)
    tol_key = _scalar_key(tolerances) if tolerances else ()
    if tol_key is None:
        ctx = _context(answer_type, rule, options, tolerances)
        truth = None if ground_truth is _NO_TRUTH else _truth(answer_type, rule, ground_truth, ctx)
        return rule, ctx, truth
    key = tuple(options.items()) if options else None
    ctx = _plain_context(answer_type, key, tol_key)
    return rule, ctx, None if ground_truth is _NO_TRUTH else _plain_truth(answer_type, ground_truth, key, tol_key)


def score_answer_detailed(
    prediction: str,
    ground_truth: GroundTruth,
    answer_type: str,
    options: Mapping[str, str] | None = None,
    *,
    locale: str | None = None,
    **tolerances: Any,
) -> ScoreResult:
    """Score a raw model output against the ground truth, saying whether an answer was read at all.

    Takes the model output (the answer is extracted with `extract_answer`), the ground truth as
    written in the item (a string or number, a bool for yes_no; for list and set also a sequence of
    elements, for span a sequence of accepted alternatives), one of ANSWER_TYPES, the options of a
    'choice' question ({letter: text}), and the tolerance keywords that answer type accepts
    (rel_tol, abs_tol, threshold, synonyms, element_type; see docs/verifiers.md), and the `locale`
    the question was printed in (Question.locale): a prediction's numbers are then read in its
    conventions too (de_DE '1.035,00' is 1035; English '1,035.00' still reads where unambiguous).
    Returns a ScoreResult. Raises VerifierError (a ValueError) for an unknown answer type or keyword,
    bad options, a malformed locale, or an unreadable ground truth; never for an odd prediction.
    """
    rule, ctx, truth = _prepare(answer_type, options, tolerances, ground_truth, locale)
    answer = extract_answer(prediction)
    if answer is None:
        return ScoreResult(0.0, False, "no_answer", None)
    value, reason = rule.read(answer, ctx, False)
    if value is None:
        return ScoreResult(0.0, False, reason, answer)
    try:
        score = rule.compare(value, truth, ctx)
    except Unreadable as exc:
        return ScoreResult(0.0, False, exc.reason, answer)
    tag = "match" if score == 1.0 else "mismatch" if score == 0.0 else "partial"
    return ScoreResult(score, True, tag, answer)


def score_answer(
    prediction: str,
    ground_truth: GroundTruth,
    answer_type: str,
    options: Mapping[str, str] | None = None,
    *,
    locale: str | None = None,
    **tolerances: Any,
) -> float:
    """Score a raw model output against the ground truth; returns a float in [0, 1].

    Same arguments and errors as `score_answer_detailed`; an unparseable prediction scores 0.
    """
    return score_answer_detailed(prediction, ground_truth, answer_type, options, locale=locale, **tolerances).score


UNPARSEABLE = "<unparseable>"
"""The answer class of an output from which no answer can be read (its own class in Δ)."""


def answer_class(
    answer: str, answer_type: str, options: Mapping[str, str] | None = None, *, locale: str | None = None,
    **tolerances: Any,
) -> str:
    """The equivalence class of a raw model output, for comparing answer samples with each other.

    Takes the same arguments as `score_answer` minus the ground truth. Returns a string, or
    UNPARSEABLE when no answer can be read. For the exact types (count, year, string, yes_no,
    choice) two outputs that score 1 against the same ground truth share a class; for tolerant
    types the class is the value itself (e.g. '95.2' and '100' differ although both are within 5%
    of 100). Raises VerifierError for an unknown answer type, keyword or bad options.
    """
    rule, ctx, _ = _prepare(answer_type, options, tolerances, locale=locale)
    extracted = extract_answer(answer)
    if extracted is None:
        return UNPARSEABLE
    value, _ = rule.read(extracted, ctx, False)
    if value is None:
        return UNPARSEABLE
    try:
        return rule.canon(value, ctx)
    except Unreadable:
        return UNPARSEABLE


def _item_arguments(item: Any) -> tuple[str, str, Mapping[str, str] | None, dict[str, float]]:
    """An item's ground truth, answer type, options and tolerance keywords: `question.tolerance`
    as rel_tol and `question.abs_tol` as abs_tol, where set and where the type takes them (exact
    types such as count and year have none to loosen). A question with neither (an answer of
    unknown provenance) gets the verifiers' defaults."""
    question = item.question
    rule = _rule(question.answer_type)
    given = {"rel_tol": getattr(question, "tolerance", None), "abs_tol": getattr(question, "abs_tol", None)}
    extra = {k: v for k, v in given.items() if v is not None and k in rule.keywords}
    return question.answer, question.answer_type, getattr(question, "options", None), extra


def _item_locale(item: Any) -> str | None:
    """The locale an item's question was printed in (Question.locale), None for English conventions."""
    return getattr(item.question, "locale", None)


def score_item_answer(item: Any, prediction: str) -> float:
    """Score a model output for an item: anything with `.question.answer`, `.answer_type`,
    `.options`, `.tolerance` (rel_tol) and optionally `.abs_tol`, used where the type has them
    (docs/verifiers.md, "Tolerance policy"). Returns a float in [0, 1]; raises VerifierError for a
    bad answer type, options or tolerance."""
    return score_item_answer_detailed(item, prediction).score


def score_item_answer_detailed(item: Any, prediction: str) -> ScoreResult:
    """Like `score_item_answer`, returning the ScoreResult (parsed or not, and why)."""
    answer, answer_type, options, extra = _item_arguments(item)
    return score_answer_detailed(prediction, answer, answer_type, options, locale=_item_locale(item), **extra)


def item_answer_class(item: Any, text: str) -> str:
    """`answer_class` with an item's answer type, options and tolerance, exactly as
    `score_item_answer` reads them."""
    _, answer_type, options, extra = _item_arguments(item)
    return answer_class(text, answer_type, options, locale=_item_locale(item), **extra)
