"""Dials drawn with PIL: analog clocks (scene.clock) and needle gauges with ticks, labels and zones (scene.gauge)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deltaprompts.errors import LayoutError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

_FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SS = 3  # supersampling factor: drawn at SS x size, box-filtered down
_BACKGROUNDS = ("#ffffff", "#f4f1ea", "#e9edf2", "#eef3ea", "#f6eef0")
ROMAN = ("XII", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")
#: clock faces: face, rim, ticks and numerals, hour/minute hands, second hand
CLOCK_FACES = {
    "classic": ("#ffffff", "#2b2b2b", "#1a1a1a", "#111111", "#d62728"),
    "cream": ("#fbf3dc", "#8a5a2b", "#3a2a1a", "#2a1d10", "#c0392b"),
    "modern": ("#eceff1", "#90a4ae", "#263238", "#1f3a5f", "#ff6f00"),
    "dark": ("#1f2a3a", "#0d131c", "#f2f2f2", "#ffffff", "#ff5252"),
}
#: gauge faces: face, rim, ticks and labels, needle
GAUGE_FACES = {
    "light": ("#ffffff", "#37474f", "#1a1a1a", "#111111"),
    "cream": ("#faf3e0", "#6d4c2f", "#2a1d10", "#1f3a5f"),
    "dark": ("#1c232e", "#0a0e14", "#f0f0f0", "#ff8f00"),
}
ZONE_COLORS = {"green": "#2e9e44", "yellow": "#f2c40f", "red": "#d32f2f"}
#: gauge scales: unit, lo, hi, major step, minor step
SCALES = (("km/h", 0, 160, 20, 5), ("km/h", 0, 240, 40, 10), ("km/h", 0, 200, 20, 10), ("°C", -20, 50, 10, 2),
          ("°C", 0, 120, 20, 5), ("psi", 0, 60, 10, 2), ("psi", 0, 100, 10, 5), ("%", 0, 100, 20, 5),
          ("%", 0, 100, 10, 2), ("bar", 0, 10, 2, 0.5), ("V", 0, 16, 2, 0.5), ("rpm x1000", 0, 8, 1, 0.25))
SWEEP = {"round": 270.0, "arc": 180.0}  # degrees the scale spans, symmetric about 12 o'clock


def font(size_px: float, serif: bool = False) -> ImageFont.FreeTypeFont:
    return _font_file("DejaVuSerif.ttf" if serif else "DejaVuSans.ttf", max(1, round(size_px)))


@lru_cache(maxsize=64)
def _font_file(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT / name), size=size)


def _rgb(hx: str) -> tuple[int, int, int]:
    return tuple(int(hx[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def polar(cx: float, cy: float, r: float, deg: float) -> tuple[float, float]:
    """The point at radius r and clock angle `deg` (clockwise from 12 o'clock) around (cx, cy)."""
    t = math.radians(deg)
    return cx + r * math.sin(t), cy - r * math.cos(t)


def hand(cx: float, cy: float, deg: float, length: float, tail: float, w0: float, w1: float) -> np.ndarray:
    """A tapered hand or needle: width w0 at the pivot, w1 near its pointed tip, `tail` behind the pivot."""
    t = math.radians(deg)
    d, n = np.array([math.sin(t), -math.cos(t)]), np.array([math.cos(t), math.sin(t)])
    c = np.array([cx, cy])
    tip = length - w1
    return np.array([c - d * tail + n * w0 / 2, c + d * tip + n * w1 / 2, c + d * length, c + d * tip - n * w1 / 2,
                     c - d * tail - n * w0 / 2])


def bar(cx: float, cy: float, deg: float, r0: float, r1: float, w: float) -> np.ndarray:
    """A radial tick from radius r0 to r1, w wide."""
    t = math.radians(deg)
    d, n = np.array([math.sin(t), -math.cos(t)]), np.array([math.cos(t), math.sin(t)])
    c = np.array([cx, cy])
    return np.array([c + d * r0 + n * w / 2, c + d * r1 + n * w / 2, c + d * r1 - n * w / 2, c + d * r0 - n * w / 2])


def coverage(pts: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask of the pixels the polygon covers at least half of (in SS x SS samples).

    Only the polygon's window of whole pixels (one pixel of margin) is reduced: the rest is empty."""
    m = np.zeros((size, size), bool)
    x0, y0 = (max(0, int(np.floor(v)) - 1) for v in pts.min(axis=0))
    x1, y1 = (min(size, int(np.ceil(v)) + 1) for v in pts.max(axis=0))
    if x1 <= x0 or y1 <= y0:
        return m
    img = Image.new("L", (size * SS, size * SS), 0)
    ImageDraw.Draw(img).polygon((pts * SS).ravel().tolist(), fill=255)
    m[y0:y1, x0:x1] = np.asarray(img.reduce(SS, box=(x0 * SS, y0 * SS, x1 * SS, y1 * SS))) > 126
    return m


@lru_cache(maxsize=64)  # a face depends on the image size and style only: runs draw few distinct ones
def face_region(cx: float, cy: float, r: float, size: int, chord: bool = False) -> tuple[tuple[int, ...], int]:
    """The pixel box (x0, y0, x1, y1) and pixel count of a dial face (a disc, or the disc cut by the gauge's
    chord), measured on a mask of the pixels it covers at least half of."""
    img = Image.new("L", (size * SS, size * SS), 0)
    box = [(cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS]
    (ImageDraw.Draw(img).chord(box, 145, 35, fill=255) if chord else ImageDraw.Draw(img).ellipse(box, fill=255))
    m = np.asarray(img.reduce(SS)) > 126
    ys, xs = np.nonzero(m)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), int(m.sum())


def text_box(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fnt: ImageFont.FreeTypeFont) -> list[float]:
    """The ink box of `text` centred at xy (image pixels) drawn with `fnt` (a font at SS scale)."""
    x0, y0, x1, y1 = draw.textbbox((xy[0] * SS, xy[1] * SS), text, font=fnt, anchor="mm")
    return [round(x0 / SS, 2), round(y0 / SS, 2), round(x1 / SS, 2), round(y1 / SS, 2)]


def _overlap(a: list[float], b: list[float], pad: float = 0.0) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def angle_gap(a: float, b: float) -> float:
    """The smaller angle between two directions, in degrees."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def _poly(draw: ImageDraw.ImageDraw, pts: np.ndarray, fill: str) -> None:
    draw.polygon((pts * SS).ravel().tolist(), fill=fill)


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: str) -> None:
    draw.ellipse([(cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS], fill=fill)


def _pick(rng: np.random.Generator, value: str, options: tuple[str, ...]) -> str:
    return choice(rng, options) if value == "any" else value


IMAGE_SIZE = Knob("image_size", "int", 320, "Image width and height in pixels; smaller dials have finer detail.",
                  lo=160, hi=1024, difficulty="lower is harder")


# ---------------------------------------------------------------------------------------------- clock


def clock_text(hour: int, minute: int) -> str:
    """'h:mm' on a 12-hour dial (hour 1-12)."""
    return f"{hour}:{minute:02d}"


@register
class Clock(Generator):
    """An analog clock face with hour and minute hands (and optionally a second hand and an AM/PM badge).

    The hour hand moves continuously (30 degrees an hour plus half a degree a minute); the minute hand sits
    on its minute. Times whose hour hand sits within `hour_margin` minutes of an hour mark (2:58 read as 3:58)
    and hands closer than `min_hand_gap` degrees are not drawn. Facts: one entity `clock` (hour, minute,
    time 'h:mm', minutes_to_hour; with a badge also period and after_noon), extra["hands"] with each hand's
    angle, tip and visible pixels measured on the render; numerals and the badge are texts of the clock.
    """

    name = "scene.clock"
    domain = "scene"
    version = "1"
    description = "Analog clock faces (numerals arabic/roman/none, minute ticks, second hand, AM/PM badge)."
    knobs = (
        IMAGE_SIZE,
        Knob("numerals", "choice", "any", "Hour numerals: arabic, roman, only 12/3/6/9, none (ticks only), or any.",
             choices=("any", "arabic", "roman", "quarters", "none"), difficulty="none/quarters/roman are harder"),
        Knob("precision", "choice", "5", "Minutes shown are multiples of 5, or any minute (minute ticks then drawn).",
             choices=("5", "1"), difficulty="1 is harder"),
        Knob("minute_ticks", "choice", "any", "Draw the 60 minute ticks (always with precision 1).",
             choices=("any", "yes", "no"), difficulty="no is harder"),
        Knob("second_hand", "choice", "any", "Draw a thin second hand (a distractor).", choices=("any", "yes", "no"),
             difficulty="yes is harder"),
        Knob("ampm", "choice", "any", "Draw an AM/PM badge under the clock.", choices=("any", "yes", "no"),
             difficulty="none"),
        Knob("face", "choice", "any", "Face colours.", choices=("any", *CLOCK_FACES),
             difficulty="dark slightly harder"),
        Knob("hour_margin", "int", 5, "Minutes near the full hour that are never drawn (the hour hand then sits almost "
             "on a numeral and 2:58 reads as 3:58).", lo=2, hi=10, difficulty="lower is harder"),
        Knob("min_hand_gap", "int", 12, "Smallest angle in degrees between any two hands.", lo=6, hi=30,
             difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        step, margin, gap = int(kn["precision"]), int(kn["hour_margin"]), float(kn["min_hand_gap"])
        ticks = step == 1 or _pick(rng, kn["minute_ticks"], ("yes", "no")) == "yes"
        seconds = _pick(rng, kn["second_hand"], ("yes", "no")) == "yes"
        ampm = _pick(rng, kn["ampm"], ("yes", "no")) == "yes"
        while True:  # rejection sampling of a time whose hands read unambiguously
            h, m = int(rng.integers(1, 13)), step * int(rng.integers(0, 60 // step))
            s = int(rng.integers(0, 60))
            if 0 < m < margin or m > 60 - margin:
                continue
            angles = [30.0 * (h % 12) + 0.5 * m, 6.0 * m] + ([6.0 * s] if seconds else [])
            if all(angle_gap(a, b) >= gap for i, a in enumerate(angles) for b in angles[i + 1:]):
                break
        return {"size": int(kn["image_size"]), "background": choice(rng, _BACKGROUNDS),
                "face": _pick(rng, kn["face"], tuple(CLOCK_FACES)),
                "numerals": _pick(rng, kn["numerals"], ("arabic", "roman", "quarters", "none")),
                "minute_ticks": ticks, "hour": h, "minute": m, "second": s if seconds else None,
                "period": choice(rng, ("AM", "PM")) if ampm else None}

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without the hands' visibility check, the face and text
        measurement or Facts; the bare baseline of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    @staticmethod
    def _draw(spec: Spec) -> tuple[Image.Image, dict[str, Any]]:
        """The image (drawn at SS x size, box-filtered down) and the geometry the Facts need: centre, radius,
        hand polygons and colours, cap radius, and each text drawn (text, centre, font, role)."""
        d = spec.data
        size = d["size"]
        face, rim, ink, hands_c, sec_c = CLOCK_FACES[d["face"]]
        badge = d["period"] is not None
        r = 0.40 * size if badge else 0.45 * size
        cx, cy = size / 2, 0.44 * size if badge else size / 2
        img = Image.new("RGB", (size * SS, size * SS), _rgb(d["background"]))
        draw = ImageDraw.Draw(img)
        _disc(draw, cx, cy, r, rim)
        _disc(draw, cx, cy, 0.95 * r, face)
        for k in range(60):
            if k % 5 == 0:
                wide = d["numerals"] in ("none", "quarters")
                inner, width = (0.76, 0.05) if wide else (0.82, 0.032)
                _poly(draw, bar(cx, cy, 6 * k, inner * r, 0.93 * r, width * r), ink)
            elif d["minute_ticks"]:
                _poly(draw, bar(cx, cy, 6 * k, 0.88 * r, 0.93 * r, 0.014 * r), ink)
        texts: list[tuple[str, tuple[float, float], ImageFont.FreeTypeFont, str]] = []
        if d["numerals"] != "none":
            roman = d["numerals"] == "roman"
            fnt = font((0.13 if roman else 0.17) * r * SS, serif=roman)
            for k in range(12):
                if d["numerals"] == "quarters" and k % 3:
                    continue
                label = ROMAN[k] if roman else str(k or 12)
                at = polar(cx, cy, (0.66 if roman else 0.68) * r, 30 * k)
                draw.text((at[0] * SS, at[1] * SS), label, font=fnt, fill=ink, anchor="mm")
                texts.append((label, at, fnt, "numeral:clock"))
        if badge:
            at = (cx, cy + r + 0.09 * size)
            fnt = font(0.075 * size * SS)
            box = text_box(draw, at, d["period"], fnt)
            pad = 0.02 * size
            draw.rounded_rectangle([(box[0] - pad) * SS, (box[1] - pad) * SS, (box[2] + pad) * SS, (box[3] + pad) * SS],
                                   radius=pad * SS, fill=face, outline=rim, width=max(1, round(0.006 * size * SS)))
            draw.text((at[0] * SS, at[1] * SS), d["period"], font=fnt, fill=ink, anchor="mm")
            texts.append((d["period"], at, fnt, "period:clock"))
        h, m, s = d["hour"], d["minute"], d["second"]
        angles = {"hour": 30.0 * (h % 12) + 0.5 * m, "minute": 6.0 * m, "second": None if s is None else 6.0 * s}
        shapes = {"hour": (hand(cx, cy, angles["hour"], 0.52 * r, 0.10 * r, 0.075 * r, 0.05 * r), hands_c),
                  "minute": (hand(cx, cy, angles["minute"], 0.82 * r, 0.12 * r, 0.05 * r, 0.032 * r), hands_c)}
        if s is not None:
            shapes["second"] = (hand(cx, cy, angles["second"], 0.88 * r, 0.18 * r, 0.018 * r, 0.012 * r), sec_c)
        for pts, col in shapes.values():
            _poly(draw, pts, col)
        cap = 0.045 * r
        _disc(draw, cx, cy, cap, sec_c if s is not None else hands_c)
        return img.reduce(SS), {"r": r, "cx": cx, "cy": cy, "shapes": shapes, "angles": angles, "cap": cap,
                                "texts": texts}

    def render(self, spec: Spec) -> Rendered:
        """Draw the Spec (through _draw) and compute Facts from its geometry; LayoutError when the hour or
        minute hand is hidden (see _hands)."""
        img, g = self._draw(spec)
        d = spec.data
        size, r, cx, cy = d["size"], g["r"], g["cx"], g["cy"]
        face, _, ink, hands_c, sec_c = CLOCK_FACES[d["face"]]
        h, m = d["hour"], d["minute"]
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        texts = [TextSpan(text=t, box=text_box(probe, at, t, fnt), role=role) for t, at, fnt, role in g["texts"]]
        hands = self._hands(g["shapes"], size, cx, cy, g["cap"], g["angles"])
        box, area = face_region(cx, cy, r, size)
        attrs: dict[str, Any] = {"hour": h, "minute": m, "time": clock_text(h, m), "minutes_to_hour": (60 - m) % 60,
                                 "numerals": d["numerals"], "minute_ticks": d["minute_ticks"], "visible_pixels": area}
        if d["period"] is not None:
            attrs.update(period=d["period"], after_noon=d["period"] == "PM")
        facts = Facts(domain="scene", kind="clock", width=size, height=size,
                      entities=[Entity(id="clock", attrs=attrs, box=box)], texts=texts,
                      context={"noun": "clock", "nouns": "clocks"},
                      extra={"hands": hands, "centre": [cx, cy], "radius": r, "face": d["face"],
                             "colors": {"face": face, "hands": hands_c, "second": sec_c, "ticks": ink}})
        return Rendered(png=png_bytes(img), facts=facts)

    @staticmethod
    def _hands(shapes: dict[str, tuple[np.ndarray, str]], size: int, cx: float, cy: float, cap: float,
               angles: dict[str, float | None]) -> dict[str, Any]:
        """Each hand's angle, tip, length and the pixels it shows outside the cap and the hands drawn over it;
        raises LayoutError when the hour or minute hand shows less than 70% of itself."""
        yy, xx = np.mgrid[0:size, 0:size]
        cap_px = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= cap ** 2
        covered = cap_px.copy()
        out: dict[str, Any] = {}
        for name in reversed(list(shapes)):  # top first
            pts, col = shapes[name]
            m = coverage(pts, size)
            vis = m & ~covered
            covered |= m
            total = int((m & ~cap_px).sum())
            if name != "second" and int(vis.sum()) < 0.7 * total:
                raise LayoutError(f"the {name} hand shows {int(vis.sum())} of {total} px")
            ys, xs = np.nonzero(vis)
            out[name] = {"angle": angles[name], "tip": [round(float(pts[2][0]), 2), round(float(pts[2][1]), 2)],
                         "length": round(float(np.hypot(*(pts[2] - (cx, cy)))), 2), "color": col,
                         "visible_pixels": int(vis.sum()),
                         "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]}
        return out


# ---------------------------------------------------------------------------------------------- gauge


def fmt_value(v: float) -> str:
    """A scale value as printed: no trailing zeros (0.25, 7.5, 120, -20)."""
    return f"{v:.2f}".rstrip("0").rstrip(".") if v % 1 else str(int(v))


def gauge_geometry(d: dict[str, Any]) -> dict[str, Any]:
    """Centre, radius, tick angles and label boxes of a gauge Spec (pure: the sampler checks legibility
    with it, the renderer draws from it)."""
    size, style = d["size"], d["style"]
    if style == "round":
        r = 0.45 * size
        cx, cy = size / 2, size / 2
    else:  # a dial cut by a chord 35 degrees below the pivot
        r = 0.46 * size
        cx, cy = size / 2, (size - 1.574 * r) / 2 + r
    lo, hi, minor, major = d["lo"], d["hi"], d["minor"], d["major"]
    sweep = SWEEP[style]
    n = round((hi - lo) / minor)
    ang = lambda v: -sweep / 2 + sweep * (v - lo) / (hi - lo)  # noqa: E731
    fnt = font(max(0.11 * r, 11) * SS)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    labels = []
    for k in range(round((hi - lo) / major) + 1):
        v = lo + k * major
        at = polar(cx, cy, 0.62 * r, ang(v))
        labels.append((fmt_value(v), at, text_box(probe, at, fmt_value(v), fnt)))
    unit_at = (cx, cy + (0.42 if style == "round" else 0.36) * r)
    return {"r": r, "cx": cx, "cy": cy, "n": n, "angle": ang, "font": fnt, "labels": labels,
            "unit": (unit_at, text_box(probe, unit_at, d["unit"], font(max(0.1 * r, 11) * SS))),
            "minor_px": math.radians(sweep / n) * 0.86 * r}


def zone_bands(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The green, yellow and red bands of a gauge Spec with zones (from, to, colour); none without."""
    if not d["zones"]:
        return []
    edges = [d["lo"], *d["zones"], d["hi"]]
    return [{"zone": name, "from": a, "to": b, "color": ZONE_COLORS[name]}
            for name, a, b in zip(("green", "yellow", "red"), edges, edges[1:])]


@register
class Gauge(Generator):
    """A needle gauge: a round (270 degrees) or arc (180 degrees) scale with major and minor ticks, numbers on the
    major ticks, a unit, optional green/yellow/red zones and a needle that sits exactly on a minor tick.

    Facts: one entity `gauge` (value, unit, lo, hi, major, minor, threshold; zone when zones are drawn),
    extra["needle"] (angle, pivot, tip, colour), extra["zones"]; tick labels and the unit are texts of the gauge.
    The needle reading is exact (it sits on a tick at least `min_tick_px` from the next), so questions read it
    with tolerance 0; it never sits on a zone boundary or on the threshold a question names.
    """

    name = "scene.gauge"
    domain = "scene"
    version = "1"
    description = "Needle gauges (km/h, °C, psi, %, bar, V, rpm) with major/minor ticks, labels and coloured zones."
    knobs = (
        IMAGE_SIZE,
        Knob("style", "choice", "any", "Dial shape: round (270-degree scale), arc (180 degrees) or any.",
             choices=("any", *SWEEP), difficulty="arc has denser ticks"),
        Knob("zones", "choice", "any", "Draw green/yellow/red zones along the scale.", choices=("any", "yes", "no"),
             difficulty="none"),
        Knob("face", "choice", "any", "Face colours.", choices=("any", *GAUGE_FACES),
             difficulty="dark slightly harder"),
        Knob("min_tick_px", "float", 7.0, "Smallest gap between minor ticks along the needle's tip circle, in pixels "
             "(scales with finer ticks are not drawn below it).", lo=4.0, hi=9.0, difficulty="lower is harder"),
    )

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        d: dict[str, Any] = {"size": int(kn["image_size"]), "background": choice(rng, _BACKGROUNDS),
                             "style": _pick(rng, kn["style"], tuple(SWEEP)),
                             "face": _pick(rng, kn["face"], tuple(GAUGE_FACES))}
        zones = _pick(rng, kn["zones"], ("yes", "no")) == "yes"
        for k in rng.permutation(len(SCALES)):  # the first scale that is legible at this size and style
            unit, lo, hi, major, minor = SCALES[int(k)]
            d.update(unit=unit, lo=lo, hi=hi, major=major, minor=minor)
            g = gauge_geometry(d)
            boxes = [b for _, _, b in g["labels"]] + [g["unit"][1]]
            if g["minor_px"] >= kn["min_tick_px"] and min(b[3] - b[1] for b in boxes) >= 7 and not any(
                    _overlap(a, b, 2.0) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
                break
        else:
            raise LayoutError(f"no gauge scale is legible at {d['size']} px with min_tick_px={kn['min_tick_px']}")
        majors = [lo + i * major for i in range(1, round((hi - lo) / major))]
        bounds: list[float] = []
        if zones:
            i = sorted(int(x) for x in rng.choice(len(majors), 2, replace=False)) if len(majors) >= 2 else []
            bounds = [majors[j] for j in i]
        n = round((hi - lo) / minor)
        threshold = choice(rng, majors)
        while True:
            value = round(lo + minor * int(rng.integers(1, n)), 6)
            if value not in bounds and value != threshold:
                break
        return d | {"zones": bounds, "value": value, "threshold": threshold,
                    "needle": choice(rng, ("#111111", "#c62828", "#1f3a5f")) if d["face"] != "dark" else "#ff8f00"}

    def draw(self, spec: Spec) -> list[Image.Image]:
        """The figure alone, as render draws it, without the face and needle measurement or Facts (gauge_geometry
        still measures the label boxes, which the sampler shares); the bare baseline of benchmarks/render.py."""
        return [self._draw(spec)[0]]

    @staticmethod
    def _draw(spec: Spec) -> tuple[Image.Image, dict[str, Any], np.ndarray]:
        """The image (drawn at SS x size, box-filtered down), the gauge_geometry it was drawn from and the
        needle polygon, for the Facts."""
        d = spec.data
        size = d["size"]
        g = gauge_geometry(d)
        r, cx, cy, ang = g["r"], g["cx"], g["cy"], g["angle"]
        face, rim, ink, _ = GAUGE_FACES[d["face"]]
        img = Image.new("RGB", (size * SS, size * SS), _rgb(d["background"]))
        draw = ImageDraw.Draw(img)
        box = [(cx - r) * SS, (cy - r) * SS, (cx + r) * SS, (cy + r) * SS]
        inner = [(cx - 0.95 * r) * SS, (cy - 0.95 * r) * SS, (cx + 0.95 * r) * SS, (cy + 0.95 * r) * SS]
        if d["style"] == "round":
            draw.ellipse(box, fill=rim)
            draw.ellipse(inner, fill=face)
        else:
            draw.chord(box, 145, 35, fill=rim)
            draw.chord(inner, 146, 34, fill=face)
        lo = d["lo"]
        ring = [(cx - 0.93 * r) * SS, (cy - 0.93 * r) * SS, (cx + 0.93 * r) * SS, (cy + 0.93 * r) * SS]
        for z in zone_bands(d):
            draw.arc(ring, ang(z["from"]) - 90, ang(z["to"]) - 90, fill=z["color"], width=round(0.07 * r * SS))
        for k in range(g["n"] + 1):
            v = lo + k * d["minor"]
            is_major = abs((v - lo) / d["major"] - round((v - lo) / d["major"])) < 1e-9
            _poly(draw, bar(cx, cy, ang(v), (0.74 if is_major else 0.8) * r, 0.89 * r,
                            (0.026 if is_major else 0.012) * r), ink)
        for label, at, _ in g["labels"]:
            draw.text((at[0] * SS, at[1] * SS), label, font=g["font"], fill=ink, anchor="mm")
        (ux, uy), _ = g["unit"]
        draw.text((ux * SS, uy * SS), d["unit"], font=font(max(0.1 * r, 11) * SS), fill=ink, anchor="mm")
        needle = hand(cx, cy, ang(d["value"]), 0.86 * r, 0.16 * r, 0.045 * r, 0.012 * r)
        _poly(draw, needle, d["needle"])
        _disc(draw, cx, cy, 0.07 * r, d["needle"])
        _disc(draw, cx, cy, 0.025 * r, rim)
        return img.reduce(SS), g, needle

    def render(self, spec: Spec) -> Rendered:
        """Draw the Spec (through _draw) and compute Facts from its geometry."""
        img, g, needle = self._draw(spec)
        d = spec.data
        size, r, cx, cy = d["size"], g["r"], g["cx"], g["cy"]
        face, _, ink, _ = GAUGE_FACES[d["face"]]
        lo, hi = d["lo"], d["hi"]
        zones = zone_bands(d)
        texts = [TextSpan(text=label, box=tb, role="tick:gauge") for label, _, tb in g["labels"]]
        texts.append(TextSpan(text=d["unit"], box=g["unit"][1], role="unit:gauge"))
        deg = g["angle"](d["value"])
        box, area = face_region(cx, cy, r, size, chord=d["style"] == "arc")
        vis = coverage(needle, size)
        ys, xs = np.nonzero(vis)
        attrs: dict[str, Any] = {"value": d["value"], "unit": d["unit"], "lo": lo, "hi": hi, "major": d["major"],
                                 "minor": d["minor"], "threshold": d["threshold"], "style": d["style"],
                                 "above_threshold": d["value"] > d["threshold"], "visible_pixels": area}
        if zones:
            attrs["zone"] = next(z["zone"] for z in zones if z["from"] < d["value"] < z["to"])
        unit = d["unit"]
        facts = Facts(domain="scene", kind="gauge", width=size, height=size,
                      entities=[Entity(id="gauge", attrs=attrs, box=box)], texts=texts,
                      context={"noun": "gauge", "unit": unit, "unit_suffix": unit if unit == "%" else f" {unit}",
                               "threshold": fmt_value(d["threshold"])},
                      extra={"needle": {"angle": round(deg, 4), "pivot": [cx, cy],
                                        "tip": [round(float(needle[2][0]), 2), round(float(needle[2][1]), 2)],
                                        "color": d["needle"], "pixels": int(vis.sum()),
                                        "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]},
                             "zones": zones, "minor_px": round(g["minor_px"], 2), "centre": [cx, cy], "radius": r,
                             "colors": {"face": face, "ticks": ink}})
        return Rendered(png=png_bytes(img), facts=facts)
