"""A complete example family, `example.dots`: coloured dots on a white square (see docs/adding-a-family.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deltaprompts.generators import Generator, Rendered
from deltaprompts.generators.base import choice, png_bytes
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec

COLORS = {"red": "#d62728", "blue": "#1f77b4", "green": "#2ca02c", "orange": "#ff7f0e"}


class Dots(Generator):
    """Dots of a few named colours; every dot is fully visible (no overlap)."""

    name = "example.dots"
    domain = "scene"
    version = "1"
    description = "Non-overlapping coloured dots on white: a minimal example family."
    knobs = (
        Knob("n_dots", "int", 6, "How many dots are drawn.", lo=2, hi=12, difficulty="higher is harder"),
        Knob("size", "int", 160, "Image side in pixels.", lo=96, hi=512, difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        size, r = knobs["size"], knobs["size"] // 14
        dots: list[dict[str, Any]] = []
        while len(dots) < knobs["n_dots"]:  # rejection sampling: every draw comes from rng
            x, y = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
            if all((x - d["x"]) ** 2 + (y - d["y"]) ** 2 > (2 * r + 4) ** 2 for d in dots):
                dots.append({"x": x, "y": y, "color": choice(rng, sorted(COLORS))})
        return {"size": size, "radius": r, "dots": dots}

    def render(self, spec: Spec) -> Rendered:
        d = spec.data
        image = Image.new("RGB", (d["size"], d["size"]), "white")
        draw = ImageDraw.Draw(image)
        entities = []
        for i, dot in enumerate(d["dots"]):
            box = (dot["x"] - d["radius"], dot["y"] - d["radius"], dot["x"] + d["radius"], dot["y"] + d["radius"])
            draw.ellipse(box, fill=COLORS[dot["color"]])
            entities.append(Entity(id=f"dot{i}", attrs={"color": dot["color"], "shape": "dot",
                                                        "visible_pixels": int(np.pi * d["radius"] ** 2)}, box=box))
        facts = Facts(domain="scene", kind="dots", width=d["size"], height=d["size"], entities=entities,
                      context={"noun": "dot"})
        return Rendered(png=png_bytes(image), facts=facts)
