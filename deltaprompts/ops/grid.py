"""Ops for marks compared by eye: colour-coded cells (heatmaps), per-row totals, and the widest gap
between two series (radar). Each refuses (ProgramError "ambiguous") when the answer could not be
seen on the render: cells whose colours are too close, totals that need unprinted values."""

from __future__ import annotations

import math

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _attr, _num, op
from deltaprompts.records import Entity, Facts, Scalar

#: least RGB distance (0-441) between two cells' colours for a reader to tell which is darker/hotter
MIN_COLOR_DIST = 40.0
#: the widest gap must beat the runner-up by this factor (radar: gaps are judged by eye)
GAP_MARGIN = 1.3
#: a row total or mean must beat the runner-up by this fraction of its own size
GROUP_MARGIN = 0.01


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _printed(facts: Facts, e: Entity, attr: str) -> bool:
    return bool((facts.extra.get("printed") or {}).get(e.id, {}).get(attr))


def _visibly_apart(facts: Facts, a: Entity, b: Entity, attr: str) -> bool:
    """Whether a reader can tell a's `attr` from b's: both printed, or colours clearly apart."""
    if _printed(facts, a, attr) and _printed(facts, b, attr):
        return True
    ca, cb = _attr(a, "color"), _attr(b, "color")
    return math.dist(_rgb(str(ca)), _rgb(str(cb))) >= MIN_COLOR_DIST


def _shade_extreme(facts: Facts, p: dict, s: list[Entity], sign: int) -> Entity:
    if len(s) < 2:
        raise ProgramError("empty", f"need at least 2 cells, got {len(s)}")
    ranked = sorted(s, key=lambda e: sign * _num(e, p["attr"]), reverse=True)
    top, second = ranked[0], ranked[1]
    if math.isclose(_num(top, p["attr"]), _num(second, p["attr"])):
        raise ProgramError("tie", f"{top.id} and {second.id} tie on {p['attr']}")
    if not _visibly_apart(facts, top, second, p["attr"]):
        raise ProgramError("ambiguous", f"{top.id} and {second.id} have nearly the same colour and no printed value")
    return top


@op("shade_argmax", ("set",), "entity", {"attr": "str"})
def _shade_argmax(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The colour-coded mark with the largest attr; its runner-up must be printed or visibly another colour."""
    return _shade_extreme(facts, p, s, 1)


@op("shade_argmin", ("set",), "entity", {"attr": "str"})
def _shade_argmin(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The colour-coded mark with the smallest attr; its runner-up must be printed or visibly another colour."""
    return _shade_extreme(facts, p, s, -1)


@op("shade_greater", ("entity", "entity"), "bool", {"attr": "str"})
def _shade_greater(facts: Facts, p: dict, a: Entity, b: Entity) -> bool:
    """Whether colour-coded mark a's attr exceeds b's; the two must be printed or visibly apart."""
    if a.id == b.id:
        raise ProgramError("degenerate", "a cell compared with itself")
    if not _visibly_apart(facts, a, b, p["attr"]):
        raise ProgramError("ambiguous", f"{a.id} and {b.id} have nearly the same colour and no printed value")
    return _num(a, p["attr"]) > _num(b, p["attr"])


@op("group_argmax", ("set",), "value", {"attr": "str", "by": "str", "agg": "str"},
    choices={"agg": ("sum", "mean")})
def _group_argmax(facts: Facts, p: dict, s: list[Entity]) -> Scalar:
    """The `by` value (a heatmap row) whose marks have the largest sum or mean of attr; every value
    must be printed (a total is not read off a colour bar) and the winner must lead clearly."""
    if any(not _printed(facts, e, p["attr"]) for e in s):
        raise ProgramError("unreadable_value", f"a group {p['agg']} needs every {p['attr']} printed")
    groups: dict[Scalar, list[float]] = {}
    for e in s:
        groups.setdefault(_attr(e, p["by"]), []).append(_num(e, p["attr"]))
    if len(groups) < 2:
        raise ProgramError("degenerate", f"one {p['by']} only")
    score = {k: (math.fsum(v) if p["agg"] == "sum" else math.fsum(v) / len(v)) for k, v in groups.items()}
    ranked = sorted(score.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top - second <= GROUP_MARGIN * abs(top):
        raise ProgramError("tie", f"{p['by']} {best!r} leads by too little ({top:g} vs {second:g})")
    return best


@op("max_gap", ("set", "set"), "entity", {"attr": "str", "key": "str"})
def _max_gap(facts: Facts, p: dict, a: list[Entity], b: list[Entity]) -> Entity:
    """The mark of set a (paired with b's by `key`, e.g. category) where |a - b| of attr is largest;
    it must beat the runner-up gap by GAP_MARGIN so that the answer is visible."""
    other = {_attr(e, p["key"]): e for e in b}
    gaps = [(abs(_num(e, p["attr"]) - _num(other[_attr(e, p["key"])], p["attr"])), e)
            for e in a if _attr(e, p["key"]) in other]
    if len(gaps) < 2:
        raise ProgramError("empty", f"need at least 2 paired marks, got {len(gaps)}")
    gaps.sort(key=lambda t: t[0], reverse=True)
    if gaps[0][0] < GAP_MARGIN * gaps[1][0]:
        raise ProgramError("ambiguous", "the widest gap is not clearly wider than the next")
    return gaps[0][1]
