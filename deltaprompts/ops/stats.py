"""Statistical ops over a set of marks: the sign of a correlation, the outlier from a fitted line, the median."""

from __future__ import annotations

import math
import statistics

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _num, _reduce, op
from deltaprompts.records import Entity, Facts

#: |r| below this is no clear correlation: a question about its sign is ill-posed.
MIN_ABS_R = 0.4
#: the outlier's distance from the fitted line must be at least this many times the runner-up's.
OUTLIER_MARGIN = 2.0


def _pearson(xs: list[float], ys: list[float]) -> float:
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = math.fsum((x - mx) ** 2 for x in xs), math.fsum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        raise ProgramError("degenerate", "a constant variable has no correlation")
    return sxy / math.sqrt(sxx * syy)


@op("correlation", ("set",), "string", {"x": "str", "y": "str"})
def _correlation(facts: Facts, p: dict, es: list[Entity]) -> str:
    """'positive' or 'negative': the sign of the correlation of attribute y with attribute x over a set."""
    if len(es) < 4:
        raise ProgramError("empty", f"a correlation needs at least 4 marks, got {len(es)}")
    r = _pearson([_num(e, p["x"]) for e in es], [_num(e, p["y"]) for e in es])
    if abs(r) < MIN_ABS_R:
        raise ProgramError("ambiguous", f"correlation r={r:.2f} is too weak to have a clear sign")
    return "positive" if r > 0 else "negative"


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x."""
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ProgramError("degenerate", "every mark has the same x: no line to fit")
    slope = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


@op("outlier", ("set",), "entity", {"x": "str", "y": "str"})
def _outlier(facts: Facts, p: dict, es: list[Entity]) -> Entity:
    """The mark farthest (in y) from the least-squares line of y on x fitted to the others; it must
    stand out clearly (twice the runner-up's distance from the line fitted without it)."""
    if len(es) < 5:
        raise ProgramError("empty", f"an outlier needs at least 5 marks, got {len(es)}")
    dist = []
    for e in es:
        rest = [o for o in es if o is not e]
        slope, icept = fit_line([_num(o, p["x"]) for o in rest], [_num(o, p["y"]) for o in rest])
        spread = statistics.pstdev([_num(o, p["y"]) - (slope * _num(o, p["x"]) + icept) for o in rest]) or 1e-12
        dist.append((abs(_num(e, p["y"]) - (slope * _num(e, p["x"]) + icept)) / spread, e))
    dist.sort(key=lambda t: t[0], reverse=True)
    if dist[0][0] < OUTLIER_MARGIN * dist[1][0] or dist[0][0] < 3.0:
        raise ProgramError("ambiguous", "no mark stands clearly apart from the trend")
    return dist[0][1]


def _median_gradient(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    n = len(xs)
    if n % 2:
        out[order[n // 2]] = 1.0
    else:
        out[order[n // 2 - 1]] = out[order[n // 2]] = 0.5
    return out


_reduce("median", statistics.median, "The median of a list of numbers.", _median_gradient, keeps_decimals=False)
