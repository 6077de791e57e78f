"""Interval ops: whether two marks' intervals (error bars, a day's price range) overlap."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _num, op
from deltaprompts.records import Entity, Facts

#: Without an axis to read against, intervals this close (relative to their ends) are too close to call.
REL_MARGIN = 0.01


def read_margin(facts: Facts, e: Entity, attr: str) -> float:
    """How far off a reader may place an interval end: the reading error of `attr` against the axis
    the Facts declare for it (or the value axis), else REL_MARGIN of its size."""
    from deltaprompts.tolerances import attr_axis, axis_error

    axis = attr_axis(facts, e, attr) or facts.extra.get("value_axis")
    if isinstance(axis, dict):
        try:
            return axis_error(facts, axis)
        except ProgramError:
            pass
    return REL_MARGIN * abs(_num(e, attr))


@op("intervals_overlap", ("entity", "entity"), "bool", {"lo": "str", "hi": "str"})
def _intervals_overlap(facts: Facts, p: dict, a: Entity, b: Entity) -> bool:
    """Whether the intervals [lo, hi] of two entities share any value; an error ("ambiguous") when
    the gap or overlap is within the reading error of their ends (they nearly touch)."""
    if a.id == b.id:
        raise ProgramError("degenerate", "an interval compared with itself")
    lo_a, hi_a, lo_b, hi_b = (_num(e, k) for e, k in ((a, p["lo"]), (a, p["hi"]), (b, p["lo"]), (b, p["hi"])))
    if lo_a > hi_a or lo_b > hi_b:
        raise ProgramError("degenerate", f"an interval with lo > hi ({a.id} or {b.id})")
    # the two ends that decide it: the lower interval's top and the upper one's bottom
    (low, high) = (a, b) if lo_a + hi_a <= lo_b + hi_b else (b, a)
    gap = _num(high, p["lo"]) - _num(low, p["hi"])
    # one reading error: two ends side by side are compared more closely than either is read off the axis
    margin = max(read_margin(facts, low, p["hi"]), read_margin(facts, high, p["lo"]))
    if abs(gap) < margin:
        raise ProgramError("ambiguous", f"the intervals of {a.id} and {b.id} nearly touch (gap {gap:g}, "
                                        f"reading error {margin:g})")
    return gap < 0


@op("argmax_clear", ("set",), "entity", {"attr": "str", "ratio": "number"})
def _argmax_clear(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The entity with the largest positive attr (an interval's width), which must be at least `ratio` times
    the runner-up's; an error ("ambiguous") when it is not, so that the winner is visible at a glance."""
    if len(s) < 2:
        raise ProgramError("empty", f"argmax_clear needs at least 2 entities, got {len(s)}")
    ranked = sorted(s, key=lambda e: _num(e, p["attr"]), reverse=True)
    best, second = _num(ranked[0], p["attr"]), _num(ranked[1], p["attr"])
    if best <= 0 or best < float(p["ratio"]) * second:
        raise ProgramError("ambiguous", f"the largest {p['attr']} ({best:g}) is not {p['ratio']}x the next ({second:g})")
    return ranked[0]
