"""Venn diagrams (scene.venn): two or three labelled circles with names or per-region counts inside."""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import product
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
LETTERS = ("A", "B", "C")
# Topics: (noun, plural, three set names); a diagram uses the first two or all three sets.
TOPICS = (
    ("person", "people", ("Likes tea", "Likes coffee", "Likes juice")),
    ("student", "students", ("Plays piano", "Plays guitar", "Sings")),
    ("person", "people", ("Has a dog", "Has a cat", "Has a fish")),
    ("person", "people", ("Speaks French", "Speaks Spanish", "Speaks German")),
    ("student", "students", ("Plays soccer", "Plays tennis", "Swims")),
    ("reader", "readers", ("Reads novels", "Reads comics", "Reads poetry")),
    ("child", "children", ("Likes apples", "Likes pears", "Likes grapes")),
)
NAMES = ("Ana", "Ben", "Cal", "Dev", "Eli", "Fay", "Gus", "Hal", "Ida", "Jon", "Kim", "Leo", "Mia", "Ned", "Ola",
         "Pia", "Raj", "Sam", "Tom", "Uma", "Val", "Wes", "Yui", "Zoe", "Amir", "Bea", "Cora", "Dina", "Emil", "Finn",
         "Gia", "Hugo", "Ivy", "Jade", "Kai", "Lena", "Max", "Nora", "Omar", "Ravi", "Sara", "Theo", "Vera", "Zara")
COLORS = ((214, 39, 40), (31, 90, 220), (44, 160, 44))  # circle A, B, C
INK = (30, 30, 30)
BG = (255, 255, 255)
STROKE = 2.0  # circle outline width, px
PAD = 3.0  # least gap between a text box and a circle outline or another text


def font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_FILE, size=px)


def regions_of(n_sets: int, outside: bool) -> list[str]:
    """Region keys: the letters of the sets a region lies in ('AB'), '' for outside all circles."""
    keys = ["".join(L for L, b in zip(LETTERS, bits) if b) for bits in product((1, 0), repeat=n_sets)]
    keys = sorted((k for k in keys if k), key=lambda k: (len(k), k))
    return keys + ([""] if outside else [])


def circles(n_sets: int, size: int) -> list[tuple[float, float, float]]:
    """(cx, cy, r) of each circle, centred in the image."""
    cx, cy = size / 2, size / 2
    if n_sets == 2:
        r = 0.25 * size
        d = 1.1 * r
        return [(cx - d / 2, cy + 0.02 * size, r), (cx + d / 2, cy + 0.02 * size, r)]
    r = 0.215 * size
    d = 1.1 * r
    h = d * math.sqrt(3) / 2
    cy = size / 2 + 0.02 * size
    return [(cx - d / 2, cy - h / 3, r), (cx + d / 2, cy - h / 3, r), (cx, cy + 2 * h / 3, r)]


def frame(size: int) -> tuple[float, float, float, float]:
    """The universe rectangle drawn around the circles when items outside all sets are shown."""
    m = round(0.015 * size)
    return (m, m, size - 1 - m, size - 1 - m)


def box_in_region(box: tuple[float, ...], key: str, circ: list, fr: tuple[float, ...] | None, pad: float) -> bool:
    """Whether a box lies wholly inside region `key`: inside every circle it names and clear of the others,
    keeping `pad` px (plus half the outline) from every outline; outside ones stay inside the frame."""
    x0, y0, x1, y1 = box
    m = pad + STROKE / 2
    for L, (cx, cy, r) in zip(LETTERS, circ):
        if L in key:
            if any(math.hypot(x - cx, y - cy) > r - m for x in (x0, x1) for y in (y0, y1)):
                return False
        else:
            nx, ny = min(max(cx, x0), x1), min(max(cy, y0), y1)
            if math.hypot(nx - cx, ny - cy) < r + m:
                return False
    if fr is not None and not (x0 >= fr[0] + m and y0 >= fr[1] + m and x1 <= fr[2] - m and y1 <= fr[3] - m):
        return False
    return True


def region_mask(key: str, circ: list, fr: tuple[float, ...] | None, size: int) -> np.ndarray:
    """Pixels (centres) of region `key` (a read-only array, made once per layout)."""
    return _region_mask(key, tuple(tuple(c) for c in circ), None if fr is None else tuple(fr), size)


@lru_cache(maxsize=64)
def _region_mask(key: str, circ: tuple, fr: tuple[float, ...] | None, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    m = np.ones((size, size), bool)
    for L, (cx, cy, r) in zip(LETTERS, circ):
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        m &= inside if L in key else ~inside
    if fr is not None:
        m &= (xx > fr[0]) & (xx < fr[2]) & (yy > fr[1]) & (yy < fr[3])
    m.flags.writeable = False
    return m


@lru_cache(maxsize=16)
def _coverage(c: tuple[float, float, float], size: int,
              ss: int = 3) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """A circle's pixel coverage, supersampled `ss`x`ss`: (the window of the image around it, the share
    of each window pixel inside the circle, the share on its outline). Both shares are 0 outside the
    window, so drawing only there gives the bytes drawing the whole image would."""
    cx, cy, r = c
    m = r + STROKE / 2 + 1
    y0, y1 = max(0, int(cy - m)), min(size, int(cy + m) + 2)
    x0, x1 = max(0, int(cx - m)), min(size, int(cx + m) + 2)
    yy, xx = (np.mgrid[y0 * ss:y1 * ss, x0 * ss:x1 * ss] + 0.5) / ss
    dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    h, w = y1 - y0, x1 - x0
    fill = (dist < r).reshape(h, ss, w, ss).mean((1, 3))[..., None]
    ring = (np.abs(dist - r) < STROKE / 2).reshape(h, ss, w, ss).mean((1, 3))[..., None]
    fill.flags.writeable = ring.flags.writeable = False  # cached: the same for every image of this layout
    return (slice(y0, y1), slice(x0, x1)), fill, ring


def _overlap(a: tuple[float, ...], b: tuple[float, ...], pad: float) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def _tbox(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, f: ImageFont.FreeTypeFont) -> tuple:
    return tuple(float(v) for v in draw.textbbox(xy, text, font=f))


def _text_font(dd: dict[str, Any]) -> ImageFont.FreeTypeFont:
    """The font of the names or counts placed in the regions (counts are drawn larger)."""
    return font(round(dd["font_px"] * 1.3)) if dd["content"] == "counts" else font(dd["font_px"])


def set_label_positions(names: list[str], circ: list, px: int, size: int) -> list[tuple[float, float]]:
    """Top-left text anchors of the set names: A up-left, B up-right (towards the centre line), C below."""
    f = font(px)
    d = ImageDraw.Draw(Image.new("L", (1, 1)))
    out = []
    for i, (name, (cx, cy, r)) in enumerate(zip(names, circ)):
        x0, y0, x1, y1 = d.textbbox((0, 0), name, font=f)
        w, h = x1 - x0, y1 - y0
        if i == 2:
            x, y = cx - w / 2, cy + r + 6
        else:
            top = cy - r - 6 - h
            x = (cx + 0.3 * r - w) if i == 0 else (cx - 0.3 * r)
            x, y = x, top
        out.append((round(x - x0, 1), round(y - y0, 1)))
    return out


@register
class Venn(Generator):
    """Two or three overlapping labelled circles; names placed in the regions, or a count printed per region.

    Facts: entities `set_A`.. (kind set: set_name, letter, items = how many it holds), `region_<key>`
    (kind region: region 'A&B' or 'none', in_A/in_B/in_C, n_sets, count) and, with names, `item<i>`
    (kind item: label, region, in_A.., n_sets). Each name's drawn text box is classified against the
    circle geometry; a box not wholly inside one region is a RenderError.
    """

    name = "scene.venn"
    domain: ClassVar[str] = "scene"
    version = "1"
    description = "Venn diagrams of 2-3 labelled sets with names or per-region counts in the regions."
    knobs = (
        Knob("n_sets", "choice", "any", "Circles drawn: 2, 3, or either.", choices=("any", "2", "3"),
             difficulty="3 is harder"),
        Knob("content", "choice", "names", "Names placed in the regions (counted by the reader), or one printed "
             "count per region.", choices=("names", "counts", "any"), difficulty="names is harder"),
        Knob("n_items", "int", 10, "Most names drawn (names content); each diagram draws 60-100% of it.",
             lo=3, hi=18, difficulty="higher is harder"),
        Knob("outside", "bool", True, "Draw a frame for the universe with some items outside every circle.",
             difficulty="true is harder"),
        Knob("image_size", "int", 480, "Image width and height in pixels.", lo=360, hi=900,
             difficulty="lower is harder"),
        Knob("font_px", "int", 15, "Text height in pixels (names and counts).", lo=10, hi=22,
             difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Draw the sets, the per-region contents and a text position inside each region."""
        kn = knobs  # resolved by Generator.sample
        size, px = int(kn["image_size"]), int(kn["font_px"])
        n_sets = int(choice(rng, ("2", "3")) if kn["n_sets"] == "any" else kn["n_sets"])
        content = choice(rng, ("names", "counts")) if kn["content"] == "any" else kn["content"]
        outside = bool(kn["outside"])
        noun, nouns, sets = choice(rng, TOPICS)
        names = list(sets[:n_sets])
        circ = circles(n_sets, size)
        fr = frame(size) if outside else None
        keys = regions_of(n_sets, outside)
        d = ImageDraw.Draw(Image.new("L", (1, 1)))
        f = font(px)
        taken = [_tbox(d, xy, nm, font(px + 1)) for xy, nm in zip(set_label_positions(names, circ, px + 1, size),
                                                                    names)]
        texts: list[dict[str, Any]] = []
        if content == "counts":
            fc = font(round(px * 1.3))
            for key in keys:
                n = int(rng.integers(0, 10))
                xy = self._place(rng, d, str(n), fc, key, circ, fr, taken, size)
                # no room: a position the render refuses (LayoutError), so the item is drawn again
                xy = xy or [0.0, 0.0]
                texts.append({"text": str(n), "region": key, "xy": xy})
        else:
            n_total = int(rng.integers(max(3, round(0.6 * kn["n_items"])), kn["n_items"] + 1))
            pool = [NAMES[i] for i in rng.permutation(len(NAMES))[:n_total]]
            for nm in pool:
                for _ in range(4):  # a region with no room left: try another
                    key = choice(rng, keys)
                    xy = self._place(rng, d, nm, f, key, circ, fr, taken, size)
                    if xy is not None:
                        texts.append({"text": nm, "region": key, "xy": xy})
                        break
        return {"size": size, "font_px": px, "n_sets": n_sets, "content": content, "outside": outside,
                "noun": noun, "nouns": nouns, "sets": names, "texts": texts}

    @staticmethod
    def _place(rng, d, text, f, key, circ, fr, taken, size) -> list[float] | None:
        """A text anchor whose drawn box lies inside region `key`, clear of the boxes in `taken` (appended)."""
        mask = region_mask(key, circ, fr, size)
        ys, xs = np.nonzero(mask)
        if not len(xs):
            return None
        x0, y0, x1, y1 = d.textbbox((0, 0), text, font=f)
        for _ in range(150):
            j = int(rng.integers(0, len(xs)))
            ax, ay = round(float(xs[j]) - (x1 - x0) / 2 - x0, 1), round(float(ys[j]) - (y1 - y0) / 2 - y0, 1)
            box = _tbox(d, (ax, ay), text, f)
            if box_in_region(box, key, circ, fr, PAD + 1) and not any(_overlap(box, t, PAD + 2) for t in taken):
                taken.append(box)
                return [ax, ay]
        return None

    @staticmethod
    def _draw(spec: Spec) -> tuple[Image.Image, list[tuple[float, float, float]], tuple[float, ...] | None,
                                   list[tuple[float, float]]]:
        """The image (circles supersampled and translucent, outlines, frame, texts, set names) with the
        geometry the Facts read: the circles, the frame (None without one) and the set names' anchors."""
        dd = spec.data
        size, n_sets, px = dd["size"], dd["n_sets"], dd["font_px"]
        circ = circles(n_sets, size)
        fr = frame(size) if dd["outside"] else None
        img = np.full((size, size, 3), BG, float)
        cover = [_coverage(tuple(c), size) for c in circ]
        for (win, fill, _), col in zip(cover, COLORS):
            img[win] = img[win] * (1 - 0.18 * fill) + np.array(col) * 0.18 * fill
        for (win, _, ring), col in zip(cover, COLORS):
            dark = np.array(col) * 0.75
            img[win] = img[win] * (1 - ring) + dark * ring
        im = Image.fromarray(img.round().clip(0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(im)
        if fr is not None:
            draw.rectangle([round(v) for v in fr], outline=(90, 90, 90), width=2)
        f = _text_font(dd)
        for t in dd["texts"]:
            draw.text(tuple(t["xy"]), t["text"], font=f, fill=INK)
        anchors = set_label_positions(dd["sets"], circ, px + 1, size)
        fl = font(px + 1)
        for i, (nm, xy) in enumerate(zip(dd["sets"], anchors)):
            draw.text(xy, nm, font=fl, fill=tuple(int(c * 0.75) for c in COLORS[i]))
        return im, circ, fr, anchors

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without classifying the texts' boxes into regions (its
        LayoutError), the region boxes or Facts; the bare baseline of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    def render(self, spec: Spec) -> Rendered:
        """Draw the diagram (_draw); classify each drawn text box against the circles and build the Facts.

        Raises LayoutError when a text's box is not wholly inside its region."""
        dd = spec.data
        size, n_sets, px = dd["size"], dd["n_sets"], dd["font_px"]
        im, circ, fr, anchors = self._draw(spec)
        draw = ImageDraw.Draw(im)  # measures only: the boxes of the texts drawn
        texts: list[TextSpan] = []
        entities: list[Entity] = []
        fl = font(px + 1)
        totals = {L: 0 for L in LETTERS[:n_sets]}
        counts: dict[str, int] = {}
        items: list[tuple[str, tuple, str]] = []
        f = _text_font(dd)
        for t in dd["texts"]:
            box = _tbox(draw, tuple(t["xy"]), t["text"], f)
            found = [k for k in regions_of(n_sets, dd["outside"]) if box_in_region(box, k, circ, fr, PAD)]
            if found != [t["region"]]:
                raise LayoutError(f"text {t['text']!r} is not wholly inside region {t['region'] or 'none'}")
            key = found[0]
            if dd["content"] == "counts":
                counts[key] = int(t["text"])
                texts.append(TextSpan(text=t["text"], box=box, role=f"cell:region_{key or 'none'}:count"))
            else:
                counts[key] = counts.get(key, 0) + 1
                items.append((t["text"], box, key))
                texts.append(TextSpan(text=t["text"], box=box, role="label"))
        for key in regions_of(n_sets, dd["outside"]):
            for L in key:
                totals[L] += counts.get(key, 0)
        for i, (nm, xy) in enumerate(zip(dd["sets"], anchors)):
            box = _tbox(draw, xy, nm, fl)
            texts.append(TextSpan(text=nm, box=box, role="label"))
            cx, cy, r = circ[i]
            L = LETTERS[i]
            entities.append(Entity(id=f"set_{L}", attrs={"kind": "set", "set_name": nm, "letter": L,
                                                         "items": totals[L]},
                                   box=(max(0.0, cx - r), max(0.0, cy - r), min(size, cx + r), min(size, cy + r))))
        printed: dict[str, dict[str, str]] = {}
        for key in regions_of(n_sets, dd["outside"]):
            ys, xs = np.nonzero(region_mask(key, circ, fr, size))
            rid = f"region_{key or 'none'}"
            attrs: dict[str, Any] = {"kind": "region", "region": "&".join(key) or "none", "n_sets": len(key),
                                     "count": counts.get(key, 0)}
            attrs.update({f"in_{L}": L in key for L in LETTERS[:n_sets]})
            entities.append(Entity(id=rid, attrs=attrs, box=(int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                                                              int(ys.max()) + 1)))
            if dd["content"] == "counts":
                printed[rid] = {"count": str(counts[key])}
        for i, (nm, box, key) in enumerate(items):
            attrs = {"kind": "item", "label": nm, "region": "&".join(key) or "none", "n_sets": len(key)}
            attrs.update({f"in_{L}": L in key for L in LETTERS[:n_sets]})
            entities.append(Entity(id=f"item{i}", attrs=attrs, box=box))
        extra = {"circles": [list(c) for c in circ], "frame": list(fr) if fr else None, "printed": printed,
                 "colors": ["#%02x%02x%02x" % c for c in COLORS[:n_sets]], "content": dd["content"]}
        context = {"noun": dd["noun"], "nouns": dd["nouns"],
                   "set_names": {L: nm for L, nm in zip(LETTERS, dd["sets"])}}
        facts = Facts(domain="scene", kind="venn", width=size, height=size, entities=entities, texts=texts,
                      context=context, extra=extra)
        return Rendered(png=png_bytes(im), facts=facts)
