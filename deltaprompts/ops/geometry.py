"""Geometry ops: the angle a polygon's other angles leave, Pythagoras, and the areas of rectangles and
right triangles, each computed from printed numbers (their reading errors carry through `gradient`)."""

from __future__ import annotations

import math

from deltaprompts.errors import ProgramError
from deltaprompts.programs import op
from deltaprompts.records import Facts


def _nums(name: str, xs: list, n: int | None = None) -> list[float]:
    nums = [float(x) for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if len(nums) != len(xs):
        raise ProgramError("type", f"{name} needs numbers, got {xs!r}")
    if n is not None and len(nums) != n:
        raise ProgramError("degenerate", f"{name} needs exactly {n} numbers, got {len(nums)}")
    return nums


@op("remaining_angle", ("list",), "number", gradient=lambda xs: [-1.0] * len(xs))
def _remaining_angle(facts: Facts, p: dict, xs: list) -> float:
    """The angle (degrees) of an n-gon (n = the `n_vertices` field) that its other n - 1 angles leave:
    (n - 2) * 180 minus their sum; an error ("degenerate") unless exactly n - 1 angles are given."""
    n = facts.fields.get("n_vertices")
    if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 3:
        raise ProgramError("missing_field", "remaining_angle needs the field n_vertices (>= 3)")
    nums = _nums("remaining_angle", xs, int(n) - 1)
    out = (int(n) - 2) * 180.0 - math.fsum(nums)
    if out <= 0:
        raise ProgramError("degenerate", f"the given angles sum to {math.fsum(nums):g}, nothing is left")
    return out


def _hyp_gradient(xs: list[float]) -> list[float]:
    c = math.hypot(*xs)
    return [x / c for x in xs] if c else [math.inf] * len(xs)


@op("hypotenuse", ("list",), "number", gradient=_hyp_gradient, keeps_decimals=False)
def _hypotenuse(facts: Facts, p: dict, xs: list) -> float:
    """The hypotenuse of a right triangle from its two legs: sqrt(a^2 + b^2)."""
    a, b = _nums("hypotenuse", xs, 2)
    return math.hypot(a, b)


def _leg_gradient(xs: list[float]) -> list[float]:
    c, a = xs
    x = math.sqrt(max(c * c - a * a, 0.0))
    return [c / x, -a / x] if x else [math.inf, math.inf]


@op("leg", ("number", "number"), "number", gradient=_leg_gradient, keeps_decimals=False)
def _leg(facts: Facts, p: dict, c: float, a: float) -> float:
    """The other leg of a right triangle from its hypotenuse `c` and one leg `a`: sqrt(c^2 - a^2);
    an error ("degenerate") when c <= a."""
    c, a = _nums("leg", [c, a])
    if c <= a:
        raise ProgramError("degenerate", f"a hypotenuse {c:g} no longer than the leg {a:g}")
    return math.sqrt(c * c - a * a)


@op("rectangle_area", ("number", "number"), "number", gradient=lambda xs: [xs[1], xs[0]], keeps_decimals=False)
def _rectangle_area(facts: Facts, p: dict, a: float, b: float) -> float:
    """The area of a rectangle with sides a and b: a * b."""
    a, b = _nums("rectangle_area", [a, b])
    return a * b


@op("right_triangle_area", ("list",), "number", gradient=lambda xs: [xs[1] / 2, xs[0] / 2] if len(xs) == 2 else [],
    keeps_decimals=False)
def _right_triangle_area(facts: Facts, p: dict, xs: list) -> float:
    """The area of a right triangle from its two legs: a * b / 2."""
    a, b = _nums("right_triangle_area", xs, 2)
    return a * b / 2
