"""Ops over frame sequences (scene.frames): the heading of a moving object and the farthest mover, read
from the track entities' trajectory summaries. Each refuses (ProgramError) when the frames do not show
one clear answer: a diagonal or turning path has no single heading, a farthest mover must lead clearly."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _attr, _num, op
from deltaprompts.records import Entity, Facts

AXES = ("left", "right", "up", "down")
STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # image y grows downward
#: the farthest mover's net displacement must be this many times the runner-up's whole path length
FARTHEST_MARGIN = 1.3


@op("axis_direction", ("entity",), "string")
def _axis_direction(facts: Facts, p: dict, e: Entity) -> str:
    """The direction (left, right, up, down) a track moves in; an error when it stays still, moves
    diagonally or turns (then no one of the four words is the answer)."""
    d = str(_attr(e, "direction"))
    if d not in AXES:
        raise ProgramError("static" if d == "none" else "ambiguous", f"{e.id} moves {d}, not along one axis")
    return d


@op("heading", ("set",), "set", {"direction": "str"})
def _heading(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """The tracks of a set that move in `direction` (left, right, up, down); an error for another
    direction or when a track moves diagonally or turns with a part along `direction` (whether it
    counts is unclear; one going up and then left clearly does not move right)."""
    want = str(p["direction"])
    if want not in AXES:
        raise ProgramError("bad_param", f"heading needs one of {', '.join(AXES)}, got {want!r}")
    sx, sy = STEP[want]
    unclear = [e.id for e in s if _attr(e, "direction") in ("diagonal", "turning")
               and sx * _num(e, "dx") + sy * _num(e, "dy") > 0]
    if unclear:
        raise ProgramError("ambiguous", f"{', '.join(unclear)} move(s) along no single axis")
    return [e for e in s if _attr(e, "direction") == want]


@op("farthest", ("set",), "entity")
def _farthest(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The track that travels farthest, of at least two movers: its net displacement must be
    FARTHEST_MARGIN times the runner-up's path length, so path and straight-line readings agree."""
    movers = sorted((e for e in s if _num(e, "distance") > 0), key=lambda e: _num(e, "distance"), reverse=True)
    if len(movers) < 2:
        raise ProgramError("empty", f"{len(movers)} moving object(s); farthest needs two")
    top, second = movers[0], movers[1]
    if _num(top, "displacement") < FARTHEST_MARGIN * _num(second, "distance"):
        raise ProgramError("tie", f"{top.id} does not lead {second.id} clearly")
    return top


@op("event_frame", ("entity",), "number", {"attr": "str"}, gradient=lambda xs: [])
def _event_frame(facts: Facts, p: dict, e: Entity) -> int:
    """The frame number (1-based) a track's event attr records (wall_frame: its first touch of the wall);
    an error when the event never happens (the attr is 0)."""
    k = int(_num(e, p["attr"]))
    if k <= 0:
        raise ProgramError("empty", f"{e.id}: no {p['attr']} (the event never happens)")
    return k
