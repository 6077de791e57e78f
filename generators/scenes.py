"""Flat 2-D perception scenes (CLEVR-like) drawn with PIL: free shapes (scene.shapes), shapes on a grid (scene.grid)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw

from deltaprompts.errors import RenderError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec

# Named colours of distinct hue (RGB distance >= 74, yellow/orange the closest), all far from the light backgrounds.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220), "yellow": (242, 200, 15),
    "purple": (142, 68, 173), "orange": (255, 127, 14), "gray": (128, 128, 128), "brown": (139, 90, 43),
    "cyan": (23, 190, 207), "pink": (240, 120, 190),
}
# Pairs a viewer confuses more easily; `distractor_similarity` draws a scene's vocabulary from them.
SIMILAR_COLORS = {"red": ("orange", "pink", "brown"), "orange": ("red", "yellow", "brown"), "yellow": ("orange",),
                  "blue": ("cyan", "purple"), "cyan": ("blue", "green"), "green": ("cyan",), "purple": ("pink", "blue"),
                  "pink": ("purple", "red"), "brown": ("orange", "red", "gray"), "gray": ("brown",)}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "diamond", "pentagon", "cross")
SIMILAR_SHAPES = {"circle": ("hexagon",), "hexagon": ("circle", "pentagon"), "pentagon": ("hexagon",),
                  "square": ("diamond",), "diamond": ("square",), "star": ("cross",), "cross": ("star",),
                  "triangle": ("diamond",)}
# The `vocabulary` knob's "basic" world: four primary colours and three simple shapes, far apart.
BASIC_COLORS, BASIC_SHAPES = ("red", "green", "blue", "yellow"), ("circle", "square", "triangle")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
           "hexagon": "hexagons", "diamond": "diamonds", "pentagon": "pentagons", "cross": "crosses"}
ROTATION = {"circle": 0, "square": 20, "triangle": 180, "star": 180, "hexagon": 180, "diamond": 20,
            "pentagon": 180, "cross": 20}  # max |degrees|: squares/diamonds/crosses must stay recognisable
BACKGROUNDS = ("plain", "gradient", "texture")
_LIGHT = ("#ffffff", "#f7f5f0", "#eceff1", "#eef2f7", "#faf6ea", "#f1f4ee")
GRID_LINE = (200, 204, 210)
REL_WORDS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
OUTLINE_SHADE = 0.6  # outline = fill darkened to this fraction: a stroke of the object's own colour
SMALL, LARGE = (0.8, 1.05), (1.9, 2.5)  # area factors of the nominal small area, per size class
GAP = 1.25  # the largest (smallest) area is at least this ratio from the runner-up, so argmax/argmin are visible


def _unit(shape: str) -> np.ndarray:
    """The shape's outline, counter-clockwise in shoelace sense, scaled to area 1 (y down)."""
    def ring(k: int, r: Any = 1.0, start: float = -90.0) -> np.ndarray:
        a = np.radians(start + 360.0 * np.arange(k) / k)
        return np.stack([np.cos(a), np.sin(a)], 1) * np.asarray(r).reshape(-1, 1)
    a = 0.34
    pts = {"circle": lambda: ring(64), "square": lambda: ring(4, 1.0, -45), "triangle": lambda: ring(3),
           "pentagon": lambda: ring(5), "hexagon": lambda: ring(6, 1.0, 0), "star": lambda: ring(10, [1, 0.45] * 5),
           "diamond": lambda: np.array([[0, -1], [0.62, 0], [0, 1], [-0.62, 0]], float),
           "cross": lambda: np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1],
                                      [-a, a], [-1, a], [-1, -a], [-a, -a]], float)}[shape]()
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    pts = pts if area > 0 else pts[::-1]
    return pts / math.sqrt(abs(area))


UNIT = {s: _unit(s) for s in SHAPES}
SPAN = {s: float(np.max(np.ptp(p, 0))) for s, p in UNIT.items()}  # widest extent at area 1 (unrotated)


def polygon(obj: dict[str, Any]) -> np.ndarray:
    """The object's outline in image pixels: scaled to its area, rotated, bounding-box centred on (x, y)."""
    t = math.radians(obj["rotation"])
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    pts = UNIT[obj["shape"]] @ rot.T * math.sqrt(obj["area"])
    return pts - (pts.min(0) + pts.max(0)) / 2 + np.array([obj["x"], obj["y"]])


def _inset(pts: np.ndarray, w: float) -> np.ndarray:
    """The polygon moved inward by w (mitred joins), for the fill inside an outline stroke."""
    e = np.roll(pts, -1, 0) - pts
    n = np.stack([-e[:, 1], e[:, 0]], 1) / np.linalg.norm(e, axis=1, keepdims=True)  # inward (left) normals
    prev = np.roll(n, 1, 0)
    return pts + w * (prev + n) / (1.0 + np.sum(prev * n, 1, keepdims=True))


def full_box(obj: dict[str, Any], pts: np.ndarray) -> tuple[float, float, float, float]:
    """The bounding box of the object's outline `pts`, grown to half pixels and exactly centred on (x, y), so
    objects of one grid row or column share their box centre coordinate bit for bit (relate compares centres)."""
    h, k = (math.ceil(v - 1e-9) / 2 for v in pts.max(0) - pts.min(0))
    return (obj["x"] - h, obj["y"] - k, obj["x"] + h, obj["y"] + k)


def mask(pts: np.ndarray, ss: int) -> tuple[int, int, np.ndarray]:
    """(x0, y0, boolean mask) of the pixels the shape covers more than half of, in the very samples (ss x ss
    per pixel) that the colour image is box-averaged from: a labelled pixel is mostly this shape's colour."""
    x0, y0 = (math.floor(v) for v in pts.min(0))
    x1, y1 = (math.ceil(v) + 1 for v in pts.max(0))
    img = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    ImageDraw.Draw(img).polygon(((pts - (x0, y0)) * ss).ravel().tolist(), fill=255)
    # Block means: k of ss*ss samples give 255*k/(ss*ss); more than 126 is "at least half" for ss = 2 and 3.
    return x0, y0, np.asarray(img.reduce(ss)) > 126


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % rgb


def _rgb(hx: str) -> tuple[int, int, int]:
    return tuple(int(hx[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _vocab(rng: np.random.Generator, pool: tuple[str, ...], similar: dict, n: int, sim: float) -> list[str]:
    """n names from pool; each later pick is, with probability sim, a confusable neighbour of an earlier one."""
    out = [choice(rng, pool)]
    while len(out) < min(n, len(pool)):
        near = sorted({s for o in out for s in similar.get(o, ()) if s not in out and s in pool})
        rest = [p for p in pool if p not in out]
        out.append(choice(rng, near) if near and rng.random() < sim else choice(rng, rest))
    return out


def _background(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    kind = choice(rng, BACKGROUNDS) if kind == "any" else kind
    bg: dict[str, Any] = {"kind": kind, "color": choice(rng, _LIGHT)}
    if kind == "gradient":
        bg.update(color2=choice(rng, ("#dde3ea", "#e8e2d4", "#d8e6f3", "#e6eedd", "#f0e0e6")),
                  direction=choice(rng, ("vertical", "horizontal", "diagonal")))
    elif kind == "texture":  # regular patterns: random noise would cost PNG size and encoding time
        bg.update(style=choice(rng, ("paper", "dots", "ruled")), step=int(rng.integers(14, 26)))
    return bg


def _draw_background(bg: dict[str, Any], size: int, ss: int) -> Image.Image:
    """The background at the supersampled size; gradients and textures are made at final resolution
    (they have no edges to smooth) and enlarged by pixel repetition."""
    c1 = np.array(_rgb(bg["color"]), float)
    if bg["kind"] == "plain":
        return Image.new("RGB", (size * ss, size * ss), _rgb(bg["color"]))
    if bg["kind"] == "gradient":
        t = np.linspace(0.0, 1.0, 2 * size - 1 if bg["direction"] == "diagonal" else size)[:, None]
        ramp = (c1 * (1 - t) + np.array(_rgb(bg["color2"]), float) * t).round().astype(np.uint8)
        arr = {"vertical": lambda: ramp[:, None], "horizontal": lambda: ramp[None, :],
               "diagonal": lambda: ramp[np.add.outer(np.arange(size), np.arange(size))]}[bg["direction"]]()
    else:
        arr = np.empty((size, size, 3), np.uint8)
        arr[:] = c1.astype(np.uint8)
        ink = (c1 - 22).astype(np.uint8)
        at = np.arange(bg["step"] * size / 640, size, bg["step"] * size / 320).astype(int)
        if bg["style"] == "dots":
            at = np.concatenate([at, np.minimum(at + 1, size - 1)])
            arr[np.ix_(at, at)] = ink
        else:
            arr[at, :] = ink
            if bg["style"] == "paper":
                arr[:, at] = ink
    return Image.fromarray(np.ascontiguousarray(arr), "RGB").resize((size * ss, size * ss), Image.Resampling.NEAREST)


def _objects(rng: np.random.Generator, kn: dict[str, Any], n: int, base_area: float, gap: bool = True,
             max_extent: float = math.inf, min_area: float = 0.0) -> list[dict[str, Any]]:
    """Attributes of n objects (positions left to the layout); areas vary, with a clear largest and smallest
    if `gap`, none below min_area nor wider or taller than max_extent pixels."""
    basic = kn.get("vocabulary", "full") == "basic"
    colors = _vocab(rng, BASIC_COLORS if basic else tuple(PALETTE), SIMILAR_COLORS, kn["n_colors"],
                    kn["distractor_similarity"])
    shapes = _vocab(rng, BASIC_SHAPES if basic else SHAPES, SIMILAR_SHAPES, kn["n_shapes"], kn["distractor_similarity"])
    out = []
    for _ in range(n):
        shape, size = choice(rng, shapes), ("large" if rng.random() < 0.45 else "small")
        lo, hi = LARGE if size == "large" else SMALL
        rot = float(rng.uniform(-ROTATION[shape], ROTATION[shape])) if kn.get("rotate", False) else 0.0
        outline = {"none": False, "all": True}.get(kn["outline"], bool(rng.random() < 0.5))
        out.append({"shape": shape, "color": choice(rng, colors), "size": size, "area": base_area * rng.uniform(lo, hi),
                    "rotation": round(rot, 1), "outline": outline, "x": 0.0, "y": 0.0})
    order = sorted(range(n), key=lambda i: out[i]["area"])
    if gap and n >= 2:  # grow the largest, shrink the smallest
        out[order[-1]]["area"] = max(out[order[-1]]["area"], out[order[-2]]["area"] * GAP * 1.05)
        out[order[0]]["area"] = min(out[order[0]]["area"], out[order[1]]["area"] / (GAP * 1.05))
    for o in out:  # cap: the area at which the shape just fits max_extent
        o["area"] = round(min(max(o["area"], min_area), (max_extent / SPAN[o["shape"]]) ** 2), 1)
    return out


def areas_separated(areas: list[int]) -> bool:
    """Whether the largest and smallest pixel areas stand GAP apart from their runners-up."""
    a = sorted(areas)
    return len(a) < 2 or (a[-1] >= GAP * a[-2] and a[0] * GAP <= a[1])


def visibility(outlines: list[np.ndarray], size: int, ss: int) -> tuple[np.ndarray, list[int], list[tuple[int, ...]]]:
    """Label map of the object outlines (0 = background, i+1 = object i, later objects on top), each
    object's full pixel area, and each object's crop window (x0, y0, x1, y1) in the map."""
    label = np.zeros((size, size), np.int16)
    areas, windows = [], []
    for i, pts in enumerate(outlines):
        x0, y0, m = mask(pts, ss)
        label[y0:y0 + m.shape[0], x0:x0 + m.shape[1]][m] = i + 1
        areas.append(int(m.sum()))
        windows.append((x0, y0, x0 + m.shape[1], y0 + m.shape[0]))
    return label, areas, windows


class _Scene(Generator):
    """Shared rendering and Facts of the scene families; subclasses lay the objects out.

    Facts: one entity `obj{i}` per object, in draw (z) order, with attrs shape, color, size (small/large),
    x, y (box centre, px), z, area (pixels the whole shape covers), visible_pixels (pixels it shows after
    occlusion) and visible_fraction. A pixel belongs to an object when the object covers at least half of
    the supersamples the pixel is averaged from (the label map). `box` is the full geometric box, centred
    on (x, y); extra["visible_boxes"] holds each object's box of visible pixels. relate compares box
    centres, which layouts keep apart (scene.shapes) or exactly aligned (scene.grid).
    """

    domain: ClassVar[str] = "scene"
    kind: ClassVar[str] = ""
    COMMON: ClassVar[tuple[Knob, ...]] = (
        Knob("image_size", "int", 320, "Image width and height in pixels; smaller images make details harder.",
             lo=128, hi=1024, difficulty="lower is harder"),
        Knob("n_colors", "int", 6, "Colours the scene draws from (of 10 named ones); more, finer colour naming.",
             lo=2, hi=len(PALETTE), difficulty="higher is harder"),
        Knob("n_shapes", "int", 5, "Shapes the scene draws from (of 8); more shapes, finer shape naming.",
             lo=2, hi=len(SHAPES), difficulty="higher is harder"),
        Knob("vocabulary", "choice", "full", "Colours and shapes drawn from: all 10 colours and 8 shapes, or the basic "
             "world of red, green, blue, yellow and circle, square, triangle (n_colors/n_shapes capped to it).",
             choices=("full", "basic"), difficulty="basic is easier"),
        Knob("distractor_similarity", "float", 0.2, "Chance that each further colour/shape of the vocabulary is a "
             "confusable neighbour of one already chosen (red/orange, blue/cyan, circle/hexagon, ...).",
             lo=0.0, hi=1.0, difficulty="higher is harder"),
        Knob("background", "choice", "any", "Background: plain light colour, gradient, light texture, or any of them.",
             choices=("any", *BACKGROUNDS), difficulty="texture/gradient slightly harder"),
        Knob("min_visible_px", "int", 150, "Legibility floor: visible pixels every object keeps, at 320 px "
             "(scaled with image area); on a grid, the smallest object area.", lo=20, hi=500,
             difficulty="lower is harder"),
        Knob("outline", "choice", "some", "Dark stroke of the object's own colour: on none, all, or some objects.",
             choices=("none", "all", "some"), difficulty="none is harder: outlines separate touching objects"),
    )

    def layout(self, rng: np.random.Generator, kn: dict[str, Any], size: int, ss: int) -> dict[str, Any]:
        """Return {objects, ...extra layout keys}; objects carry shape, color, size, area, rotation, outline, x, y."""
        raise NotImplementedError

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Sample the background and a legible object layout; returns the JSON render parameters."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        size = int(kn["image_size"])
        ss = 3 if size <= 640 else 2
        data = {"size": size, "ss": ss, "background": _background(rng, kn["background"]),
                "outline_width": round(max(1.0, size / 200), 2)}
        kn["floor"] = max(10, round(kn["min_visible_px"] * (size / 320) ** 2))
        return data | self.layout(rng, kn, size, ss)

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without the label map, visibility counts, legibility check
        or Facts; the bare baseline of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    @staticmethod
    def _draw(spec: Spec) -> tuple[Image.Image, list[np.ndarray]]:
        """The image (supersampled, box-filtered) and each object's outline in image pixels, for the Facts."""
        d = spec.data
        size, ss, objs = d["size"], d["ss"], d["objects"]
        # Objects are drawn at ss x size and box-filtered back down: coverage anti-aliasing, no Lanczos ringing.
        img = _draw_background(d["background"], size, ss)
        draw = ImageDraw.Draw(img)
        if d.get("grid_lines"):  # one-pixel cell borders on whole pixels
            g = d["grid"]
            lo, hi = round(g["lo"]) * ss, (round(g["hi"]) + 1) * ss - 1
            for v in np.round(g["lines"]).astype(int) * ss:
                draw.rectangle([v, lo, v + ss - 1, hi], fill=GRID_LINE)
                draw.rectangle([lo, v, hi, v + ss - 1], fill=GRID_LINE)
        outlines = [polygon(o) for o in objs]
        for o, pts in zip(objs, outlines):
            fill = PALETTE[o["color"]]
            if o["outline"]:
                draw.polygon((pts * ss).ravel().tolist(), fill=tuple(int(c * OUTLINE_SHADE) for c in fill))
                pts = _inset(pts, d["outline_width"])
            draw.polygon((pts * ss).ravel().tolist(), fill=fill)
        return img.reduce(ss), outlines

    def render(self, spec: Spec) -> Rendered:
        """Draw the Spec (supersampled, box-filtered) and compute Facts from a label map in the same geometry.

        Raises RenderError when an object of the Spec is less visible than its legibility floor.
        """
        img, outlines = self._draw(spec)
        d = spec.data
        size, ss, objs = d["size"], d["ss"], d["objects"]
        label, areas, windows = visibility(outlines, size, ss)
        counts = np.bincount(label.ravel(), minlength=len(objs) + 1)
        floor, frac = d["min_visible_px"], d["min_visible_fraction"]
        entities, vis_boxes = [], {}
        for i, o in enumerate(objs):
            vis = int(counts[i + 1])
            if vis < floor or vis < frac * areas[i]:
                raise RenderError(f"object {i} ({o['color']} {o['shape']}) shows {vis} of {areas[i]} px, below the "
                                  f"legibility floor ({floor} px, {frac:.0%}); re-sample this Spec")
            x0, y0, x1, y1 = windows[i]
            ys, xs = np.nonzero(label[y0:y1, x0:x1] == i + 1)
            vis_boxes[f"obj{i}"] = [x0 + int(xs.min()), y0 + int(ys.min()),
                                    x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
            attrs = {"shape": o["shape"], "color": o["color"], "size": o["size"], "x": o["x"], "y": o["y"], "z": i,
                     "area": areas[i], "visible_pixels": vis, "visible_fraction": round(vis / areas[i], 3),
                     "outlined": bool(o["outline"])}
            if "cell" in o:  # on a grid: the object's cell, rows from the top and columns from the left, 1-based
                attrs.update(row=o["cell"] // d["grid"]["cols"] + 1, col=o["cell"] % d["grid"]["cols"] + 1)
            entities.append(Entity(id=f"obj{i}", attrs=attrs, box=full_box(o, outlines[i])))
        extra = {"background": d["background"], "min_visible_px": floor, "min_visible_fraction": frac,
                 "visible_boxes": vis_boxes, "palette": {k: _hex(v) for k, v in PALETTE.items()},
                 "box_kind": "box = full geometric box (half-pixel grid); visible_boxes = box of visible pixels"}
        if "grid" in d:
            extra["grid"] = {k: d["grid"][k] for k in ("rows", "cols", "cell", "lo")}
        context = {"noun": "object", "nouns": "objects", "plural": PLURALS, "rel": REL_WORDS}
        facts = Facts(domain="scene", kind=self.kind, width=size, height=size, entities=entities,
                      context=context, extra=extra)
        return Rendered(png=png_bytes(img), facts=facts)


@register
class Shapes(_Scene):
    """Objects placed freely; later ones may overlap earlier ones, each keeps a legible visible part."""

    name = "scene.shapes"
    kind = "shapes"
    version = "1"
    description = "Flat 2-D shapes of named colours and two sizes, freely placed with controlled occlusion."
    knobs = (
        Knob("n_objects", "int", 7, "Most objects drawn (each scene draws n-2..n; ones that cannot be placed "
             "legibly are dropped).", lo=2, hi=20, difficulty="higher is harder"),
        Knob("occlusion", "float", 0.3, "Largest fraction of an object that later objects may cover (0 = no overlap).",
             lo=0.0, hi=0.8, difficulty="higher is harder"),
        Knob("rotate", "bool", True, "Rotate shapes (squares, diamonds, crosses only slightly).",
             difficulty="true is harder"),
        *_Scene.COMMON,
    )

    def layout(self, rng: np.random.Generator, kn: dict[str, Any], size: int, ss: int) -> dict[str, Any]:
        """Place objects in z order by rejection sampling; each must keep centres `sep` px apart on both axes
        (so left/right/above/below are never borderline) and leave every earlier object legible."""
        floor = kn["floor"]
        frac = round(1.0 - kn["occlusion"], 3)
        sep, margin = max(3.0, 0.025 * size), max(2.0, 0.02 * size)
        n_max = int(kn["n_objects"])
        placed: list[dict[str, Any]] = []
        for _ in range(6):  # whole-scene retries, only when the size gaps were lost to dropped objects
            objs = _objects(rng, kn, int(rng.integers(max(2, n_max - 2), n_max + 1)), 0.011 * size * size)
            placed = self._place(rng, objs, size, ss, floor, frac, sep, margin)
            if len(placed) >= 2 and areas_separated(visibility([polygon(p) for p in placed], size, ss)[1]):
                break
        return {"objects": placed, "min_visible_px": floor, "min_visible_fraction": frac}

    @staticmethod
    def _place(rng: np.random.Generator, objs: list[dict[str, Any]], size: int, ss: int, floor: int, frac: float,
               sep: float, margin: float) -> list[dict[str, Any]]:
        label = np.zeros((size, size), np.int16)
        placed: list[dict[str, Any]] = []
        vis: list[int] = []
        areas: list[int] = []
        for o in objs:
            pts0 = polygon(o)
            half = (pts0.max(0) - pts0.min(0)) / 2
            radius = float(np.max(np.linalg.norm(pts0 - pts0.mean(0), axis=1)))
            for _ in range(80):
                x = round(2 * rng.uniform(half[0] + margin, size - half[0] - margin)) / 2
                y = round(2 * rng.uniform(half[1] + margin, size - half[1] - margin)) / 2
                if any(abs(x - p["x"]) < sep or abs(y - p["y"]) < sep for p in placed):
                    continue
                # Same-coloured objects must not touch unless the upper one is outlined: they would merge.
                if not o["outline"] and any(p["color"] == o["color"] and math.hypot(x - p["x"], y - p["y"]) <
                                            radius + p["_r"] + 3 for p in placed):
                    continue
                cand = dict(o, x=x, y=y)
                x0, y0, m = mask(polygon(cand), ss)
                win = label[y0:y0 + m.shape[0], x0:x0 + m.shape[1]]
                covered = np.bincount(win[m], minlength=len(placed) + 1)[1:]
                left = np.asarray(vis, int) - covered
                if area := int(m.sum()):
                    if np.all((left >= floor) & (left >= frac * np.asarray(areas))) and area >= floor:
                        win[m] = len(placed) + 1
                        vis, areas = list(left) + [area], areas + [area]
                        placed.append(dict(cand, _r=radius))
                        break
        return [{k: v for k, v in p.items() if k != "_r"} for p in placed]


@register
class Grid(_Scene):
    """Objects centred in the cells of a regular grid: no overlap, exact rows and columns."""

    name = "scene.grid"
    kind = "grid"
    version = "1"
    description = "Flat 2-D shapes centred in the cells of a regular grid; for counting and spatial relations."
    knobs = (
        Knob("grid", "int", 4, "Cells per row and per column.", lo=2, hi=8, difficulty="higher is harder"),
        Knob("fill", "float", 0.6, "Most cells occupied (fraction); each scene fills 70-100% of that.",
             lo=0.2, hi=1.0, difficulty="higher is harder"),
        Knob("grid_lines", "bool", True, "Draw faint cell borders.", difficulty="false is harder"),
        *_Scene.COMMON,
    )

    def layout(self, rng: np.random.Generator, kn: dict[str, Any], size: int, ss: int) -> dict[str, Any]:
        """Pick occupied cells and centre one object in each (centres on a half-pixel grid, so objects of a
        row or column share exactly the same centre coordinate)."""
        g = int(kn["grid"])
        margin = round(0.04 * size)
        cell = (size - 2 * margin) / g
        hi = max(2, round(kn["fill"] * g * g))
        n = int(rng.integers(max(2, round(0.7 * hi)), hi + 1))
        cells = sorted(int(c) for c in rng.permutation(g * g)[:n])
        # Objects are never covered here, so the floor bounds their area (10% to spare for pixel rounding),
        # as far as the widest shape still fits its cell. Sizes are not spread for argmax/argmin: dense grids
        # leave no room between the floor and the cell, so size-ranking questions are for scene.shapes.
        floor = min(kn["floor"], round(0.8 * (0.84 * cell / max(SPAN.values())) ** 2))
        objs = _objects(rng, kn | {"rotate": False}, n, 0.11 * cell * cell, False, 0.84 * cell, 1.1 * floor)
        for o, c in zip(objs, cells):
            o["cell"] = c
            o["x"] = round(2 * (margin + (c % g + 0.5) * cell)) / 2
            o["y"] = round(2 * (margin + (c // g + 0.5) * cell)) / 2
        lines = [round(margin + k * cell, 2) for k in range(g + 1)]
        return {"objects": objs, "min_visible_px": floor, "min_visible_fraction": 1.0,
                "grid_lines": bool(kn["grid_lines"]),
                "grid": {"rows": g, "cols": g, "cell": round(cell, 2), "lines": lines, "lo": lines[0], "hi": lines[-1]}}
