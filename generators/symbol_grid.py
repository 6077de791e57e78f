"""Symbol grids (scene.symbol_grid): find the odd one out of a grid, or pick the option that continues a row."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.generators.scenes import (PALETTE, PLURALS, REL_WORDS, SHAPES, SIMILAR_COLORS, SIMILAR_SHAPES,
                                            full_box, polygon, visibility)
from deltaprompts.generators.venn import font
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

SS = 3  # supersampling factor of the symbols: drawn at SS x size, box-filtered down
DrawnText = tuple[str, tuple[float, float], ImageFont.FreeTypeFont, str, str]  # text, xy, font, anchor, role
BG = (250, 250, 248)
CELL_LINE = (210, 212, 216)
PROPERTIES = ("shape", "color", "size", "rotation")
ROTATABLE = ("triangle", "pentagon", "star")  # turned 180 degrees they point the other way
# Colours that read clearly on the light background (yellow is kept out: thin on white).
COLORS = ("red", "green", "blue", "purple", "orange", "gray", "brown", "cyan", "pink")
SIZE_FACTORS = {False: (2.2, 0.4), True: (1.6, 0.6)}  # odd-size area factor (larger, smaller); subtle


def _other(rng: np.random.Generator, pool: tuple[str, ...], base: str, similar: dict, subtle: bool) -> str:
    near = [c for c in similar.get(base, ()) if c in pool]
    if subtle and near:
        return choice(rng, near)
    far = [c for c in pool if c != base and c not in near]
    return choice(rng, far or [c for c in pool if c != base])


@register
class SymbolGrid(Generator):
    """A grid of identical symbols but one (odd mode), or a repeating row with its last cell blank and four
    options A-D drawn below it (pattern mode).

    Facts: odd mode, one entity per symbol `sym<r>_<c>` (kind symbol; shape, color, size, rotation, row, col,
    area and visible_pixels measured from the drawn mask; size is "large"/"small" when the measured area is
    1.3x off the median, else "normal"). Pattern mode: `seq<i>` (kind sequence; position) and `opt<L>` (kind
    option; option letter) with shape and color; option letters and the "?" are texts.
    """

    name = "scene.symbol_grid"
    domain: ClassVar[str] = "scene"
    version = "1"
    description = "A grid of symbols with one odd one out, or a row pattern to continue from options A-D."
    knobs = (
        Knob("mode", "choice", "any", "Odd one out in a grid, a row pattern to continue, or either.",
             choices=("any", "odd", "pattern"), difficulty="none"),
        Knob("grid", "int", 6, "Most rows and columns of the odd-one-out grid (each draws 3..grid).", lo=3, hi=9,
             difficulty="higher is harder"),
        Knob("difference", "choice", "any", "What sets the odd one apart.", choices=("any", *PROPERTIES),
             difficulty="size/rotation are harder"),
        Knob("subtle", "bool", False, "A confusable difference: a neighbouring colour or shape, a smaller size step.",
             difficulty="true is harder"),
        Knob("pattern_length", "int", 7, "Cells of the pattern row, the blank one included.", lo=5, hi=9,
             difficulty="lower is harder: fewer repeats"),
        Knob("image_size", "int", 400, "Image width and height in pixels.", lo=240, hi=900,
             difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Draw a grid with one odd symbol, or a periodic sequence with four options."""
        kn = knobs  # resolved by Generator.sample
        mode = choice(rng, ("odd", "pattern")) if kn["mode"] == "any" else kn["mode"]
        size = int(kn["image_size"])
        subtle = bool(kn["subtle"])
        if mode == "odd":
            g = int(kn["grid"])
            rows, cols = int(rng.integers(3, g + 1)), int(rng.integers(3, g + 1))
            prop = choice(rng, PROPERTIES) if kn["difference"] == "any" else kn["difference"]
            shape = choice(rng, ROTATABLE) if prop == "rotation" else choice(rng, SHAPES)
            base = {"shape": shape, "color": choice(rng, COLORS), "scale": 1.0, "rotation": 0}
            odd = dict(base)
            if prop == "shape":
                odd["shape"] = _other(rng, SHAPES, shape, SIMILAR_SHAPES, subtle)
            elif prop == "color":
                odd["color"] = _other(rng, COLORS, base["color"], SIMILAR_COLORS, subtle)
            elif prop == "size":
                odd["scale"] = choice(rng, SIZE_FACTORS[subtle])
            else:
                odd["rotation"] = 180
            at = int(rng.integers(0, rows * cols))
            return {"mode": mode, "size": size, "rows": rows, "cols": cols, "base": base, "odd": odd, "odd_at": at}
        # pattern: a cycle of p distinct (shape, colour) elements, shown for n-1 cells
        n = int(kn["pattern_length"])
        p = int(rng.integers(2, 4)) if n - 1 >= 6 else 2
        vary = choice(rng, ("color", "shape", "both"))
        shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))[:p]]
        colors = [COLORS[i] for i in rng.permutation(len(COLORS))[:p]]
        if vary == "color":
            shapes = [shapes[0]] * p
        elif vary == "shape":
            colors = [colors[0]] * p
        else:
            colors = [colors[i] for i in rng.permutation(p)]
        cycle = [[s, c] for s, c in zip(shapes, colors)]
        shift = int(rng.integers(0, p))
        seq = [cycle[(i + shift) % p] for i in range(n)]
        answer = seq[-1]
        pool = [c for c in cycle if c != answer]  # wrong phase
        pool += [[answer[0], c] for c in COLORS if c != answer[1]][:2] if vary != "shape" else []
        pool += [[s, answer[1]] for s in SHAPES if s != answer[0]][:2] if vary != "color" else []
        pool += [[s, c] for s in SHAPES for c in COLORS]
        options: list[list[str]] = [answer]
        for o in (pool[i] for i in range(len(pool))):
            if o not in options and len(options) < 4 and (o in cycle or rng.random() < 0.5):
                options.append(o)
        options = [options[i] for i in rng.permutation(4)]
        return {"mode": mode, "size": size, "seq": seq[:-1], "options": options}

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without the symbol masks, the size/cover check, text
        measurement or Facts; the bare baseline of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    def _draw(self, spec: Spec) -> tuple[Image.Image, list[dict[str, Any]], list[tuple[float, ...]],
                                         list[np.ndarray], list[DrawnText]]:
        """The image (symbols supersampled, texts drawn at full size) and, for the Facts, the symbols, the cell
        boxes, each symbol's outline and each text drawn (text, anchor point, font, anchor, role)."""
        d = spec.data
        size = d["size"]
        img = Image.new("RGB", (size * SS, size * SS), BG)
        draw = ImageDraw.Draw(img)
        objs, lines = (self._odd_layout(d) if d["mode"] == "odd" else self._pattern_layout(d))
        for x0, y0, x1, y1 in lines:
            draw.rectangle([round(x0 * SS), round(y0 * SS), round(x1 * SS) + SS - 1, round(y1 * SS) + SS - 1],
                           outline=CELL_LINE, width=SS)
        outlines = [polygon(o) for o in objs]
        for o, pts in zip(objs, outlines):
            draw.polygon((pts * SS).ravel().tolist(), fill=PALETTE[o["color"]])
        img = img.reduce(SS)
        tdraw = ImageDraw.Draw(img)
        texts: list[DrawnText] = []
        for o in objs:
            if o["kind"] == "option":
                f = font(max(10, round(size / 26)))
                xy = (o["x"], o["label_y"])
                tdraw.text(xy, o["option"], font=f, fill=(30, 30, 30), anchor="mt")
                texts.append((o["option"], xy, f, "mt", "label"))
        if d["mode"] == "pattern":
            x0, y0, x1, y1 = lines[len(d["seq"])]
            f = font(max(12, round((y1 - y0) * 0.5)))
            xy = ((x0 + x1) / 2, (y0 + y1) / 2)
            tdraw.text(xy, "?", font=f, fill=(90, 90, 90), anchor="mm")
            texts.append(("?", xy, f, "mm", "blank"))
        return img, objs, lines, outlines, texts

    def render(self, spec: Spec) -> Rendered:
        """Draw the symbols (through _draw) and measure each one's mask; see the class docstring for the Facts."""
        img, objs, lines, outlines, placed = self._draw(spec)
        size = spec.data["size"]
        label, areas, _ = visibility(outlines, size, SS)
        counts = np.bincount(label.ravel(), minlength=len(objs) + 1)
        median = float(np.median(areas))
        entities = []
        for i, (o, pts) in enumerate(zip(objs, outlines)):
            if counts[i + 1] != areas[i] or areas[i] < 100:
                raise LayoutError(f"symbol {i} is covered or too small ({counts[i + 1]} of {areas[i]} px)")
            ratio = areas[i] / median
            attrs: dict[str, Any] = {"kind": o["kind"], "shape": o["shape"], "color": o["color"],
                                     "size": "large" if ratio > 1.3 else "small" if ratio < 1 / 1.3 else "normal",
                                     "rotation": o["rotation"], "area": areas[i], "visible_pixels": int(counts[i + 1])}
            attrs.update(o["ids"])
            box = full_box(o, pts)
            entities.append(Entity(id=o["id"], attrs=attrs, box=box))
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        texts = [TextSpan(text=t, box=probe.textbbox(xy, t, font=f, anchor=anchor), role=role)
                 for t, xy, f, anchor, role in placed]
        context = {"noun": "symbol", "nouns": "symbols", "plural": PLURALS, "rel": REL_WORDS}
        extra = {"mode": spec.data["mode"], "palette": {k: "#%02x%02x%02x" % PALETTE[k] for k in COLORS},
                 "cells": [list(b) for b in lines]}
        facts = Facts(domain="scene", kind="symbol_grid", width=size, height=size, entities=entities, texts=texts,
                      context=context, extra=extra)
        return Rendered(png=png_bytes(img), facts=facts)

    @staticmethod
    def _odd_layout(d: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[float, ...]]]:
        size, rows, cols = d["size"], d["rows"], d["cols"]
        m = 0.05 * size
        cell = (size - 2 * m) / max(rows, cols)
        ox, oy = (size - cols * cell) / 2, (size - rows * cell) / 2
        objs, lines = [], []
        for k in range(rows * cols):
            r, c = divmod(k, cols)
            s = d["odd"] if k == d["odd_at"] else d["base"]
            x, y = round(2 * (ox + (c + 0.5) * cell)) / 2, round(2 * (oy + (r + 0.5) * cell)) / 2
            objs.append({"shape": s["shape"], "color": s["color"], "rotation": s["rotation"],
                         "area": 0.2 * cell * cell * s["scale"], "x": x, "y": y, "kind": "symbol",
                         "id": f"sym{r + 1}_{c + 1}", "ids": {"row": r + 1, "col": c + 1}})
            lines.append((ox + c * cell, oy + r * cell, ox + (c + 1) * cell, oy + (r + 1) * cell))
        return objs, []

    @staticmethod
    def _pattern_layout(d: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[float, ...]]]:
        size, seq = d["size"], d["seq"]
        n = len(seq) + 1
        m = 0.04 * size
        cell = (size - 2 * m) / n
        y = round(2 * (0.3 * size)) / 2
        objs, lines = [], []
        for i in range(n):
            x = round(2 * (m + (i + 0.5) * cell)) / 2
            lines.append((x - cell / 2 + 1, y - cell / 2 + 1, x + cell / 2 - 1, y + cell / 2 - 1))
            if i < len(seq):
                shape, color = seq[i]
                objs.append({"shape": shape, "color": color, "rotation": 0, "area": 0.22 * cell * cell, "x": x,
                             "y": y, "kind": "sequence", "id": f"seq{i + 1}", "ids": {"position": i + 1}})
        ocell = min(cell * 1.2, 0.2 * size)
        for j, (shape, color) in enumerate(d["options"]):
            L = "ABCD"[j]
            x = round(2 * (size / 2 + (j - 1.5) * 1.25 * ocell)) / 2
            oy = round(2 * (0.68 * size)) / 2
            objs.append({"shape": shape, "color": color, "rotation": 0, "area": 0.22 * ocell * ocell, "x": x,
                         "y": oy, "kind": "option", "id": f"opt{L}", "ids": {"option": L}, "option": L,
                         "label_y": oy + ocell / 2 + 0.02 * size})
            lines.append((x - ocell / 2, oy - ocell / 2, x + ocell / 2, oy + ocell / 2))
        return objs, lines
