"""Tolerances: how close a numeric answer must be, from what the render shows (docs/verifiers.md).

A question's tolerance is decided where the question is made, from its program and the render's
Facts. Every number the program reads is either printed (a document field or cell, a chart value
label or pie percentage: exact at its printed decimals) or, on a chart without a label for that
mark, read against the value axis (an error derived from the tick spacing and the plot's pixels).
The ops carry these errors to the answer through their partial derivatives (`programs.Op.gradient`;
first order, worst case over the axis positions read, so the segments of one stacked bar add up to
one reading of its top):

- `printed`: the answer is one printed value; it must match to half a unit of its last printed
  decimal (`$1,000.00`: within 0.005, so `$1,000.01` is wrong);
- `computed`: arithmetic over printed values; exact at the decimals the inputs imply (a sum of
  cents is to the cent) or, for a mean, ratio or share, at the decimals the question states;
- `axis`: at least one input is read against the axis; the propagated reading error;
- `exact`: counts, years, strings, choices, yes/no, lists: no tolerance at all;
- `unknown`: an answer of unknown provenance (an external import): the verifiers' default 5%;
- `template`: a relative tolerance the question template sets itself (`tolerance:`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.records import Entity, Facts, Node, Question, ToleranceSource
from deltaprompts.verifiers.numbers import delocalize

NUMERIC_TYPES = ("number", "percent", "currency")
#: The decimals an answer string shows when nothing else sets them (questions.format_answer).
DEFAULT_DECIMALS = {"number": 2, "percent": 1, "currency": 2}
#: A reader places a mark between two gridlines to about a fifth of their spacing ...
AXIS_TICK_FRACTION = 0.2
#: ... and no closer than this many pixels (an antialiased edge, a tick a pixel wide).
AXIS_MIN_PX = 2.0
#: What an answer of unknown provenance is scored with (the verifiers' default; stated in reports).
UNKNOWN_RULE = "the verifiers' default: within 5% relative (rel_tol 0.05)"
_READS = ("query", "field")
_NUMBER = re.compile(r"\d[\d,]*(?:\.(\d+))?")


@dataclass(frozen=True)
class Tolerance:
    """How close an answer must be: `rel_tol`/`abs_tol` for the verifiers (None: the default),
    where they come from (`source`), and the decimals the answer string is written with."""

    source: ToleranceSource
    rel_tol: float | None = None
    abs_tol: float | None = None
    decimals: int | None = None


EXACT = Tolerance("exact")


@dataclass(frozen=True)
class _Reading:
    """A number as the program gets it: its error as a signed amount per axis position read (the
    worst case is the sum of their sizes), its printed decimals (None: not exact at any printed
    precision), and whether an axis reading went into it."""

    error: dict[str, float]
    decimals: int | None
    axis: bool

    @property
    def worst(self) -> float:
        return math.fsum(abs(v) for v in self.error.values())


def half_unit(decimals: int) -> float:
    """Half a unit of the last decimal: 0.005 for cents, 0.5 for whole numbers."""
    return 0.5 * 10.0 ** -decimals


def printed_decimals(text: str, locale: str | None = None) -> int:
    """The decimals of the first number in a printed text (`$1,234.50` -> 2, `41%` -> 0), read in
    `locale`'s conventions when given (de_DE `1.035,00 €` -> 2); raises ProgramError("unreadable_value")
    when the text holds no number."""
    m = _NUMBER.search(delocalize(text, locale) if locale else text)
    if m is None:
        raise ProgramError("unreadable_value", f"printed text {text!r} shows no number")
    return len(m.group(1) or "")


def axis_error(facts: Facts, axis: dict[str, Any] | None = None) -> float:
    """The error of reading one position against an axis (default the chart's value axis): a fifth
    of the tick spacing, at least two pixels' worth of value. Raises ProgramError("unreadable_value")
    when the Facts give no such axis with ticks."""
    axis = facts.extra.get("value_axis") if axis is None else axis
    box = (axis.get("box") if isinstance(axis, dict) else None) or facts.extra.get("axes_box")
    ticks = sorted(axis.get("ticks") or []) if isinstance(axis, dict) else []
    if len(ticks) < 2 or not box:
        raise ProgramError("unreadable_value", "a value without a label, and the Facts give no value axis ticks "
                                               "to read it against")
    lo, hi = (float(v) for v in axis["range"])
    pixels = (box[2] - box[0]) if axis.get("axis") == "x" else (box[3] - box[1])
    step = min(b - a for a, b in zip(ticks, ticks[1:]))
    return max(AXIS_TICK_FRACTION * step, AXIS_MIN_PX * (hi - lo) / pixels)


def axis_positions(facts: Facts, entity: Entity) -> dict[str, float]:
    """The axis positions `entity`'s value is read from, each with its signed reading error: a
    mark's end; for a stacked segment off the baseline its top minus its bottom, keyed by category
    and pixel so that a segment's top and the next one's bottom are the same position."""
    err = axis_error(facts)
    if facts.kind != "stacked_bar" or entity.box is None:
        return {entity.id: err}
    axis, box = facts.extra["value_axis"], facts.extra["axes_box"]
    lo, hi = (float(v) for v in axis["range"])
    horizontal = axis.get("axis") == "x"
    pixels = (box[2] - box[0]) if horizontal else (box[3] - box[1])
    base = box[0] + (0 - lo) / (hi - lo) * pixels if horizontal else box[3] - (0 - lo) / (hi - lo) * pixels
    start, end = (entity.box[0], entity.box[2]) if horizontal else (entity.box[3], entity.box[1])
    cat = entity.attrs.get("category", entity.id)
    out = {f"{cat}@{end:.1f}": err}
    if abs(start - base) > 1.5:
        out[f"{cat}@{start:.1f}"] = -err
    return out


def attr_axis(facts: Facts, entity: Entity, attr: str) -> dict[str, Any] | None:
    """The axis an attribute other than a mark's value is read against, as a chart kind declares it:
    `extra["axes"]` names axes ({"axis": "x" | "y", "range", "ticks", "box"}); `extra["reads"]` maps an
    attribute to one (a scatter's `x`, a second axis's `value`), `extra["entity_reads"]` does so per
    entity (each panel of small multiples its own axis)."""
    axes = facts.extra.get("axes") or {}
    name = ((facts.extra.get("entity_reads") or {}).get(entity.id) or {}).get(attr) \
        or (facts.extra.get("reads") or {}).get(attr)
    return axes.get(name) if name else None


def _text_of(facts: Facts, role: str) -> str | None:
    return next((t.text for t in facts.texts if t.role == role), None)


def _implied_decimals(facts: Facts, entity: Entity, attr: str) -> int | None:
    """A table value the row leaves out by convention (a receipt line of one unit prints neither
    its quantity nor its unit price): the decimals its column prints on other rows, else those of
    the row's own printed numbers; None when neither prints any."""
    column = [t.text for t in facts.texts if t.role.startswith("cell:") and t.role.endswith(f":{attr}")]
    row = [t.text for t in facts.texts if t.role.startswith(f"cell:{entity.id}:")]
    for texts in (column, row):
        found = [printed_decimals(t, _locale(facts)) for t in texts if _NUMBER.search(t)]
        if found:
            return max(found)
    return None


def _entity_reading(facts: Facts, entity: Entity, attr: str) -> _Reading:
    printed = (facts.extra.get("printed") or {}).get(entity.id, {}).get(attr) \
        or _text_of(facts, f"cell:{entity.id}:{attr}")
    if printed:
        return _Reading({}, printed_decimals(printed, _locale(facts)), False)
    axis = attr_axis(facts, entity, attr) if facts.domain == "chart" else None
    if axis is not None:
        return _Reading({f"{entity.id}.{attr}": axis_error(facts, axis)}, None, True)
    if facts.domain == "chart" and attr == "value" and facts.extra.get("value_axis"):
        return _Reading(axis_positions(facts, entity), None, True)
    implied = _implied_decimals(facts, entity, attr) if facts.domain == "document" else None
    if implied is not None:
        return _Reading({}, implied, False)
    raise ProgramError("unreadable_value", f"{entity.id}.{attr} is neither printed nor readable against an axis")


def _field_reading(facts: Facts, name: str) -> _Reading:
    printed = _text_of(facts, f"field:{name}")
    if not printed:
        raise ProgramError("unreadable_value", f"field {name!r} is not printed")
    return _Reading({}, printed_decimals(printed, _locale(facts)), False)


def _locale(facts: Facts) -> str | None:
    """The locale a render prints numbers in (a document's Facts.context["locale"]), else None."""
    loc = facts.context.get("locale")
    return loc if isinstance(loc, str) else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _reading(node: Node, facts: Facts) -> _Reading | list[_Reading]:
    """The reading of a number node (a list of them for `values`); raises ProgramError."""
    from deltaprompts.programs import OPS

    if node.op == "field":
        return _field_reading(facts, str(node.params["name"]))
    if node.op in ("query", "values"):
        attr = str(node.params["attr"])
        target = engine.execute(node.args[0], facts)
        if node.op == "query":
            return _entity_reading(facts, target, attr)
        return [_entity_reading(facts, e, attr) for e in target]
    spec = OPS.get(node.op)
    if spec.gradient is None:
        raise ProgramError("type", f"op {node.op!r} does not give a number")
    numeric = [a for a, kind in zip(node.args, spec.inputs) if kind in ("number", "list")]
    ins: list[Any] = []
    values: list[Any] = []
    for a in numeric:
        r, v = _reading(a, facts), engine.execute(a, facts)
        ins += r if isinstance(r, list) else [r]
        values += v if isinstance(v, list) else [v]
    if len(ins) != len(values) or not all(_is_number(v) for v in values):
        raise ProgramError("type", f"op {node.op!r} needs numbers")
    error: dict[str, float] = {}
    for g, r in zip(spec.gradient([float(v) for v in values]), ins):
        for key, e in r.error.items():
            error[key] = error.get(key, 0.0) + g * e
    decimals = [r.decimals for r in ins]
    keep = spec.keeps_decimals and all(d is not None for d in decimals)
    return _Reading(error, max(decimals, default=0) if keep else None, any(r.axis for r in ins))


def needs_decimals(program: Node) -> list[str]:
    """The ops of a program whose result is not exact at its inputs' decimals (mean, ratio, ...):
    a numeric question using them must state the decimals of its answer."""
    from deltaprompts.programs import OPS

    own = [program.op] if program.op in OPS and not OPS.get(program.op).keeps_decimals else []
    return own + [name for a in program.args for name in needs_decimals(a)]


def tolerance_for(program: Node, value: Any, answer_type: str, facts: Facts, decimals: int | None = None) -> Tolerance:
    """The tolerance of a question asking `program` (answer `value`, of `answer_type`) about a
    render with these Facts. `decimals` is the precision the question states for a rounded
    answer (None: none stated). Raises ProgramError("unreadable_value") when the answer depends
    on a number the render neither prints nor lets one read against an axis, and
    ProgramError("imprecise") when a computed answer is not exact at its inputs' decimals and the
    question states no precision."""
    if answer_type not in NUMERIC_TYPES:
        return EXACT
    reading = _reading(program, facts)
    if isinstance(reading, list):
        raise ProgramError("type", f"a {answer_type} answer needs one number, the program gives a list")
    if reading.axis:
        shown = decimals if decimals is not None else DEFAULT_DECIMALS[answer_type]
        tol = max(reading.worst, half_unit(shown))
        return Tolerance("axis", 0.0, float(f"{tol:.4g}"), decimals)
    source = "printed" if program.op in _READS else "computed"
    places = decimals if decimals is not None else reading.decimals
    if places is None:  # a mean or ratio, and no precision stated: the answer string's own
        places = DEFAULT_DECIMALS[answer_type]
    elif decimals is None and abs(round(float(value), places) - float(value)) > 1e-9 * max(1.0, abs(float(value))):
        raise ProgramError("imprecise", f"{value!r} is not exact at the {places} decimals its inputs show")
    return Tolerance(source, 0.0, half_unit(places), places)


def tolerance_of(question: Question) -> str:
    """The tolerance source of a stored question: old items without one are `unknown` (they are
    scored with the verifiers' default)."""
    return question.tolerance_source or "unknown"


def summary(questions: Iterable[Question]) -> dict[str, Any]:
    """How a set of questions is scored, for manifests and reports: items per tolerance source
    (sorted), and for `unknown` the rule those answers get."""
    counts = Counter(tolerance_of(q) for q in questions)
    out: dict[str, Any] = {"by_source": dict(sorted(counts.items()))}
    if counts.get("unknown"):
        out["unknown"] = UNKNOWN_RULE
    return out
