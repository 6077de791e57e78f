"""Spot the difference (scene.pair): two renders of one flat 2-D shape scene, the second changed by 1-3 edits."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.generators.scenes import (BASIC_COLORS, BASIC_SHAPES, LARGE, OUTLINE_SHADE, PALETTE, PLURALS,
                                            ROTATION, SHAPES, SIMILAR_COLORS, SIMILAR_SHAPES, SMALL, _background,
                                            _draw_background, _hex, _inset, _Scene, _vocab, full_box, mask, polygon)
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec

EDITS = ("removed", "added", "recolored", "moved", "resized")
INVERSE = {"removed": "added", "added": "removed"}  # the edits of a pair read backwards
#: the knobs of the single-image scenes that a pair or a frame sequence takes as they are
SHARED_KNOBS = {k.name: k for k in _Scene.COMMON}
Box = tuple[float, float, float, float]


def shared_knobs(*names: str) -> tuple[Knob, ...]:
    """The scene knobs named, as scene.shapes has them."""
    return tuple(SHARED_KNOBS[n] for n in names)


def vocabulary(rng: np.random.Generator, kn: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The colours and shapes one scene draws from (the `vocabulary`, `n_colors`, `n_shapes` and
    `distractor_similarity` knobs, as in scene.shapes)."""
    basic = kn["vocabulary"] == "basic"
    colors = _vocab(rng, BASIC_COLORS if basic else tuple(PALETTE), SIMILAR_COLORS, kn["n_colors"],
                    kn["distractor_similarity"])
    shapes = _vocab(rng, BASIC_SHAPES if basic else SHAPES, SIMILAR_SHAPES, kn["n_shapes"], kn["distractor_similarity"])
    return colors, shapes


def new_object(rng: np.random.Generator, kn: dict[str, Any], oid: str, color: str, shape: str,
               base_area: float) -> dict[str, Any]:
    """An object's look (size class, area, rotation, outline); its position is left at (0, 0)."""
    size = "large" if rng.random() < 0.45 else "small"
    lo, hi = LARGE if size == "large" else SMALL
    rot = float(rng.uniform(-ROTATION[shape], ROTATION[shape])) if kn.get("rotate", False) else 0.0
    outline = {"none": False, "all": True}.get(kn["outline"], bool(rng.random() < 0.5))
    return {"id": oid, "shape": shape, "color": color, "size": size, "area": round(base_area * rng.uniform(lo, hi), 1),
            "rotation": round(rot, 1), "outline": outline, "x": 0.0, "y": 0.0}


def box_of(obj: dict[str, Any]) -> Box:
    """The object's full geometric box (scenes.full_box) at its position."""
    return full_box(obj, polygon(obj))


def apart(a: Box, b: Box, gap: float) -> bool:
    """Whether two boxes are at least `gap` px apart on one axis."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def place(rng: np.random.Generator, obj: dict[str, Any], lo: tuple[float, float], hi: tuple[float, float],
          others: list[Box], gap: float, tries: int = 80) -> dict[str, Any] | None:
    """`obj` moved to a random half-pixel position whose box lies inside [lo, hi] and `gap` px from every
    box of `others`; None when no try fits."""
    pts = polygon(obj)
    half = (pts.max(0) - pts.min(0)) / 2 + 0.5
    if np.any(2 * half > np.subtract(hi, lo)):
        return None
    for _ in range(tries):
        x = round(2 * rng.uniform(lo[0] + half[0], hi[0] - half[0])) / 2
        y = round(2 * rng.uniform(lo[1] + half[1], hi[1] - half[1])) / 2
        cand = dict(obj, x=x, y=y)
        b = box_of(cand)
        if all(apart(b, o, gap) for o in others):
            return cand
    return None


def paint(draw: ImageDraw.ImageDraw, objs: list[dict[str, Any]], ss: int, outline_width: float) -> list[np.ndarray]:
    """Draw the objects (supersampled by `ss`) as scene.shapes does; returns their outlines in image pixels."""
    outlines = []
    for o in objs:
        pts = polygon(o)
        outlines.append(pts)
        fill = PALETTE[o["color"]]
        if o["outline"]:
            draw.polygon((pts * ss).ravel().tolist(), fill=tuple(int(c * OUTLINE_SHADE) for c in fill))
            pts = _inset(pts, outline_width)
        draw.polygon((pts * ss).ravel().tolist(), fill=fill)
    return outlines


def name_of(o: dict[str, Any]) -> str:
    return f"{o['color']} {o['shape']}"


@register
class Pair(Generator):
    """Two images of one scene of shapes; the second differs by 1-3 edits, each on its own object: an object
    removed, one added, one recoloured, one moved (clear of where it was) or one resized (small <-> large).

    No two objects' boxes come within `gap` px of each other in either image (a moved object's new box
    neither), so every difference is a whole object and the two images differ only inside the boxes of the
    changed objects. Every (colour, shape) name is unique within an image. A pair that recolours an object
    removes and adds none (the recoloured one could be read as one removed and one added).

    Facts: one entity per object per image, `img<1|2>_<object id>` (`image` 0 or 1), with attrs kind
    (object), object (the id, shared by both images), image_no (1 or 2), obj_color, obj_shape, obj_size
    (small/large), name ("red circle"), described ("large red circle"), change (none, removed, added,
    recolored, moved, resized: what the edit did to this object), x, y, area, visible_pixels. The colour and
    shape attributes are named obj_* so that the single-image scene.* question families, which count
    `color`/`shape` over the whole picture, do not apply to a pair. Field n_differences; extra["edits"].
    """

    name = "scene.pair"
    domain: ClassVar[str] = "scene"
    version = "1"
    description = ("Spot the difference: two renders of a flat 2-D shape scene, the second changed by 1-3 edits "
                   "(an object removed, added, recoloured, moved or resized).")
    knobs = (
        Knob("n_objects", "int", 6, "Most objects in the first image (each pair draws n-2..n, at least 3).",
             lo=3, hi=9, difficulty="higher is harder"),
        Knob("max_edits", "int", 3, "Most differences between the two images; each pair draws 1..max.",
             lo=1, hi=3, difficulty="higher is harder"),
        Knob("rotate", "bool", True, "Rotate shapes (squares, diamonds, crosses only slightly).",
             difficulty="true is harder"),
        *shared_knobs("image_size", "n_colors", "n_shapes", "vocabulary", "distractor_similarity", "background",
                      "outline"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """The first image's objects, the edits and the second image's objects.

        Raises LayoutError when the first image cannot hold three objects or no edit fits."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        size = int(kn["image_size"])
        colors, shapes = vocabulary(rng, kn)
        data: dict[str, Any] = {"size": size, "ss": 3 if size <= 640 else 2,
                                "background": _background(rng, kn["background"]),
                                "outline_width": round(max(1.0, size / 200), 2)}
        base_area, gap, m = 0.011 * size * size, max(4.0, 0.03 * size), max(2.0, 0.02 * size)
        lo, hi = (m, m), (size - m, size - m)
        combos = [(c, s) for c in colors for s in shapes]
        n_max = int(kn["n_objects"])
        first: list[dict[str, Any]] = []
        for k in rng.permutation(len(combos))[: int(rng.integers(max(3, n_max - 2), n_max + 1))]:
            c, s = combos[int(k)]
            o = place(rng, new_object(rng, kn, f"o{len(first)}", c, s, base_area), lo, hi,
                      [box_of(p) for p in first], gap)
            if o is not None:
                first.append(o)
        if len(first) < 3:
            raise LayoutError(f"only {len(first)} objects fit a {size} px image; scene.pair needs 3")
        second = [dict(o) for o in first]
        edits: list[dict[str, Any]] = []
        # a pair with more edits gets its differences counted less often (it has more other questions to ask):
        # 1..max edits weighted 1, 1.4, 1.8, so that the answers of the count come out near even
        w = 1.0 + 0.4 * np.arange(int(kn["max_edits"]))
        want = 1 + int(rng.choice(len(w), p=w / w.sum()))
        for _ in range(12 * want):
            if len(edits) == want:
                break
            kind = choice(rng, EDITS)
            edit = self._edit(rng, kn, kind, first, second, edits, colors, combos, base_area, lo, hi, gap)
            if edit is not None:
                edits.append(edit)
        if len(edits) < want:
            raise LayoutError(f"only {len(edits)} of {want} edits fit the scene")
        if rng.random() < 0.5:  # shown the other way round: a removal becomes an addition, so both are as common
            first, second = second, first
            edits = [dict(e, kind=INVERSE.get(e["kind"], e["kind"]), **({"before": e["after"], "after": e["before"]}
                                                                         if "before" in e else {})) for e in edits]
        return data | {"first": first, "second": second, "edits": edits}

    @staticmethod
    def _edit(rng: np.random.Generator, kn: dict[str, Any], kind: str, first: list[dict[str, Any]],
              second: list[dict[str, Any]], edits: list[dict[str, Any]], colors: list[str], combos: list[tuple],
              base_area: float, lo: tuple, hi: tuple, gap: float) -> dict[str, Any] | None:
        """Apply one edit of `kind` to `second` (in place) on an object no edit touched yet; the edit, or None."""
        touched = {e["object"] for e in edits}
        kinds = {e["kind"] for e in edits}
        if (kind == "recolored" and kinds & {"removed", "added"}) or (kind in ("removed", "added") and
                                                                      "recolored" in kinds):
            return None  # a recoloured object could be read as one removed and one added: never both in a pair
        free = [i for i, o in enumerate(second) if o["id"] not in touched]
        names2 = {name_of(o) for o in second}
        if kind == "added":
            unused = [cs for cs in combos if f"{cs[0]} {cs[1]}" not in names2 | {name_of(o) for o in first}]
            if not unused:
                return None
            c, s = choice(rng, unused)
            oid = f"o{len(first) + sum(e['kind'] == 'added' for e in edits)}"
            o = place(rng, new_object(rng, kn, oid, c, s, base_area), lo, hi,
                      [box_of(p) for p in first + second], gap)
            if o is None:
                return None
            second.append(o)
            return {"kind": "added", "object": oid}
        if not free or (kind == "removed" and len(second) <= 2):
            return None
        i = free[int(rng.integers(0, len(free)))]
        o = second[i]
        others = [box_of(p) for p in first + second if p["id"] != o["id"]]
        if kind == "removed":
            del second[i]
            return {"kind": "removed", "object": o["id"]}
        if kind == "recolored":
            taken = names2 | {name_of(p) for p in first}
            pool = [c for c in colors if f"{c} {o['shape']}" not in taken]
            if not pool:
                return None
            second[i] = dict(o, color=choice(rng, pool))
            return {"kind": "recolored", "object": o["id"], "before": o["color"], "after": second[i]["color"]}
        if kind == "moved":
            old = box_of(o)
            reach = max(old[2] - old[0], old[3] - old[1])
            for _ in range(6):
                new = place(rng, o, lo, hi, [*others, old], gap)
                if new is not None and math.hypot(new["x"] - o["x"], new["y"] - o["y"]) >= 1.2 * reach:
                    second[i] = new
                    return {"kind": "moved", "object": o["id"], "before": [o["x"], o["y"]],
                            "after": [new["x"], new["y"]]}
            return None
        # resized: small <-> large around the same centre, clear of every other object
        to = "small" if o["size"] == "large" else "large"
        a, b = SMALL if to == "small" else LARGE
        new = dict(o, size=to, area=round(base_area * rng.uniform(a, b), 1))
        nb = box_of(new)
        if nb[0] < lo[0] or nb[1] < lo[1] or nb[2] > hi[0] or nb[3] > hi[1] or \
                not all(apart(nb, p, gap) for p in others):
            return None
        second[i] = new
        return {"kind": "resized", "object": o["id"], "before": o["size"], "after": to}

    @staticmethod
    def _draw(spec: Spec) -> list[tuple[Image.Image, list[np.ndarray]]]:
        """Both images (supersampled, box-filtered, as scene.shapes), each with its objects' outlines in
        image pixels, for the Facts."""
        d = spec.data
        out = []
        for objs in (d["first"], d["second"]):
            img = _draw_background(d["background"], d["size"], d["ss"])
            outlines = paint(ImageDraw.Draw(img), objs, d["ss"], d["outline_width"])
            out.append((img.reduce(d["ss"]), outlines))
        return out

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The two images alone, as render draws them, without the objects' pixel areas or Facts; the bare
        baseline of benchmarks/render.py."""
        return [img for img, _ in self._draw(spec)]

    def render(self, spec: Spec) -> Rendered:
        """Draw both images (_draw) and their Facts (each object's box and covered pixels)."""
        d = spec.data
        size, ss = d["size"], d["ss"]
        change = {e["object"]: e["kind"] for e in d["edits"]}
        pngs, entities = [], []
        for img_i, (objs, (img, outlines)) in enumerate(zip((d["first"], d["second"]), self._draw(spec))):
            pngs.append(png_bytes(img))
            for o, pts in zip(objs, outlines):
                area = int(mask(pts, ss)[2].sum())
                attrs = {"kind": "object", "object": o["id"], "image_no": img_i + 1, "obj_color": o["color"],
                         "obj_shape": o["shape"], "obj_size": o["size"], "name": name_of(o),
                         "described": f"{o['size']} {name_of(o)}", "change": change.get(o["id"], "none"),
                         "x": o["x"], "y": o["y"], "area": area, "visible_pixels": area}
                entities.append(Entity(id=f"img{img_i + 1}_{o['id']}", attrs=attrs, box=full_box(o, pts),
                                       image=img_i))
        extra = {"background": d["background"], "edits": d["edits"],
                 "palette": {k: _hex(v) for k, v in PALETTE.items()},
                 "box_kind": "box = full geometric box (half-pixel grid); objects never overlap"}
        context = {"noun": "object", "nouns": "objects", "plural": PLURALS}
        facts = Facts(domain="scene", kind="pair", width=size, height=size, image_sizes=[(size, size), (size, size)],
                      entities=entities, fields={"n_differences": len(d["edits"])}, context=context, extra=extra)
        return Rendered(png=pngs[0], facts=facts, more_png=tuple(pngs[1:]))

