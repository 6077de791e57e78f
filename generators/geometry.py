"""Geometry diagrams (scene.geometry): a triangle, right triangle, rectangle, parallelogram or trapezoid drawn
to scale, with labelled vertices, some printed side lengths and angles, and right-angle marks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

FONT_FILE = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
SHAPES = ("triangle", "right_triangle", "rectangle", "parallelogram", "trapezoid")
# vertex names; no "A" (an answer "angle A" would lose its letter to the verifiers' article stripping)
LABELS3 = ("PQR", "XYZ", "DEF", "KLM", "BCD", "RST", "LMN", "UVW", "GHJ")
LABELS4 = ("PQRS", "BCDE", "EFGH", "JKLM", "WXYZ", "KLMN", "DEFG", "RSTU")
UNITS = ("cm", "m", "mm", "in", "ft")
TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (20, 21, 29), (12, 35, 37), (9, 40, 41), (28, 45, 53))
# (dx, h, leg) legs of a trapezoid sharing a height h
LEGS = {4: ((3, 5),), 6: ((8, 10),), 8: ((6, 10), (15, 17)), 12: ((5, 13), (9, 15), (16, 20)),
        15: ((8, 17), (20, 25)), 20: ((15, 25), (21, 29))}
FILLS = ((222, 235, 250), (226, 243, 226), (250, 236, 220), (238, 230, 248), (246, 246, 222))
INK, EDGE, MARK = (25, 25, 25), (40, 40, 90), (200, 40, 40)
PAD = 4.0  # least gap between a text box and a drawn line or another text, px
ARC = 20.0  # radius of an angle arc, px


def font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_FILE, size=px)


def _angles_of(pts: list[tuple[float, float]]) -> list[float]:
    n, out = len(pts), []
    for i in range(n):
        (ux, uy), (vx, vy), (wx, wy) = pts[i - 1], pts[i], pts[(i + 1) % n]
        a = math.atan2(uy - vy, ux - vx) - math.atan2(wy - vy, wx - vx)
        a = abs(math.degrees(a)) % 360
        out.append(min(a, 360 - a))
    return out


def seg_box_dist(p: tuple[float, float], q: tuple[float, float], box: tuple[float, ...]) -> float:
    """Distance between segment pq and an axis-aligned box (0 when they touch or cross)."""
    x0, y0, x1, y1 = box
    best = math.inf
    for t in np.linspace(0.0, 1.0, 41):  # dense sampling is exact enough at a few px and simple
        x, y = p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])
        dx, dy = max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1)
        best = min(best, math.hypot(dx, dy))
    return best


def _boxes_apart(a: tuple[float, ...], b: tuple[float, ...], pad: float) -> bool:
    return a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1]


def _unit(x: float, y: float) -> tuple[float, float]:
    n = math.hypot(x, y) or 1.0
    return x / n, y / n


@register
class Geometry(Generator):
    name: ClassVar[str] = "scene.geometry"
    domain: ClassVar[str] = "scene"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ("A triangle, right triangle, rectangle, parallelogram or trapezoid drawn to scale with "
                                  "labelled vertices, printed side lengths and angles and right-angle marks.")
    knobs: ClassVar[tuple[Knob, ...]] = (
        Knob("shape", "choice", "any", "Which figure; any = drawn per item.", choices=("any", *SHAPES)),
        Knob("rotate", "bool", True, "Turn the figure by a random angle (else one side lies flat).",
             difficulty="on is harder"),
        Knob("image_size", "int", 420, "Image width and height, px.", lo=300, hi=720),
        Knob("font_px", "int", 16, "Label font size, px.", lo=12, hi=24, difficulty="smaller is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        shape = knobs["shape"] if knobs["shape"] != "any" else choice(rng, SHAPES)
        pts, mode, printed_s, printed_a, right = self._figure(rng, shape)
        n = len(pts)
        labels = choice(rng, LABELS3 if n == 3 else LABELS4)
        if rng.random() < 0.5:  # walk the outline the other way round
            pts, printed_a, right = pts[::-1], printed_a[::-1], right[::-1]
            printed_s = printed_s[::-1][1:] + printed_s[::-1][:1]  # side i joins vertices i, i+1
        rot = float(rng.uniform(0, 360)) if knobs["rotate"] else choice(rng, (0.0, 180.0))
        # lengths and angles from the unrounded model, whole where sampled whole (the printed values)
        snap = lambda v: float(round(v)) if abs(v - round(v)) < 1e-6 else round(v, 6)  # noqa: E731
        sides = [snap(math.dist(pts[i], pts[(i + 1) % n])) for i in range(n)]
        area = abs(math.fsum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))) / 2
        return {"sides": sides, "angles": [snap(v) for v in _angles_of(pts)], "area": snap(area),
                "shape": shape, "mode": mode, "labels": labels, "points": [[round(x, 6), round(y, 6)] for x, y in pts],
                "printed_sides": printed_s, "printed_angles": printed_a, "right": right, "rotation": round(rot, 3),
                "unit": choice(rng, UNITS), "fill": int(rng.integers(0, len(FILLS))),
                "size": int(knobs["image_size"]), "font_px": int(knobs["font_px"])}

    @staticmethod
    def _figure(rng: np.random.Generator, shape: str) -> tuple:
        """Model points (y up) of `shape`, its printing mode, and which sides, angles, right angles are shown."""
        if shape == "triangle":
            mode = choice(rng, ("angles", "sides"))
            if mode == "angles":
                while True:
                    a, b = (int(v) for v in rng.integers(30, 101, 2))
                    if 180 - a - b >= 30:
                        break
                c = 180 - a - b
                s1, s2 = math.sin(math.radians(c)), math.sin(math.radians(b))  # |V0V1|, |V0V2|
                pts = [(0.0, 0.0), (s1, 0.0), (s2 * math.cos(math.radians(a)), s2 * math.sin(math.radians(a)))]
                hide = int(rng.integers(0, 3))
                return pts, mode, [False] * 3, [i != hide for i in range(3)], [False] * 3
            while True:
                a, b, c = (int(v) for v in rng.integers(3, 16, 3))  # a = |V1V2|, b = |V0V2|, c = |V0V1|
                if a + b > c and a + c > b and b + c > a:
                    al = math.acos((b * b + c * c - a * a) / (2 * b * c))
                    pts = [(0.0, 0.0), (float(c), 0.0), (b * math.cos(al), b * math.sin(al))]
                    if min(_angles_of(pts)) >= 28:
                        return pts, mode, [True] * 3, [False] * 3, [False] * 3
        if shape == "right_triangle":
            p, q, h = choice(rng, TRIPLES)
            k = choice(rng, (1, 1, 2, 3)) if h < 20 else 1
            p, q = (p * k, q * k) if rng.random() < 0.5 else (q * k, p * k)
            pts = [(0.0, 0.0), (float(p), 0.0), (0.0, float(q))]  # sides: V0V1 leg, V1V2 hypotenuse, V2V0 leg
            mode = choice(rng, ("legs", "leg_hyp", "all"))
            shown = {"legs": [True, False, True], "leg_hyp": [True, True, False] if rng.random() < 0.5
                     else [False, True, True], "all": [True] * 3}[mode]
            return pts, mode, shown, [False] * 3, [True, False, False]
        if shape == "rectangle":
            while True:
                w, h = (int(v) for v in rng.integers(2, 21, 2))
                if 1 / 2.8 <= w / h <= 2.8 and w != h:
                    break
            pts = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
            j = int(rng.integers(0, 2))  # print the bottom or top width and the right or left height
            shown = [j == 0, True, j == 1, False] if rng.random() < 0.5 else [j == 0, False, j == 1, True]
            return pts, "sides", shown, [False] * 4, [True] * 4
        if shape == "parallelogram":
            while True:
                a, b = (int(v) for v in rng.integers(3, 21, 2))
                if 0.4 <= b / a <= 1.2:
                    break
            th = math.radians(int(rng.integers(50, 76)))
            dx, dy = b * math.cos(th), b * math.sin(th)
            pts = [(0.0, 0.0), (float(a), 0.0), (a + dx, dy), (dx, dy)]
            mode = choice(rng, ("sides", "angles"))
            if mode == "sides":
                return pts, mode, [True] * 4, [False] * 4, [False] * 4
            hide = int(rng.integers(0, 4))
            return pts, mode, [False] * 4, [i != hide for i in range(4)], [False] * 4
        mode = choice(rng, ("sides", "angles"))
        if mode == "sides":  # legs from triples sharing the height, so every side is a whole number
            h = choice(rng, tuple(LEGS))
            (d1, _), (d2, _) = choice(rng, LEGS[h]), choice(rng, LEGS[h])  # the legs follow from d and h
            top = int(rng.integers(max(4, h // 2), max(5, 2 * h)))
            pts = [(0.0, 0.0), (float(d1 + top + d2), 0.0), (float(d1 + top), float(h)), (float(d1), float(h))]
            return pts, mode, [True] * 4, [False] * 4, [False] * 4
        a1, a2 = (int(v) for v in rng.integers(50, 86, 2))
        h, top = 1.0, float(rng.uniform(0.8, 2.0))
        d1, d2 = h / math.tan(math.radians(a1)), h / math.tan(math.radians(a2))
        pts = [(0.0, 0.0), (d1 + top + d2, 0.0), (d1 + top, h), (d1, h)]
        hide = int(rng.integers(0, 4))
        return pts, mode, [False] * 4, [i != hide for i in range(4)], [False] * 4

    # ------------------------------------------------------------------ drawing

    @staticmethod
    def _pixels(dd: dict[str, Any]) -> list[tuple[float, float]]:
        """The vertices in pixels: turned, y flipped, scaled to fit the image with room for labels."""
        size, t = dd["size"], math.radians(dd["rotation"])
        raw = [(x * math.cos(t) - y * math.sin(t), -(x * math.sin(t) + y * math.cos(t))) for x, y in dd["points"]]
        xs, ys = [p[0] for p in raw], [p[1] for p in raw]
        margin = 0.15 * size + 1.5 * dd["font_px"]
        s = (size - 2 * margin) / max(max(xs) - min(xs), max(ys) - min(ys))
        ox = size / 2 - s * (max(xs) + min(xs)) / 2
        oy = size / 2 - s * (max(ys) + min(ys)) / 2
        return [(round(ox + s * x, 2), round(oy + s * y, 2)) for x, y in raw]

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it (label placement included), without Facts; the bare baseline
        of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    def _draw(self, spec: Spec) -> tuple[Image.Image, list[tuple[float, float]],
                                         list[tuple[str, tuple[float, ...], str]]]:
        """The image, the vertices in pixels and each label drawn (text, ink box, role), for the Facts; LayoutError
        when a label finds no room."""
        dd = spec.data
        size, n, labels = dd["size"], len(dd["points"]), dd["labels"]
        pts = self._pixels(dd)
        sides, angles = dd["sides"], dd["angles"]
        cx, cy = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
        ss = 3  # outline and marks supersampled, texts drawn at full size
        big = Image.new("RGB", (size * ss, size * ss), (255, 255, 255))
        bd = ImageDraw.Draw(big)
        bd.polygon([(x * ss, y * ss) for x, y in pts], fill=FILLS[dd["fill"]])
        segs: list[tuple[tuple[float, float], tuple[float, float]]] = []
        for i in range(n):
            segs.append((pts[i], pts[(i + 1) % n]))
        marks: list[tuple[tuple[float, float], tuple[float, float]]] = []
        for i in range(n):
            v, u, w = pts[i], pts[i - 1], pts[(i + 1) % n]
            eu, ew = _unit(u[0] - v[0], u[1] - v[1]), _unit(w[0] - v[0], w[1] - v[1])
            if dd["right"][i]:
                m = 13.0
                a, c = (v[0] + m * eu[0], v[1] + m * eu[1]), (v[0] + m * ew[0], v[1] + m * ew[1])
                b = (a[0] + m * ew[0], a[1] + m * ew[1])
                marks += [(a, b), (b, c)]
            elif dd["printed_angles"][i] or self._asks_angle(dd, i):
                t0, t1 = math.atan2(eu[1], eu[0]), math.atan2(ew[1], ew[0])
                if (t1 - t0) % (2 * math.pi) > math.pi:
                    t0, t1 = t1, t0
                span = (t1 - t0) % (2 * math.pi)
                arc = [(v[0] + ARC * math.cos(t0 + span * k / 12), v[1] + ARC * math.sin(t0 + span * k / 12))
                       for k in range(13)]
                marks += list(zip(arc, arc[1:]))
        for p, q in marks:
            bd.line([(p[0] * ss, p[1] * ss), (q[0] * ss, q[1] * ss)], fill=MARK, width=2 * ss)
        for p, q in segs:
            bd.line([(p[0] * ss, p[1] * ss), (q[0] * ss, q[1] * ss)], fill=EDGE, width=3 * ss)
        for x, y in pts:
            bd.ellipse([(x - 2.5) * ss, (y - 2.5) * ss, (x + 2.5) * ss, (y + 2.5) * ss], fill=EDGE)
        im = big.resize((size, size), Image.LANCZOS)
        draw = ImageDraw.Draw(im)
        f = font(dd["font_px"])
        lines = segs + marks
        taken: list[tuple[float, ...]] = []
        texts: list[tuple[str, tuple[float, ...], str]] = []

        def place(text: str, at: tuple[float, float], direction: tuple[float, float], start: float, role: str,
                  near: float = 0.0) -> tuple[float, ...]:
            """Draw `text` centred on a point out from `at` along `direction` (turned a little if need be),
            clear of every line, of the image edge and of the texts already placed; else LayoutError."""
            x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
            w, h = x1 - x0, y1 - y0
            for extra in range(0, 40, 3):
                for turn in (0, 12, -12, 25, -25, 40, -40):
                    t = math.radians(turn)
                    dx = direction[0] * math.cos(t) - direction[1] * math.sin(t)
                    dy = direction[0] * math.sin(t) + direction[1] * math.cos(t)
                    d = start + extra + 0.5 * abs(w * dx) + 0.5 * abs(h * dy)
                    mx, my = at[0] + d * dx, at[1] + d * dy
                    xy = (round(mx - w / 2 - x0, 1), round(my - h / 2 - y0, 1))
                    box = tuple(float(v) for v in draw.textbbox(xy, text, font=f))
                    if box[0] < 3 or box[1] < 3 or box[2] > size - 3 or box[3] > size - 3:
                        continue
                    if any(seg_box_dist(p, q, box) < PAD for p, q in lines):
                        continue
                    if near and math.hypot(mx - at[0], my - at[1]) > near:
                        continue
                    if any(not _boxes_apart(box, o, PAD) for o in taken):
                        continue
                    draw.text(xy, text, font=f, fill=INK if role == "label" or role.startswith("cell:side")
                              else MARK)
                    box = tuple(float(v) for v in draw.textbbox(xy, text, font=f))
                    taken.append(box)
                    texts.append((text, box, role))
                    return box
            raise LayoutError(f"no room for the label {text!r}")

        # angle values inside their angles first (least room), then side lengths, then vertex names
        for i in range(n):
            v, u, w = pts[i], pts[i - 1], pts[(i + 1) % n]
            eu, ew = _unit(u[0] - v[0], u[1] - v[1]), _unit(w[0] - v[0], w[1] - v[1])
            inward = _unit(eu[0] + ew[0], eu[1] + ew[1])
            if dd["printed_angles"][i]:
                place(f"{angles[i]:g}°", v, inward, ARC + 3, f"cell:angle_{labels[i]}:degrees", near=ARC + 70)
            elif self._asks_angle(dd, i):
                place("?", v, inward, ARC + 3, "mark", near=ARC + 70)
        for i in range(n):
            if dd["printed_sides"][i]:
                p, q = pts[i], pts[(i + 1) % n]
                mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
                nx, ny = _unit(q[1] - p[1], p[0] - q[0])
                if nx * (mx - cx) + ny * (my - cy) < 0:
                    nx, ny = -nx, -ny
                name = labels[i] + labels[(i + 1) % n]
                place(f"{sides[i]:g} {dd['unit']}", (mx, my), (nx, ny), 4, f"cell:side_{name}:length")
        for i in range(n):
            v, u, w = pts[i], pts[i - 1], pts[(i + 1) % n]
            eu, ew = _unit(u[0] - v[0], u[1] - v[1]), _unit(w[0] - v[0], w[1] - v[1])
            out = _unit(-(eu[0] + ew[0]), -(eu[1] + ew[1]))
            place(labels[i], v, out, 5, "label", near=60)
        return im, pts, texts

    def render(self, spec: Spec) -> Rendered:
        """Draw the Spec (through _draw) and compute Facts from its vertices and placed labels."""
        im, pts, placed = self._draw(spec)
        dd = spec.data
        texts = [TextSpan(text=text, box=box, role=role) for text, box, role in placed]
        return Rendered(png=png_bytes(im), facts=self._facts(dd, pts, dd["sides"], dd["angles"], texts, dd["size"]))

    @staticmethod
    def _asks_angle(dd: dict[str, Any], i: int) -> bool:
        """Whether angle i is the one the printed others determine (marked '?')."""
        shown = dd["printed_angles"]
        return not shown[i] and sum(shown) == len(shown) - 1

    def _facts(self, dd, pts, sides, angles, texts, size) -> Facts:
        n, labels = len(pts), dd["labels"]
        entities: list[Entity] = []
        for i in range(n):
            x, y = pts[i]
            entities.append(Entity(id=f"vertex_{labels[i]}", attrs={"kind": "vertex", "label": labels[i],
                                                                     "x": x, "y": y},
                                   box=(x - 3, y - 3, x + 3, y + 3)))
        shape = dd["shape"]
        for i in range(n):
            j = (i + 1) % n
            name = labels[i] + labels[j]
            (x0, y0), (x1, y1) = pts[i], pts[j]
            attrs: dict[str, Any] = {"kind": "side", "name": name, "length": sides[i],
                                     "printed": bool(dd["printed_sides"][i]), "unit": dd["unit"]}
            if shape == "rectangle":
                attrs["dim"] = "width" if i % 2 == 0 else "height"
            if shape == "right_triangle":
                hyp = not dd["right"][i] and not dd["right"][j]
                attrs["side_role"] = "hypotenuse" if hyp else "leg"
                if not dd["printed_sides"][i] and sum(dd["printed_sides"]) == 2:
                    attrs["missing_hypotenuse" if hyp else "missing_leg"] = name
            entities.append(Entity(id=f"side_{name}", attrs=attrs,
                                   box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
        for i in range(n):
            x, y = pts[i]
            attrs = {"kind": "angle", "name": f"angle {labels[i]}", "vertex": labels[i], "degrees": angles[i],
                     "printed": bool(dd["printed_angles"][i]), "right": bool(dd["right"][i])}
            if self._asks_angle(dd, i):
                attrs["missing_angle"] = labels[i]
            entities.append(Entity(id=f"angle_{labels[i]}", attrs=attrs, box=(x - ARC, y - ARC, x + ARC, y + ARC)))
        fields = {"shape": shape, "n_vertices": n, "unit": dd["unit"], "area": dd["area"],
                  "perimeter": round(math.fsum(sides), 6)}
        nouns = {"triangle": "triangle", "right_triangle": "right triangle", "rectangle": "rectangle",
                 "parallelogram": "parallelogram", "trapezoid": "trapezoid"}
        context = {"shape": nouns[shape], "unit": dd["unit"], "figure": labels}
        extra = {"vertices": {labels[i]: list(pts[i]) for i in range(n)}, "mode": dd["mode"]}
        return Facts(domain="scene", kind="geometry", width=size, height=size, entities=entities, fields=fields,
                     texts=texts, context=context, extra=extra)
