"""Quadrilateral geometry for boxes after a geometric augmentation: map, bound, measure, intersect (pure Python)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from deltaprompts.records import Box, Point, Quad

Matrix = Sequence[Sequence[float]]
"""A 3x3 projective map (homography) of pixel coordinates: (x, y, 1) -> H (x, y, 1), then divided by w."""


def box_corners(box: Box) -> Quad:
    """The four corners of a box, top-left, top-right, bottom-right, bottom-left."""
    x0, y0, x1, y1 = box
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def map_point(h: Matrix, p: Point) -> Point:
    """`p` under the homography `h`; raises ValueError for a point the map sends to infinity."""
    x, y = p
    w = h[2][0] * x + h[2][1] * y + h[2][2]
    if abs(w) < 1e-12:
        raise ValueError(f"the map sends {p} to infinity")
    return ((h[0][0] * x + h[0][1] * y + h[0][2]) / w, (h[1][0] * x + h[1][1] * y + h[1][2]) / w)


def map_box(h: Matrix, box: Box, ndigits: int = 2) -> Quad:
    """The quad a box becomes under `h` (corners rounded to `ndigits`)."""
    corners = (map_point(h, p) for p in box_corners(box))
    return tuple((round(x, ndigits), round(y, ndigits)) for x, y in corners)  # type: ignore[return-value]


def bounds(points: Sequence[Point]) -> Box:
    """The bounding box of some points."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def inside(points: Sequence[Point], width: float, height: float, slack: float = 0.5) -> bool:
    """Whether every point lies in the image [0, width] x [0, height] (with `slack` pixels)."""
    return all(-slack <= x <= width + slack and -slack <= y <= height + slack for x, y in points)


def quad_height(q: Quad) -> float:
    """The height of a (text) quad: the mean length of its left and right edges."""
    (ax, ay), (bx, by), (cx, cy), (dx, dy) = q
    return (math.hypot(dx - ax, dy - ay) + math.hypot(cx - bx, cy - by)) / 2


def area(poly: Sequence[Point]) -> float:
    """The area of a simple polygon (shoelace)."""
    n = len(poly)
    return abs(sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1] for i in range(n))) / 2


def _orient(poly: Sequence[Point]) -> list[Point]:
    n = len(poly)
    signed = sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1] for i in range(n))
    return list(poly) if signed >= 0 else list(reversed(poly))


def clip(subject: Sequence[Point], clipper: Sequence[Point]) -> list[Point]:
    """The part of polygon `subject` inside the convex polygon `clipper` (Sutherland-Hodgman)."""
    out = _orient(subject)
    cl = _orient(clipper)
    for i in range(len(cl)):
        (ax, ay), (bx, by) = cl[i], cl[(i + 1) % len(cl)]
        side = lambda p: (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)  # noqa: E731 (>= 0: inside)
        src, out = out, []
        for j in range(len(src)):
            p, q = src[j], src[(j + 1) % len(src)]
            sp, sq = side(p), side(q)
            if sp >= 0:
                out.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        if not out:
            return []
    return out


def overlap(a: Sequence[Point], b: Sequence[Point]) -> float:
    """Intersection area of two convex quads over the smaller one's area (0 for degenerate quads)."""
    smaller = min(area(a), area(b))
    return area(clip(a, b)) / smaller if smaller > 0 else 0.0
