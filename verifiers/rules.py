"""The per-type answer rules: how an answer of each type is read, compared and canonicalised."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.verifiers.anls import ANLS_THRESHOLD, anls, normalize_span
from deltaprompts.verifiers.latex import latex_canonical, latex_equal, latex_value
from deltaprompts.verifiers.numbers import (
    Num,
    close,
    currencies_compatible,
    delocalize,
    find_numbers,
    format_number,
    parse_fraction,
    single_value,
    split_currency,
)
from deltaprompts.verifiers.text import normalize_string, parse_choice, parse_yes_no

DEFAULT_REL_TOL = 0.05
DEFAULT_ABS_TOL = 1e-6

# Two plain words in a row ("I do not know") are prose: Math-Verify would read them as a product of
# symbols, which would turn an unanswered question into a wrong answer.
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}")
_LATEX_NUMBER = re.compile(r"\\(?:[dt]?frac|sqrt|pi|cdot|times)\b")
_NUMERIC = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?", re.ASCII)
# List separators by strength; a list is split at the strongest one present, so an element may hold
# a weaker one ("Sales, North|Sales, South"). A comma between digits with exactly three digits after
# it is a thousands separator, not a split ("1,000, 2,000" is two elements, "10,200" one).
_LIST_LEVELS = (
    re.compile(r"\s*\|\s*"),
    re.compile(r"\s*[;\n]\s*"),
    re.compile(r"\s*(?:(?<!\d),|,(?!\d{3}(?!\d))|\band\b|(?<=\s)&(?=\s))\s*", re.IGNORECASE),
)
_COMMA_LEVEL = 2
_COMMA = re.compile(r"\s*(?:(?<!\d),|,(?!\d{3}(?!\d)))\s*")
# "- apples" / "* apples" / "2. apples" / "2) apples" on its own line is a list item, the marker no part of it.
_BULLET = re.compile(r"\A(?:[-*\u2022]|\d{1,2}[.)])\s+(?=\S)")


class VerifierError(UserError, ValueError):
    """A scoring call names an unknown answer type or tolerance, a bad option set or a bad ground truth."""


class Unreadable(Exception):
    """Internal signal from a comparison: the prediction cannot be read; carries the reason tag."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Context:
    """Resolved settings for one scoring call: tolerances, synonyms and normalised options."""

    rel_tol: float = DEFAULT_REL_TOL
    abs_tol: float = DEFAULT_ABS_TOL
    threshold: float = ANLS_THRESHOLD
    synonyms: dict[str, str] | None = None
    element_type: str | None = None
    options: dict[str, str] | None = None
    locale: str | None = None  # a prediction's numbers are read in this locale's conventions (de_DE: 1.035,00)


@dataclass(frozen=True, slots=True)
class Rule:
    """One answer type. `read(text, ctx, truth)` gives (value, "") or (None, reason);
    `compare(pred, truth, ctx)` a score in [0, 1] (or raises Unreadable); `canon(value, ctx)` a class."""

    read: Callable[[str, Context, bool], tuple[Any, str]]
    compare: Callable[[Any, Any, Context], float]
    canon: Callable[[Any, Context], str]
    keywords: frozenset[str]


def _one_number(text: str, words: bool = True, money: bool = False) -> tuple[Num | None, str]:
    return single_value(find_numbers(text, money=money, words=words))


def _local(text: str, ctx: Context, truth: bool) -> str:
    """A prediction's text with its locale's numbers in English conventions; a ground truth is
    always written in English conventions (format_answer) and is read as it is."""
    return delocalize(text, ctx.locale) if ctx.locale and not truth else text


def _read_number(text: str, ctx: Context, truth: bool) -> tuple[float | None, str]:
    text = _local(text, ctx, truth)
    if "\\" in text and _LATEX_NUMBER.search(text):
        return latex_value(text)
    frac = parse_fraction(text)
    if frac is not None:
        return frac, ""
    num, reason = _one_number(text)
    return (num.value, "") if num else (None, reason)


def _same_number(pred: float, truth: float, ctx: Context) -> float:
    return 1.0 if close(pred, truth, ctx.rel_tol, ctx.abs_tol) else 0.0


def _canon_number(value: float, ctx: Context) -> str:
    return format_number(value)


def _integer_reader(words: bool) -> Callable[[str, Context, bool], tuple[float | None, str]]:
    def read(text: str, ctx: Context, truth: bool) -> tuple[float | None, str]:
        num, reason = _one_number(_local(text, ctx, truth), words=words)
        if num is None:
            return None, reason
        if truth and not num.value.is_integer():
            return None, "not_an_integer"
        return num.value, ""  # a fractional prediction is read, and then simply wrong

    return read


def _same_exact(pred: Any, truth: Any, ctx: Context) -> float:
    return 1.0 if pred == truth else 0.0


def _read_percent(text: str, ctx: Context, truth: bool) -> tuple[Num | None, str]:
    return _one_number(_local(text, ctx, truth))


def _same_percent(pred: Num, truth: Num, ctx: Context) -> float:
    if close(pred.value, truth.value, ctx.rel_tol, ctx.abs_tol):
        return 1.0
    # A bare number may be a fraction: 0.25 for 25%.
    if not pred.percent and close(pred.value * 100, truth.value, ctx.rel_tol, ctx.abs_tol):
        return 1.0
    return 0.0


def _canon_percent(value: Num, ctx: Context) -> str:
    v = value.value
    if not value.percent and 0 < abs(v) < 1:
        v *= 100
    return format_number(v) + "%"


def _read_currency(text: str, ctx: Context, truth: bool) -> tuple[tuple[str | None, float] | None, str]:
    codes, rest = split_currency(text)
    specific = {c for c in codes if c not in ("$", "¥")}
    if len(specific) > 1 or any(not currencies_compatible(a, b) for a in codes for b in codes):
        return None, "ambiguous"
    code = next(iter(specific or codes), None)
    num, reason = _one_number(_local(rest, ctx, truth), money=True)
    return ((code, num.value), "") if num else (None, reason)


def _same_currency(pred: tuple[str | None, float], truth: tuple[str | None, float], ctx: Context) -> float:
    if pred[0] and truth[0] and not currencies_compatible(pred[0], truth[0]):
        return 0.0
    return _same_number(pred[1], truth[1], ctx)


def _canon_currency(value: tuple[str | None, float], ctx: Context) -> str:
    number = format_number(value[1])
    return f"{value[0]} {number}" if value[0] else number


def _read_string(text: str, ctx: Context, truth: bool) -> tuple[str | None, str]:
    norm = normalize_string(text)
    if ctx.synonyms:
        norm = ctx.synonyms.get(norm, norm)
    return (norm, "") if norm else (None, "no_value")


def _read_yes_no(text: str, ctx: Context, truth: bool) -> tuple[str | None, str]:
    return parse_yes_no(text)


def _read_choice(text: str, ctx: Context, truth: bool) -> tuple[str | None, str]:
    letter, reason = parse_choice(text, ctx.options)
    if truth and letter is not None and ctx.options and letter not in ctx.options:
        return None, "not_an_option"
    return letter, reason


def _canon_identity(value: str, ctx: Context) -> str:
    return value


def _read_span(text: str | tuple[str, ...], ctx: Context, truth: bool) -> tuple[Any, str]:
    if truth:  # accepted alternatives: '|'-separated, or a sequence
        alternatives = [t for t in (text if isinstance(text, tuple) else text.split("|")) if t.strip()]
        return (alternatives, "") if alternatives else (None, "no_value")
    return (text, "") if text.strip() else (None, "no_value")


def _same_span(pred: str, truth: list[str], ctx: Context) -> float:
    return anls(pred, truth, ctx.threshold)


def _canon_span(value: str, ctx: Context) -> str:
    return normalize_span(value)


def _read_latex(text: str, ctx: Context, truth: bool) -> tuple[str | None, str]:
    if not text.strip() or _PROSE.search(text):
        return None, "no_value"
    return text, ""


def _same_latex(pred: str, truth: str, ctx: Context) -> float:
    same, reason = latex_equal(truth, pred)
    if reason == "bad_ground_truth":
        raise VerifierError(f"ground truth {truth!r} is not a LaTeX expression Math-Verify can parse")
    if same is None:
        raise Unreadable(reason)
    return 1.0 if same else 0.0


def _canon_latex(value: str, ctx: Context) -> str:
    canon = latex_canonical(value)
    if canon is None:
        raise Unreadable("no_value")
    return canon


# ---- list and set ------------------------------------------------------------------------------


def _split(text: str) -> tuple[int, str, list[str]]:
    """The separator level used (len(_LIST_LEVELS): none), the text without brackets, the elements."""
    text = text.strip()
    if len(text) >= 2 and text[0] + text[-1] in ("[]", "{}", "()"):
        text = text[1:-1].strip()
    for level, sep in enumerate(_LIST_LEVELS):
        if sep.search(text):
            parts = sep.split(text)
            if level == 1:
                parts = [_BULLET.sub("", p.strip()) for p in parts]
            return level, text, [p.strip() for p in parts if p.strip()]
    return len(_LIST_LEVELS), text, [text] if text else []


def split_elements(text: str) -> list[str]:
    """The elements of a list answer, prediction or ground truth alike.

    Split at the strongest separator present: `|`; else `;` or a newline (list-item bullets such
    as `- ` or `2. ` dropped); else `,`, the word `and` and a spaced `&` (a comma between digits
    followed by exactly three digits is a thousands separator: `1,000, 2,000` is two elements).
    Enclosing brackets are dropped. Returns the non-empty stripped elements (possibly none).
    """
    return _split(text)[2]


@dataclass(frozen=True, slots=True)
class _Split:
    """A predicted list: its elements as `split_elements` reads them, the level and text they came from."""

    level: int
    text: str
    parts: list[str]

    def readings(self, count: int) -> list[list[str]]:
        """The elements; when their number is not the ground truth's `count`, also the text split at
        commas only and the whole text, since an element may hold "and" or a comma itself
        ("Research and Development" against the one-element ground truth ["Research and Development"])."""
        out = [self.parts]
        if len(self.parts) != count:
            if self.level == _COMMA_LEVEL:
                commas = [p.strip() for p in _COMMA.split(self.text) if p.strip()]
                if commas != self.parts:
                    out.append(commas)
            if len(self.parts) > 1:
                out.append([self.text])
        return out


def _element_rule(ctx: Context, elements: list[str]) -> Rule:
    """The rule for list elements: `element_type`, else number when every element is numeric."""
    if ctx.element_type:
        return RULES[ctx.element_type]
    numeric = all(_NUMERIC.fullmatch(e.strip()) and any(c.isdigit() for c in e) for e in elements)
    return RULES["number" if numeric else "string"]


def _read_elements(text: str | tuple[str, ...], ctx: Context, truth: bool) -> tuple[Any, str]:
    """A ground truth (a string split by `split_elements`, or a tuple of elements) becomes
    (element rule, values); a prediction stays a `_Split` of raw parts, read later with the ground
    truth's element rule."""
    if not truth:
        split = _Split(*_split(text))
        return (split, "") if split.parts else (None, "no_value")
    parts = list(text) if isinstance(text, tuple) else split_elements(text)
    if not parts:
        return None, "no_value"
    rule = _element_rule(ctx, parts)
    values = []
    for part in parts:
        value, reason = rule.read(part, ctx, True)
        if value is None:
            return None, f"element {part!r}: {reason}"
        values.append(value)
    return (rule, values), ""


def _read_parts(parts: list[str], rule: Rule, ctx: Context) -> list[Any]:
    """Predicted elements read by `rule`; an unreadable one stays as None, which matches nothing."""
    values = [rule.read(p, ctx, False)[0] for p in parts]
    if all(v is None for v in values):
        raise Unreadable("no_value")
    return values


def _same_elements(pred: _Split, truth: tuple[Rule, list[Any]], ctx: Context,
                   match: Callable[[list[Any], list[Any], Rule, Context], bool]) -> float:
    """1.0 when one reading of the prediction matches; an unreadable first reading raises Unreadable."""
    rule, expected = truth
    unreadable = None
    for k, parts in enumerate(pred.readings(len(expected))):
        try:
            got = _read_parts(parts, rule, ctx)
        except Unreadable as exc:
            unreadable = unreadable or (exc if k == 0 else None)
            continue
        if match(got, expected, rule, ctx):
            return 1.0
    if unreadable is not None:
        raise unreadable
    return 0.0


def _list_match(got: list[Any], expected: list[Any], rule: Rule, ctx: Context) -> bool:
    return len(got) == len(expected) and all(
        g is not None and rule.compare(g, e, ctx) == 1.0 for g, e in zip(got, expected))


def _set_match(got: list[Any], expected: list[Any], rule: Rule, ctx: Context) -> bool:
    if any(g is None for g in got):
        return False
    got = list({rule.canon(g, ctx): g for g in got}.values())
    expected = list({rule.canon(e, ctx): e for e in expected}.values())
    if len(got) != len(expected):
        return False
    # Perfect bipartite matching (Kuhn's algorithm): with a tolerance, "matches" is not transitive.
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for j, e in enumerate(expected):
            if j not in seen and rule.compare(got[i], e, ctx) == 1.0:
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return all(assign(i, set()) for i in range(len(got)))


def _same_list(pred: _Split, truth: tuple[Rule, list[Any]], ctx: Context) -> float:
    return _same_elements(pred, truth, ctx, _list_match)


def _same_set(pred: _Split, truth: tuple[Rule, list[Any]], ctx: Context) -> float:
    return _same_elements(pred, truth, ctx, _set_match)


def _canon_elements(pred: _Split, ctx: Context) -> list[str]:
    rule = _element_rule(ctx, pred.parts)
    return [rule.canon(v, ctx) if v is not None else "?" for v in _read_parts(pred.parts, rule, ctx)]


def _canon_list(pred: _Split, ctx: Context) -> str:
    return "|".join(_canon_elements(pred, ctx))


def _canon_set(pred: _Split, ctx: Context) -> str:
    return "|".join(sorted(set(_canon_elements(pred, ctx))))


_TOL = frozenset({"rel_tol", "abs_tol"})
_exact_int = (_same_exact, _canon_number)
RULES: dict[str, Rule] = {
    "number": Rule(_read_number, _same_number, _canon_number, _TOL),
    "count": Rule(_integer_reader(words=True), *_exact_int, frozenset()),
    "percent": Rule(_read_percent, _same_percent, _canon_percent, _TOL),
    "currency": Rule(_read_currency, _same_currency, _canon_currency, _TOL),
    "year": Rule(_integer_reader(words=False), *_exact_int, frozenset()),
    "string": Rule(_read_string, _same_exact, _canon_identity, frozenset({"synonyms"})),
    "yes_no": Rule(_read_yes_no, _same_exact, _canon_identity, frozenset()),
    "choice": Rule(_read_choice, _same_exact, _canon_identity, frozenset()),
    "list": Rule(_read_elements, _same_list, _canon_list, _TOL | {"element_type", "synonyms"}),
    "set": Rule(_read_elements, _same_set, _canon_set, _TOL | {"element_type", "synonyms"}),
    "span": Rule(_read_span, _same_span, _canon_span, frozenset({"threshold"})),
    "latex": Rule(_read_latex, _same_latex, _canon_latex, frozenset()),
}
#: Types a list or set element may have.
ELEMENT_TYPES = ("count", "currency", "number", "percent", "string", "year", "yes_no")


PLAIN_NUMBER = re.compile(r"[-+]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|[-+]?\.\d+")


def answer_value(value: Any, answer_type: str) -> tuple[str, Any]:
    """The ground-truth string and the program value of a raw answer under `answer_type`. A list or
    set answer, a JSON list or a string the verifier splits (`apples, pears`), is written as its
    elements with `|` between them, the item format of generated items. Raises ValueError for an
    element holding a `|`."""
    if answer_type in ("list", "set"):
        if isinstance(value, (list, tuple)):
            elements = [("Yes" if v else "No") if isinstance(v, bool) else str(v).strip() for v in value]
        else:
            elements = split_elements(str(value))
        if any("|" in e for e in elements):
            raise ValueError(f"an element of {value!r} contains '|', the separator of {answer_type} answers")
        text = "|".join(e for e in elements if e)
        return text, text
    if isinstance(value, bool):
        return ("Yes" if value else "No"), value
    text = str(value).strip()
    if answer_type in ("number", "count", "percent", "currency", "year") and PLAIN_NUMBER.fullmatch(text):
        num = float(text.replace(",", ""))
        return text, int(num) if num.is_integer() and "." not in text else num
    return text, text
