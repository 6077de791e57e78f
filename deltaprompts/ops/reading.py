"""Comparisons a reader must make by eye: an extremum, a gap or a side of a reference line that
counts only when it is clearer than the error of reading the marks (small multiples, dot plots).

Each mark's reading error is that of deltaprompts.tolerances: none for a printed value, else the
error of reading its own axis (a panel's, or the value axis). On a log value axis (Facts
`value_axis.scale == "log"`) the error is a fixed share of a decade, at least two pixels.
"""

from __future__ import annotations

import math

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _attr, _num, op
from deltaprompts.records import Entity, Facts
from deltaprompts.tolerances import attr_axis, axis_error

#: on a log axis a reader places a mark to about this many decades (and to no less than LOG_MIN_PX)
LOG_DECADES = 0.04
LOG_MIN_PX = 2.0
#: marks on one axis are told apart by sight this many pixels apart; across panels sharing a scale, this many
SAME_AXIS_PX = 4.0
OTHER_PANEL_PX = 8.0


def reading_error(facts: Facts, e: Entity, attr: str, value: float | None = None) -> float:
    """How far off a reader may be on `attr` of `e` (at `value`, default the attribute's own): 0 when
    the value is printed; raises ProgramError("unreadable_value") when there is no axis to read."""
    if (facts.extra.get("printed") or {}).get(e.id, {}).get(attr):
        return 0.0
    axis = attr_axis(facts, e, attr) or (facts.extra.get("value_axis") if attr == "value" else None)
    if not isinstance(axis, dict):
        raise ProgramError("unreadable_value", f"{e.id}.{attr} is neither printed nor on an axis")
    v = _num(e, attr) if value is None else value
    if axis.get("scale") == "log":
        lo, hi = (math.log10(float(x)) for x in axis["range"])
        box = axis.get("box") or facts.extra.get("axes_box")
        pixels = (box[2] - box[0]) if axis.get("axis") == "x" else (box[3] - box[1])
        decades = max(LOG_DECADES, LOG_MIN_PX * (hi - lo) / pixels)
        return abs(v) * (10 ** decades - 1)
    return axis_error(facts, axis)


def _axis(facts: Facts, e: Entity, attr: str) -> dict | None:
    axis = attr_axis(facts, e, attr) or (facts.extra.get("value_axis") if attr == "value" else None)
    return axis if isinstance(axis, dict) else None


def _px(facts: Facts, axis: dict, v: float) -> float:
    """Where value v sits along `axis`, in pixels from its low end."""
    box = axis.get("box") or facts.extra.get("axes_box")
    pixels = (box[2] - box[0]) if axis.get("axis") == "x" else (box[3] - box[1])
    lo, hi = (float(x) for x in axis["range"])
    if axis.get("scale") == "log":
        return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pixels
    return (v - lo) / (hi - lo) * pixels


def _same_scale(facts: Facts, a: dict | None, b: dict | None) -> bool:
    """Whether two axes show values at the same place (one axis, or equal ranges and lengths: shared panels)."""
    if a is None or b is None:
        return False
    if a is b:
        return True
    return a.get("scale") == b.get("scale") and a["range"] == b["range"] and abs(_px(facts, a, float(a["range"][1]))
                                                                                 - _px(facts, b, float(b["range"][1]))) < 1.0


def distinguishable(facts: Facts, a: Entity, b: Entity, attr: str, va: float | None = None,
                    vb: float | None = None) -> bool:
    """Whether a reader tells attr of `a` (at va) from that of `b` (at vb) apart: by sight when both sit on
    one scale (SAME_AXIS_PX apart on one axis, OTHER_PANEL_PX across panels sharing a scale), else by
    reading both values (further apart than the sum of their reading errors)."""
    va = _num(a, attr) if va is None else va
    vb = _num(b, attr) if vb is None else vb
    if va == vb:
        return False
    xa, xb = _axis(facts, a, attr), _axis(facts, b, attr)
    printed = (facts.extra.get("printed") or {})
    if not (printed.get(a.id, {}).get(attr) and printed.get(b.id, {}).get(attr)) and _same_scale(facts, xa, xb):
        need = SAME_AXIS_PX if xa is xb else OTHER_PANEL_PX
        return abs(_px(facts, xa, va) - _px(facts, xb, vb)) >= need
    return abs(va - vb) > reading_error(facts, a, attr, va) + reading_error(facts, b, attr, vb)


def _clear_extreme(facts: Facts, es: list[Entity], attr: str, sign: int) -> Entity:
    if len(es) < 2:
        raise ProgramError("empty", f"a comparison needs at least 2 marks, got {len(es)}")
    ranked = sorted(es, key=lambda e: sign * _num(e, attr), reverse=True)
    best, second = ranked[0], ranked[1]
    if _num(best, attr) == _num(second, attr):
        raise ProgramError("tie", f"{best.id} and {second.id} tie on {attr}")
    if not distinguishable(facts, best, second, attr):
        raise ProgramError("ambiguous", f"{best.id} does not lead {second.id} on {attr} by more than a reader can see")
    return best


@op("clear_argmax", ("set",), "entity", {"attr": "str"})
def _clear_argmax(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The entity with the largest attr, when it leads the runner-up by more than both reading errors."""
    return _clear_extreme(facts, s, p["attr"], +1)


@op("clear_argmin", ("set",), "entity", {"attr": "str"})
def _clear_argmin(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The entity with the smallest attr, when it trails the runner-up by more than both reading errors."""
    return _clear_extreme(facts, s, p["attr"], -1)


@op("filter_ref", ("set",), "set", {"attr": "str", "ref": "str", "cmp": "str"}, choices={"cmp": ("gt", "lt")})
def _filter_ref(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities whose attr is above (gt) or below (lt) their own `ref` attribute (a reference line);
    an error when some mark sits within its reading error of its line."""
    out = []
    for e in s:
        v, ref = _num(e, p["attr"]), _num(e, p["ref"])
        if not distinguishable(facts, e, e, p["attr"], v, ref):
            raise ProgramError("ambiguous", f"{e.id}: {p['attr']}={v:g} is too close to its reference {ref:g}")
        if (v > ref) == (p["cmp"] == "gt"):
            out.append(e)
    return out


@op("widest_gap", ("set",), "value", {"group": "str", "split": "str", "attr": "str"})
def _widest_gap(facts: Facts, p: dict, s: list[Entity]) -> object:
    """The `group` value (a category) whose two `split` members (two series) differ most in attr,
    when that gap beats the runner-up by more than the four readings' errors."""
    axis = facts.extra.get("value_axis") or {}
    if axis.get("scale") == "log" and not facts.extra.get("printed"):
        raise ProgramError("unreadable_value", "differences of values are not read off a log axis")
    groups: dict[object, list[Entity]] = {}
    for e in s:
        groups.setdefault(_attr(e, p["group"]), []).append(e)
    gaps = []
    for key, members in groups.items():
        if len({_attr(e, p["split"]) for e in members}) != 2 or len(members) != 2:
            raise ProgramError("degenerate", f"{p['group']}={key!r} does not hold exactly two {p['split']} marks")
        a, b = members
        err = reading_error(facts, a, p["attr"]) + reading_error(facts, b, p["attr"])
        gaps.append((abs(_num(a, p["attr"]) - _num(b, p["attr"])), err, key))
    if len(gaps) < 2:
        raise ProgramError("empty", f"a widest gap needs at least 2 {p['group']} values, got {len(gaps)}")
    gaps.sort(key=lambda t: t[0], reverse=True)
    (g1, e1, key), (g2, e2, _) = gaps[0], gaps[1]
    if g1 == g2:
        raise ProgramError("tie", f"two {p['group']} values have the same gap {g1:g}")
    if g1 - g2 <= e1 + e2:
        raise ProgramError("ambiguous", f"the widest gap {g1:g} beats the next {g2:g} by less than the reading error")
    return key
