"""Moving shapes over time (scene.frames): 3-8 frames of a walled arena in which some shapes move (straight,
diagonally or turning once), stop when they reach a wall, and the others stay still; one may appear or vanish."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.generators.pairs import apart, new_object, paint, shared_knobs, vocabulary
from deltaprompts.generators.scenes import (PALETTE, PLURALS, _background, _draw_background, _hex, full_box, mask,
                                            polygon)
from deltaprompts.generators.venn import font
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

WALL = (70, 74, 84)
LABEL = (40, 40, 40)
STEPS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
TURNS = {"left": ("up", "down"), "right": ("up", "down"), "up": ("left", "right"), "down": ("left", "right")}
#: a step counts as along one axis when its other component is at most this fraction of it
AXIS_SLACK = 0.2


def _half(obj: dict[str, Any]) -> tuple[float, float]:
    """Half width and height of the object's full box (scenes.full_box), independent of its position."""
    b = full_box(dict(obj, x=0.0, y=0.0), polygon(dict(obj, x=0.0, y=0.0)))
    return b[2], b[3]


def heading_of(track: list[list[float] | None]) -> str:
    """How an object moves over its positions: none, left/right/up/down (every step along that one
    direction), diagonal (a step along neither axis) or turning (steps along two directions)."""
    pts = [p for p in track if p is not None]
    dirs = set()
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        dx, dy = x1 - x0, y1 - y0
        if dx == dy == 0:
            continue
        if abs(dy) <= AXIS_SLACK * abs(dx):
            dirs.add("right" if dx > 0 else "left")
        elif abs(dx) <= AXIS_SLACK * abs(dy):
            dirs.add("down" if dy > 0 else "up")
        else:
            return "diagonal"
    return "none" if not dirs else dirs.pop() if len(dirs) == 1 else "turning"


@register
class Frames(Generator):
    """A sequence of frames (images) of one arena; the objects keep their look, movers change position.

    Facts: per frame and object present, an entity `f<frame>_<object id>` (`image` = frame index) with attrs
    kind (in_frame), object, frame (1-based), name ("red circle"), obj_color, obj_shape, x, y, at_wall (its box
    touches the arena's inner wall edge), area, visible_pixels. Per object a track entity `<object id>` (kind
    track, box and image of its first frame) summing up its trajectory: name, obj_color, obj_shape, obj_size,
    moves, direction (heading_of), dx, dy (net, px), distance (path length, px), displacement (|net|),
    wall_frame (first frame its box touches a wall, 0 = never), first_frame, last_frame and presence (always,
    appears, disappears). Fields n_frames, n_moving; texts: each frame's "Frame k" label. Colour and shape
    attributes are named obj_* so the single-image scene.* families do not count over all frames.
    """

    name = "scene.frames"
    domain: ClassVar[str] = "scene"
    version = "1"
    description = ("Frame sequences: 3-8 frames of a walled arena where some shapes move (straight, diagonally or "
                   "turning) and stop at a wall while others stay still; questions about motion and event order.")
    knobs = (
        Knob("n_frames", "int", 8, "Most frames (each sequence draws 3..n).", lo=3, hi=8,
             difficulty="higher is harder"),
        Knob("n_objects", "int", 5, "Most objects (each sequence draws n-2..n, at least 3).", lo=3, hi=8,
             difficulty="higher is harder"),
        Knob("max_moving", "int", 3, "Most moving objects (each sequence draws 1..n; at least one object stays "
             "still).", lo=1, hi=5, difficulty="higher is harder"),
        Knob("turns", "float", 0.25, "Share of movers that turn once (the others go straight; some diagonally).",
             lo=0.0, hi=1.0, difficulty="higher is harder"),
        Knob("appear", "float", 0.3, "Chance that one still object appears after the first frame or vanishes before "
             "the last.", lo=0.0, hi=1.0, difficulty="none"),
        Knob("image_size", "int", 256, "Width and height of each frame in pixels.", lo=160, hi=640,
             difficulty="lower is harder"),
        *shared_knobs("n_colors", "n_shapes", "vocabulary", "distractor_similarity", "background", "outline"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """The arena and each object's look and position per frame (None where absent).

        Raises LayoutError when fewer than three objects (one of them moving) fit without touching."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        size = int(kn["image_size"])
        n_frames = int(rng.integers(3, int(kn["n_frames"]) + 1))
        header, m, wall = round(0.1 * size), max(3, round(0.02 * size)), max(2, round(size / 128))
        arena = [m + wall, header + wall, size - m - wall, size - m - wall]  # inner edges of the walls
        colors, shapes = vocabulary(rng, kn)
        combos = [(c, s) for c in colors for s in shapes]
        n = int(rng.integers(max(3, int(kn["n_objects"]) - 2), int(kn["n_objects"]) + 1))
        movers = int(rng.integers(1, max(1, min(int(kn["max_moving"]), n - 1)) + 1))
        odd = int(rng.integers(movers, n)) if rng.random() < kn["appear"] else -1  # a still object
        gap, wall_gap = max(3.0, 0.015 * size), max(6.0, 0.04 * size)
        base_area = 0.009 * size * size
        placed: list[dict[str, Any]] = []
        lead = choice(rng, tuple(STEPS))  # most movers set off this way, so several may share a heading
        for k, ci in enumerate(rng.permutation(len(combos))[:n]):
            c, s = combos[int(ci)]
            o = new_object(rng, kn, f"o{len(placed)}", c, s, base_area)
            for _ in range(60):
                track = self._track(rng, kn, o, k < movers, k == odd, n_frames, arena, wall_gap, lead)
                if track is not None and self._clear(o, track, placed, gap):
                    placed.append(dict(o, track=track))
                    break
        if sum(heading_of(p["track"]) != "none" for p in placed) < 1 or len(placed) < 3:
            raise LayoutError(f"only {len(placed)} objects fit the {size} px arena; scene.frames needs 3, one moving")
        return {"size": size, "ss": 3 if size <= 640 else 2, "background": _background(rng, kn["background"]),
                "outline_width": round(max(1.0, size / 200), 2), "n_frames": n_frames, "arena": arena,
                "wall": wall, "header": header, "objects": placed}

    @staticmethod
    def _track(rng: np.random.Generator, kn: dict[str, Any], o: dict[str, Any], moving: bool, odd: bool,
               n_frames: int, arena: list[int], gap: float, lead: str) -> list[list[float] | None] | None:
        """Positions per frame: a start at least `gap` px from every wall, then steps of 6-14% of the arena
        width until a wall stops the object (its box then touches the wall); None if the last position before
        the touch is nearer the wall than `gap` (the first touch would be hard to see)."""
        hx, hy = _half(o)
        lo_x, hi_x, lo_y, hi_y = arena[0] + hx, arena[2] - hx, arena[1] + hy, arena[3] - hy
        if lo_x + gap >= hi_x - gap or lo_y + gap >= hi_y - gap:
            return None
        p = [round(2 * rng.uniform(lo_x + gap, hi_x - gap)) / 2, round(2 * rng.uniform(lo_y + gap, hi_y - gap)) / 2]
        track: list[list[float] | None] = [list(p)]
        if moving:
            width = arena[2] - arena[0]
            first = lead if rng.random() < 0.85 else choice(rng, tuple(STEPS))
            r = rng.random()
            kind = "turning" if r < kn["turns"] else "diagonal" if r < kn["turns"] + 0.12 else "straight"
            speed = float(rng.uniform(0.06, 0.14)) * width
            v = np.array(STEPS[first], float) * speed
            if kind == "diagonal":
                side = np.array(STEPS[choice(rng, TURNS[first])], float)
                v = v + side * speed * float(rng.uniform(0.5, 1.0))
            turn_at = int(rng.integers(1, max(2, n_frames - 1))) if kind == "turning" else -1
            stopped = False
            for k in range(1, n_frames):
                if k == turn_at:
                    v = np.array(STEPS[choice(rng, TURNS[first])], float) * speed
                if not stopped:
                    q = [round(2 * (p[0] + v[0])) / 2, round(2 * (p[1] + v[1])) / 2]
                    hit = q[0] <= lo_x or q[0] >= hi_x or q[1] <= lo_y or q[1] >= hi_y
                    if hit:  # stop at the wall along the way: scale the step back to the first contact
                        t = min(((lo_x - p[0]) / v[0] if v[0] < 0 else (hi_x - p[0]) / v[0] if v[0] > 0 else 1.0),
                                ((lo_y - p[1]) / v[1] if v[1] < 0 else (hi_y - p[1]) / v[1] if v[1] > 0 else 1.0))
                        q = [min(max(round(2 * (p[0] + t * v[0])) / 2, lo_x), hi_x),
                             min(max(round(2 * (p[1] + t * v[1])) / 2, lo_y), hi_y)]
                        near = min(p[0] - lo_x, hi_x - p[0], p[1] - lo_y, hi_y - p[1])
                        if near < gap:
                            return None
                        stopped = True
                    p = q
                track.append(list(p))
        else:
            track = [list(p) for _ in range(n_frames)]
        for x, y in track:  # a position off the wall keeps clear of it: touching is never a matter of a pixel
            if 0 < min(x - lo_x, hi_x - x, y - lo_y, hi_y - y) < gap:
                return None
        if odd:  # a still object that appears after the first frame or vanishes before the last
            cut = int(rng.integers(1, n_frames))
            track = [None] * cut + track[cut:] if rng.random() < 0.5 else track[:cut] + [None] * (n_frames - cut)
        return track

    @staticmethod
    def _clear(o: dict[str, Any], track: list, placed: list[dict[str, Any]], gap: float) -> bool:
        """Whether the object stays `gap` px clear of every placed object in every frame both show."""
        for k, p in enumerate(track):
            if p is None:
                continue
            b = full_box(dict(o, x=p[0], y=p[1]), polygon(dict(o, x=p[0], y=p[1])))
            for q in placed:
                at = q["track"][k]
                if at is not None and not apart(b, full_box(dict(q, x=at[0], y=at[1]),
                                                            polygon(dict(q, x=at[0], y=at[1]))), gap):
                    return False
        return True

    @staticmethod
    def _label(d: dict[str, Any], k: int) -> tuple[str, tuple[float, float], ImageFont.FreeTypeFont]:
        """Frame k's label: its text, its left-middle anchor (above the arena's top wall) and its font."""
        return (f"Frame {k + 1}", (d["arena"][0] - d["wall"], (d["arena"][1] - d["wall"]) / 2),
                font(max(9, round(0.065 * d["size"]))))

    def _draw(self, spec: Spec) -> list[tuple[Image.Image, list[dict[str, Any]], list[np.ndarray]]]:
        """Every frame (background, walls, the objects present, supersampled and box-filtered, then its
        label), each with its objects placed at that frame's positions and their outlines, for the Facts."""
        d = spec.data
        size, ss, arena, w = d["size"], d["ss"], d["arena"], d["wall"]
        walls = [v * ss for v in (arena[0] - w, arena[1] - w, arena[2] + w, arena[3] + w)]
        out = []
        for k in range(d["n_frames"]):
            img = _draw_background(d["background"], size, ss)
            draw = ImageDraw.Draw(img)
            draw.rectangle([walls[0], walls[1], walls[2] - 1, walls[3] - 1], outline=WALL, width=w * ss)
            objs = [dict(o, x=o["track"][k][0], y=o["track"][k][1]) for o in d["objects"] if o["track"][k] is not None]
            outlines = paint(draw, objs, ss, d["outline_width"])
            img = img.reduce(ss)
            label, at, f = self._label(d, k)
            ImageDraw.Draw(img).text(at, label, font=f, fill=LABEL, anchor="lm")
            out.append((img, objs, outlines))
        return out

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The frames alone, as render draws them, without label boxes, pixel areas, wall contacts or Facts;
        the bare baseline of benchmarks/render.py."""
        return [img for img, _, _ in self._draw(spec)]

    def render(self, spec: Spec) -> Rendered:
        """Draw every frame (_draw) and the Facts: per frame its label and objects, per object its track."""
        d = spec.data
        size, ss, n_frames, arena, w = d["size"], d["ss"], d["n_frames"], d["arena"], d["wall"]
        pngs, entities, texts = [], [], []
        for k, (img, objs, outlines) in enumerate(self._draw(spec)):
            label, at, f = self._label(d, k)
            tb = f.getbbox(label, anchor="lm")
            texts.append(TextSpan(text=label, box=(at[0] + tb[0], at[1] + tb[1], at[0] + tb[2], at[1] + tb[3]),
                                  role="frame_label", image=k))
            pngs.append(png_bytes(img))
            for o, pts in zip(objs, outlines):
                box = full_box(o, pts)
                area = int(mask(pts, ss)[2].sum())
                touch = min(box[0] - arena[0], box[1] - arena[1], arena[2] - box[2], arena[3] - box[3]) <= 0
                entities.append(Entity(id=f"f{k + 1}_{o['id']}", box=box, image=k, attrs={
                    "kind": "in_frame", "object": o["id"], "frame": k + 1, "name": f"{o['color']} {o['shape']}",
                    "obj_color": o["color"], "obj_shape": o["shape"], "x": o["x"], "y": o["y"], "at_wall": touch,
                    "area": area, "visible_pixels": area}))
        tracks = [self._summary(o, [e for e in entities if e.attrs["object"] == o["id"]], n_frames)
                  for o in d["objects"]]
        extra = {"background": d["background"], "arena": arena, "wall_px": w,
                 "palette": {k: _hex(v) for k, v in PALETTE.items()},
                 "box_kind": "box = full geometric box (half-pixel grid); objects never overlap in a frame"}
        context = {"noun": "object", "nouns": "objects", "plural": PLURALS, "n_frames": n_frames}
        fields = {"n_frames": n_frames, "n_moving": sum(bool(t.attrs["moves"]) for t in tracks)}
        facts = Facts(domain="scene", kind="frames", width=size, height=size, image_sizes=[(size, size)] * n_frames,
                      entities=entities + tracks, fields=fields, texts=texts, context=context, extra=extra)
        return Rendered(png=pngs[0], facts=facts, more_png=tuple(pngs[1:]))

    @staticmethod
    def _summary(o: dict[str, Any], seen: list[Entity], n_frames: int) -> Entity:
        """The track entity of one object, from its per-frame entities (its drawn positions)."""
        pts = [(e.attrs["x"], e.attrs["y"]) for e in seen]
        dx, dy = pts[-1][0] - pts[0][0], pts[-1][1] - pts[0][1]
        dist = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pts, pts[1:]))
        walls = [e.attrs["frame"] for e in seen if e.attrs["at_wall"]]
        first, last = seen[0].attrs["frame"], seen[-1].attrs["frame"]
        presence = "appears" if first > 1 else "disappears" if last < n_frames else "always"
        attrs = {"kind": "track", "object": o["id"], "name": f"{o['color']} {o['shape']}", "obj_color": o["color"],
                 "obj_shape": o["shape"], "obj_size": o["size"], "moves": dist > 0,
                 "direction": heading_of(o["track"]), "dx": dx, "dy": dy, "distance": round(float(dist), 1),
                 "displacement": round(math.hypot(dx, dy), 1), "wall_frame": walls[0] if walls else 0,
                 "first_frame": first, "last_frame": last, "presence": presence}
        return Entity(id=o["id"], attrs=attrs, box=seen[0].box, image=seen[0].image)
