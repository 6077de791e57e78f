"""Clock ops: the time a number of minutes later, and the minutes left to the next full hour."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _num, op
from deltaprompts.records import Entity, Facts


def _time(e: Entity) -> tuple[int, int]:
    h, m = _num(e, "hour"), _num(e, "minute")
    if not (h.is_integer() and m.is_integer() and 1 <= h <= 12 and 0 <= m < 60):
        raise ProgramError("type", f"{e.id} does not show a time on a 12-hour dial (hour={h:g}, minute={m:g})")
    return int(h), int(m)


@op("time_after", ("entity",), "string", {"minutes": "int"})
def _time_after(facts: Facts, p: dict, e: Entity) -> str:
    """The time a clock shows `minutes` later, as 'h:mm' on a 12-hour dial (11:50 + 20 -> 12:10)."""
    n = p["minutes"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 24 * 60:
        raise ProgramError("bad_param", f"time_after needs minutes, a whole number in [1, 1440], got {n!r}")
    h, m = _time(e)
    total = ((h % 12) * 60 + m + n) % 720
    return f"{total // 60 or 12}:{total % 60:02d}"


@op("minutes_to_hour", ("entity",), "number", gradient=lambda xs: [])
def _minutes_to_hour(facts: Facts, p: dict, e: Entity) -> int:
    """Minutes from the time a clock shows to the next full hour; an error ("ambiguous") on a full hour
    (0 or 60)."""
    _, m = _time(e)
    if m == 0:
        raise ProgramError("ambiguous", f"{e.id} shows a full hour: the next one is 0 or 60 minutes away")
    return 60 - m
