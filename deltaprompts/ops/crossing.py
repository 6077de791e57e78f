"""Where two series over an ordered axis cross: the op `crossing`.

It takes the two series' marks as two sets, matched by category in the first set's order (the
order of the axis: entities come in category order), and compares a numeric attribute. A question
whose answer a reader could not see is ill-posed: at every category the two series' marks must be
visibly apart, so the order at each one shows (a comparison of two marks at the same place on the
axis: no value is read, so no axis error applies). (The widest gap between two series is deltaprompts/ops/reading.py's
`widest_gap`.)
"""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _attr, _num, op
from deltaprompts.records import Entity, Facts

#: at every category the two series differ by at least this fraction of their largest |value| ...
MIN_APART = 0.015
#: ... and their marks lie this many pixels apart (which is above must show; no value is read)
MIN_APART_PX = 3.0


def _pixels_apart(a: Entity, b: Entity) -> float:
    """How far apart two marks' box centres are vertically, in pixels (inf without boxes)."""
    if a.box is None or b.box is None:
        return float("inf")
    return abs((a.box[1] + a.box[3]) - (b.box[1] + b.box[3])) / 2


def _paired(a: list[Entity], b: list[Entity], attr: str) -> list[tuple[str, Entity, Entity]]:
    """(category, a's mark, b's mark) per category of `a` in its order; raises ProgramError when the
    sets are not two series over the same categories."""
    if not a or not b:
        raise ProgramError("empty", "comparing two series needs marks in both")
    by_cat: dict[str, Entity] = {}
    for e in b:
        cat = str(_attr(e, "category"))
        if cat in by_cat:
            raise ProgramError("not_unique", f"the second series has two marks at {cat!r}")
        by_cat[cat] = e
    cats = [str(_attr(e, "category")) for e in a]
    if len(set(cats)) != len(cats) or set(cats) != set(by_cat):
        raise ProgramError("degenerate", "the two series do not cover the same categories once each")
    if {e.id for e in a} & {e.id for e in b}:
        raise ProgramError("degenerate", "the two sets share marks: not two different series")
    return [(c, e, by_cat[c]) for c, e in zip(cats, a)]


@op("crossing", ("set", "set"), "string", {"attr": "str"})
def _crossing(facts: Facts, p: dict, a: list[Entity], b: list[Entity]) -> str:
    """The category after which two series (two sets of marks, in axis order) swap order by attr;
    an error (ambiguous) when they swap more than once or never, or come too close to tell."""
    attr = p["attr"]
    pairs = _paired(a, b, attr)
    if len(pairs) < 2:
        raise ProgramError("empty", "a crossing needs at least 2 categories")
    rows = [(c, _num(ea, attr), _num(eb, attr)) for c, ea, eb in pairs]
    scale = max(max(abs(x), abs(y)) for _, x, y in rows) or 1.0
    for (c, ea, eb), (_, x, y) in zip(pairs, rows):
        if abs(x - y) < MIN_APART * scale or _pixels_apart(ea, eb) < MIN_APART_PX:
            raise ProgramError("ambiguous", f"at {c!r} the two series come too close to tell which is above")
    swaps = [rows[i][0] for i in range(len(rows) - 1)
             if (rows[i][1] > rows[i][2]) != (rows[i + 1][1] > rows[i + 1][2])]
    if len(swaps) != 1:
        raise ProgramError("ambiguous", f"the two series swap order {len(swaps)} times, not once")
    return swaps[0]
