"""Plotly renderer for chart Specs: fixed-geometry figures, exported in batches by one browser per process."""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import shutil
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

import matplotlib
from PIL import Image, ImageFont

from deltaprompts.errors import LayoutError, RenderError
from deltaprompts.generators.base import Rendered, png_bytes
from deltaprompts.generators.chart_kind import chart_context
from deltaprompts.generators.chart_sampling import color_name, palette_of, slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.records import Entity, Facts, Spec, TextSpan

NO_BROWSER = ("plotly export needs Chrome or Chromium: install it (Debian: apt-get install chromium) "
              "or set BROWSER_PATH")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TABS = 2  # browser tabs per process: ~30% more figures/s in a batch than one tab, ~2 s more to start
FIGURE_TIMEOUT_S = 60.0
RELOAD_EVERY = 64  # kaleido reloads a tab (re-parsing plotly.js) after every figure; we do it this often

# Chromium is given a fontconfig that knows only matplotlib's bundled fonts, so it draws text
# with the very files PIL measures below, whatever the machine has installed.
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT_FILES = {"DejaVu Sans": "DejaVuSans.ttf", "DejaVu Serif": "DejaVuSerif.ttf",
              "DejaVu Sans Mono": "DejaVuSansMono.ttf"}
ASCENT, DESCENT, CAP = 0.928, 0.236, 0.76  # DejaVu metrics in em: ascent, descent, cap-height box
THEMES = {  # plot area (None: the background), text, grid, axis line
    "plain": (None, "#2a3f5f", "#e5e5e5", "#444444"),
    "minimal": (None, "#444444", "#eeeeee", "#999999"),
    "gray": ("#ebebeb", "#333333", "#ffffff", "#ffffff"),
    "dark": (None, "#e6e6e6", "#45454d", "#8a8a90"),
}
#: kinds drawn as a round pie (a donut is a pie with a hole), and as points joined by lines (areas
#: are lines filled down to zero or to the layer below)
ROUND, LINED = ("pie", "donut"), ("line", "area", "stacked_area")
PAD = 10  # px between blocks (title, labels, plot area, legend)
# plotly's legend (legend/draw.js): text 40 px after the item's left, items max(1.3 em, 16) + 3 px
# tall, 5 px gaps; the text baseline sits 0.3 line heights below the item's middle
LEGEND_TEXT_X, LEGEND_GAP = 40.0, 5.0


def find_browser() -> str:
    """Return the Chrome/Chromium executable kaleido will drive: `BROWSER_PATH` if set, else the
    first of BROWSER_NAMES on PATH. Raises RenderError when there is none."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise RenderError(f"BROWSER_PATH={env!r} is not an executable file; {NO_BROWSER}")
    for name in BROWSER_NAMES:
        found = shutil.which(name, path=os.environ.get("PATH", ""))
        if found:
            return found
    raise RenderError(NO_BROWSER)


@lru_cache(maxsize=64)
def _font(family: str, size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT_DIR / FONT_FILES[family]), size=size)


def _text_w(text: str, family: str, size: float) -> float:
    # Chromium rounds hinted advances: its widths differ from these by up to ~3%
    return _font(family, size).getlength(text)


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) inside [lo, hi]."""
    raw = ((hi - lo) if hi > lo else abs(hi) or 1.0) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round((first + i) * step, 10) for i in range(int((hi - first * step) / step + 1e-9) + 1)]


def tick_text(v: float, ticks: list[float]) -> str:
    """Format a tick as plotly's default axis does: 10k/1.5M from 10,000 up, unicode minus."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    big = max(abs(t) for t in ticks)
    scale, suffix = next(((s, x) for s, x in ((1e9, "B"), (1e6, "M"), (1e3, "k")) if big >= max(s, 1e4)), (1.0, ""))
    decimals = next(d for d in range(8) if abs(round(step / scale, d) - step / scale) < 1e-9)
    if abs(v) < 1e-12:
        return "0" if suffix else f"{0:.{decimals}f}"
    return ("\u2212" if v < 0 else "") + f"{abs(v) / scale:.{decimals}f}{suffix}"


def fmt_value(value: float, decimals: int, unit: str) -> str:
    """A value label, as the matplotlib renderer writes it: separators, the chart's decimals, % for percent."""
    return f"{value:,.{decimals}f}" + ("%" if unit == "%" else "")


def _contrast(hex_color: str) -> str:
    """Near-black or white, whichever reads better on `hex_color` (the matplotlib renderer's rule)."""
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def _overlap(a: Sequence[float], b: Sequence[float], min_area: float = 1.0) -> bool:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    return w > 0 and h > 0 and w * h >= min_area


class _Frame:
    """Pixel geometry of the plot area: margins and the two data ranges mapped linearly onto it."""

    def __init__(self, w: int, h: int, margin: tuple[int, int, int, int], xr=(0.0, 1.0), yr=(0.0, 1.0)):
        self.w, self.h = w, h
        self.l, self.r, self.t, self.b = margin
        self.xr, self.yr = xr, yr
        self.pw, self.ph = w - self.l - self.r, h - self.t - self.b

    @property
    def box(self) -> list[float]:
        return [self.l, self.t, self.w - self.r, self.h - self.b]

    def px(self, x: float) -> float:
        return self.l + (x - self.xr[0]) / (self.xr[1] - self.xr[0]) * self.pw

    def py(self, y: float) -> float:
        return self.h - self.b - (y - self.yr[0]) / (self.yr[1] - self.yr[0]) * self.ph

    def paper(self, x: float, y: float) -> tuple[float, float]:
        """Plotly paper coordinates of pixel (x, y)."""
        return (x - self.l) / self.pw, (self.h - self.b - y) / self.ph


class _Texts:
    """Collects annotations placed in pixels, and the TextSpans (ink boxes) of every text drawn."""

    def __init__(self, frame: _Frame, family: str, color: str):
        self.frame, self.family, self.color = frame, family, color
        self.annotations: list[dict[str, Any]] = []
        self.spans: list[TextSpan] = []

    def add(self, text: str, x: float, cy: float, size: float, role: str | None, angle: int = 0,
            color: str | None = None, xanchor: str = "center") -> None:
        """An annotation, vertically centred on pixel row cy, its `xanchor` side at pixel column x."""
        px, py = self.frame.paper(x, cy)
        self.annotations.append({
            "text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": px, "y": py,
            "xanchor": xanchor, "yanchor": "middle", "textangle": angle, "borderpad": 0, "borderwidth": 0,
            "font": {"family": self.family, "size": size, "color": color or self.color}})
        if role:  # plotly centres the line box (ascent + descent) on the anchor
            mid = (ASCENT - DESCENT) / 2 * size
            w = _text_w(text, self.family, size)
            cx = x + {"left": w / 2, "right": -w / 2}.get(xanchor, 0.0)
            self.span(text, cx, cy + mid, size, role, angle, "middle", mid)

    def span(self, text: str, x: float, baseline: float, size: float, role: str, angle: float = 0,
             anchor: str = "middle", pivot: float = 0.0) -> TextSpan:
        """Record the ink box (cap top to descender) of `text` written at (x, baseline), anchored at its
        middle or end, then turned `angle` degrees clockwise about (x, baseline - pivot)."""
        w = _text_w(text, self.family, size)
        x0 = -w if anchor == "end" else -w / 2
        c, s, py = math.cos(math.radians(angle)), math.sin(math.radians(angle)), baseline - pivot
        pts = [(x + dx * c - dy * s, py + dx * s + dy * c)
               for dx in (x0, x0 + w) for dy in (-CAP * size + pivot, DESCENT * size + pivot)]
        box = (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))
        self.spans.append(TextSpan(text=text, box=tuple(round(v, 1) for v in box), role=role))
        return self.spans[-1]


class _Legend:
    """plotly's legend laid out in advance: its size, and each entry's text start and baseline."""

    def __init__(self, names: list[str], family: str, fs: float, loc: str, max_w: float):
        item_h = max(1.3 * fs, 16) + 3
        widths = [_text_w(n, family, fs) for n in names]
        row = sum(LEGEND_TEXT_X + w + LEGEND_GAP for w in widths)
        # a bottom legend is one row when that fits (plotly wraps at the plot width; keep 5% spare)
        self.loc = "outside right" if loc == "outside bottom" and row > 0.95 * max_w else loc
        self.horizontal = self.loc == "outside bottom"
        self.names, self.fs, self.widths = names, fs, widths
        if self.horizontal:
            self.w, self.h = row, item_h + 2 * LEGEND_GAP
            starts = [sum(LEGEND_TEXT_X + w + LEGEND_GAP for w in widths[:j]) for j in range(len(names))]
            self.entries = [(x + LEGEND_TEXT_X, LEGEND_GAP + item_h / 2) for x in starts]
        else:
            self.w, self.h = LEGEND_TEXT_X + max(widths) + LEGEND_GAP, item_h * len(names) + 2 * LEGEND_GAP
            self.entries = [(LEGEND_TEXT_X, LEGEND_GAP + item_h * (j + 0.5)) for j in range(len(names))]
        self.x0 = self.y0 = 0.0

    def place(self, frame: _Frame, layout: dict[str, Any], texts: _Texts, paper: str) -> list[float]:
        """Pin the legend's top-left corner for its location, add its entries' spans; returns its box."""
        x0, y0 = {"outside right": (frame.w - frame.r + PAD, frame.t),
                  "outside bottom": (frame.l + (frame.pw - self.w) / 2, frame.h - PAD - self.h),
                  "upper left": (frame.l + PAD / 2, frame.t + PAD / 2)}.get(
            self.loc, (frame.w - frame.r - PAD / 2 - self.w, frame.t + PAD / 2))
        self.x0, self.y0 = x0, y0
        x, y = frame.paper(x0, y0)
        inside = not self.loc.startswith("outside")
        layout["legend"] = {
            "x": x, "y": y, "xanchor": "left", "yanchor": "top", "orientation": "h" if self.horizontal else "v",
            "bgcolor": _rgba(paper, 0.85) if inside else "rgba(0,0,0,0)", "borderwidth": 0,
            "traceorder": "normal", "font": {"size": self.fs}, "itemsizing": "constant"}
        for name, (tx, cy) in zip(self.names, self.entries):
            w = _text_w(name, texts.family, self.fs)
            texts.span(name, x0 + tx + w / 2, y0 + cy + 0.39 * self.fs, self.fs, "legend")
        return [round(v, 1) for v in (x0, y0, x0 + self.w, y0 + self.h)]


def _rgba(hex_color: str, alpha: float) -> str:
    return "rgba({},{},{},{})".format(*(int(hex_color[i:i + 2], 16) for i in (1, 3, 5)), alpha)


def build_figure(chart: ChartData) -> tuple[dict[str, Any], Facts]:
    """The plotly figure (a plain dict, every position fixed) for `chart`, and the Facts it will show.
    Raises RenderError for data or a style this renderer cannot draw, or a canvas too small for the plot."""
    st, kind = chart.style, chart.chart_type
    if st.font_family not in FONT_FILES:
        raise RenderError(f"style.font_family={st.font_family!r} is not available to the plotly renderer; "
                          f"use one of {sorted(FONT_FILES)}")
    if st.theme not in THEMES:
        raise RenderError(f"style.theme={st.theme!r} is unknown to the plotly renderer; use one of {sorted(THEMES)}")
    if not chart.categories or not chart.series or (kind in ROUND and len(chart.series) != 1):
        raise RenderError(f"a {kind} chart needs categories and {'one series' if kind in ROUND else 'series'}; "
                          f"got {len(chart.categories)} categories, {len(chart.series)} series")
    for s in chart.series:
        if len(s.values) != len(chart.categories):
            raise RenderError(f"series {s.name!r} has {len(s.values)} values for {len(chart.categories)} categories")
    fs, ts, fam = st.font_size * st.dpi / 72, st.title_size * st.dpi / 72, st.font_family
    plot_bg, ink, grid, axis_line = THEMES[st.theme]
    # a long title wraps, like the matplotlib renderer's, at ~90% of the image width
    title_lines = textwrap.wrap(chart.title, max(12, int(0.9 * st.width_px / (0.6 * ts)))) if chart.title else []
    top = round(2 * PAD + ts * (ASCENT + DESCENT + 0.3 * (len(title_lines) - 1))) if title_lines else 2 * PAD
    names = chart.categories if kind in ROUND else [s.name for s in chart.series]
    if kind == "stacked_area":  # the top layer first, as the layers stack (the matplotlib renderer's order)
        names = names[::-1]
    loc = "outside right" if kind in ROUND and not st.legend_loc.startswith("outside") else st.legend_loc
    legend = _Legend(names, fam, fs, loc, 0.8 * st.width_px) if st.legend else None
    layout: dict[str, Any] = {
        "width": st.width_px, "height": st.height_px, "paper_bgcolor": st.background,
        "plot_bgcolor": plot_bg or st.background, "font": {"family": fam, "size": fs, "color": ink},
        "showlegend": legend is not None, "hovermode": False, "barmode": "overlay"}
    geometry = _pie_geometry if kind in ROUND else _xy_geometry
    frame, traces, entities, texts, extra = geometry(chart, layout, top, legend, fs, (ink, grid, axis_line))
    own_fields = extra.pop("fields", {})  # fields a kind declares (a donut's total)
    title_spans = []
    for k, line in enumerate(title_lines):
        texts.add(line, st.width_px / 2, PAD + ts * ((ASCENT + DESCENT) / 2 + 1.3 * k), ts, "title")
        title_spans.append(texts.spans.pop())
    if title_spans:  # one span for the whole title, as the matplotlib renderer gives
        boxes = [t.box for t in title_spans]
        texts.spans.insert(0, TextSpan(text=chart.title, role="title", box=(
            min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))))
    legend_box = legend.place(frame, layout, texts, st.background) if legend else None
    layout["margin"] = {"l": frame.l, "r": frame.r, "t": frame.t, "b": frame.b, "pad": 0, "autoexpand": False}
    layout["annotations"] = texts.annotations
    spans = texts.spans
    # slanted tick labels' boxes overlap by design: not a clash (the matplotlib renderer's rule)
    slanted = st.tick_rotation not in (0, 90) and kind != "hbar"
    clashes = [[i, j] for i in range(len(spans)) for j in range(i + 1, len(spans))
               if not (slanted and {spans[i].role, spans[j].role} <= {"x_tick", "y_tick"}
                       and "x_tick" in {spans[i].role, spans[j].role}) and _overlap(spans[i].box, spans[j].box, 2.0)]
    facts = Facts(
        domain="chart", kind=kind, width=st.width_px, height=st.height_px, entities=entities, texts=spans,
        fields={"title": chart.title, "x_label": chart.x_label or None, "y_label": chart.y_label or None,
                "unit": chart.unit or None, "value_labels": True if st.value_labels else None, **own_fields},
        context=chart_context(chart),
        extra={"axes_box": frame.box, "legend_box": legend_box,
               "legend_overlap": [e.id for e in entities if legend_box and _overlap(e.box, legend_box, 4.0)],
               "text_overlaps": clashes, "renderer": "plotly", "theme": st.theme,
               "palette": palette_of([s.color for s in chart.series]),
               "legend_loc": legend.loc if legend else None, **extra})
    return {"data": traces, "layout": layout}, facts


def _label_standoff(fs: float, line: bool) -> float:
    """Plotly's tick label standoff from its axis (axes.js makeLabelFns, no tick marks): a fifth of the
    font size when the axis line shows, plus half the line width."""
    return (0.2 * fs if line else 0.0) + 0.5


def _value_range(chart: ChartData, label_w: float) -> tuple[float, float]:
    """The value axis range: bars from 0, lines clear of their extremes, headroom for value labels."""
    cols = list(zip(*(s.values for s in chart.series)))
    kind, st = chart.chart_type, chart.style
    if kind == "stacked_bar":
        vals = [sum(v for v in c if v > 0) for c in cols] + [sum(v for v in c if v < 0) for c in cols]
    elif kind == "stacked_area":
        vals = [v for top in _area_tops(chart) for v in top]
    else:
        vals = [v for c in cols for v in c]
    lo, hi = min(vals), max(vals)
    if kind != "line":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    span = (hi - lo) or abs(hi) or 1.0
    head = 0.12 if st.value_labels and kind != "stacked_bar" else 0.06
    if st.value_labels and kind == "hbar":  # labels sit beside the bars: room for the widest
        head = min(0.4, max(head, (label_w + 8) / (0.6 * st.width_px)))
    if kind == "line":
        return (max(lo - 0.06 * span, 0.0) if lo >= 0 else lo - 0.06 * span), hi + head * span
    return (lo - head * span if lo < 0 else lo), (hi + head * span if hi > 0 else hi)


def _bar_slots(chart: ChartData) -> list[tuple[float, float, list[float]]]:
    """Per series: bar width and offset (category units) and each bar's base value."""
    st, kind, k = chart.style, chart.chart_type, len(chart.series)
    width = st.bar_width / k if kind == "grouped_bar" else st.bar_width
    pos, neg = [0.0] * len(chart.categories), [0.0] * len(chart.categories)
    out = []
    for i, s in enumerate(chart.series):
        offset = -st.bar_width / 2 + (i * width if kind == "grouped_bar" else 0.0)
        starts = [(neg if v < 0 else pos)[j] for j, v in enumerate(s.values)] if kind == "stacked_bar" \
            else [0.0] * len(s.values)
        if kind == "stacked_bar":
            for j, v in enumerate(s.values):
                (neg if v < 0 else pos)[j] += v
        out.append((width, offset, starts))
    return out


def _marks(chart: ChartData, frame: _Frame, slots, fs: float) -> list[dict[str, Any]]:
    """Each mark's pixel box, the value at its far end, and where its value label is centred."""
    st, kind = chart.style, chart.chart_type
    horizontal, vh = kind == "hbar", 0.85 * fs * (ASCENT + DESCENT)
    lw, marker = st.line_width * st.dpi / 72, (6 * st.dpi / 72 if st.line_markers else 0.0)
    out = []
    tops = _area_tops(chart) if kind in ("area", "stacked_area") else []
    for i, s in enumerate(chart.series):
        for j, v in enumerate(s.values):
            if kind in ("area", "stacked_area"):
                v = tops[i][j]  # the point sits on the area's (or the layer's) top edge
            label = fmt_value(v, st.value_decimals, chart.unit)
            if kind in LINED:
                cx, cy, half = frame.px(j), frame.py(v), max(marker / 2, lw) + 1
                box = (cx - half, cy - half, cx + half, cy + half)
                # 5 pt above the point, as the matplotlib renderer puts it
                out.append({"i": i, "j": j, "box": box, "end": v, "label": label,
                            "at": (cx, cy - half - 5 * st.dpi / 72 - vh / 2)})
                continue
            width, offset, starts = slots[i]
            a0, a1, c0, c1 = starts[j], starts[j] + v, j + offset, j + offset + width
            xs, ys = ((frame.px(a0), frame.px(a1)), (frame.py(c0), frame.py(c1))) if horizontal \
                else ((frame.px(c0), frame.px(c1)), (frame.py(a0), frame.py(a1)))
            box = (min(xs), min(ys), max(xs), max(ys))
            sign = 1 if v >= 0 else -1
            if kind == "stacked_bar":
                at = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            elif horizontal:
                at = (frame.px(a1) + sign * (3 + _text_w(label, st.font_family, 0.85 * fs) / 2), (box[1] + box[3]) / 2)
            else:
                at = ((box[0] + box[2]) / 2, frame.py(a1) - sign * (3 + vh / 2))
            out.append({"i": i, "j": j, "box": box, "end": max(a0, a1), "label": label, "at": at})
    return out


def _lift(chart: ChartData, frame: _Frame, marks, legend: _Legend, fs: float, lo: float) -> float:
    """The smallest top of the value range that keeps marks (and their labels) clear of an inside
    legend, where a range can; -inf when nothing is in the way."""
    upper_left, horizontal = legend.loc == "upper left", chart.chart_type == "hbar"
    lx0 = frame.l + PAD / 2 if upper_left else frame.w - frame.r - PAD / 2 - legend.w
    lx1, ly1 = lx0 + legend.w, frame.t + PAD / 2 + legend.h
    labels = chart.style.value_labels and chart.chart_type != "stacked_bar"
    need = -math.inf
    for m in marks:
        x0, y0, x1, y1 = m["box"]
        if horizontal and not upper_left and y0 < ly1 + 2:
            extra = _text_w(m["label"], chart.style.font_family, 0.85 * fs) + 3 if labels else 0.0
            g = (lx0 - 4 - extra - frame.l) / frame.pw
            if g > 0.1:
                need = max(need, lo + (m["end"] - lo) / g)
        elif not horizontal and x1 > lx0 - 2 and x0 < lx1 + 2:
            extra = 0.85 * fs * (ASCENT + DESCENT) + 8 if labels else (y1 - y0) / 2
            f = (ly1 + 4 + extra - frame.t) / frame.ph
            if f < 0.9:
                need = max(need, (m["end"] - f * lo) / (1 - f))
    return need


def _area_tops(chart: ChartData) -> list[list[float]]:
    """Per series, the y of its line: its values, or the running sums of a stacked area (kinds/area.py)."""
    from deltaprompts.generators.kinds.area import area_tops

    return area_tops(chart, chart.chart_type == "stacked_area")


def _kind_attrs(chart: ChartData, i: int, j: int, color: str) -> dict[str, Any]:
    """A mark's attributes as its kind gives them to the matplotlib renderer (the same Facts either way)."""
    from deltaprompts.generators.chart_kind import kind_of
    from deltaprompts.generators.chart_mpl import Mark

    return kind_of(chart.chart_type).attrs(chart, Mark(id=f"s{i}c{j}", series=i, category=j), color)


def _area_traces(chart: ChartData, lw: float, marker: float) -> list[dict[str, Any]]:
    """An area chart's traces: every fill first (to zero, or to the layer below), then every line
    above them, so no fill covers a line; a stacked chart's lines top layer first, as its legend."""
    from deltaprompts.generators.kinds.area import area_alpha

    st, stacked = chart.style, chart.chart_type == "stacked_area"
    tops, n = _area_tops(chart), len(chart.categories)
    alpha = area_alpha(len(chart.series), stacked)
    fills = [{"type": "scatter", "x": list(range(n)), "y": top, "mode": "none", "showlegend": False,
              "fill": "tonexty" if stacked and i else "tozeroy", "fillcolor": _rgba(s.color, alpha),
              "line": {"width": 0}} for i, (s, top) in enumerate(zip(chart.series, tops))]
    lines = [{"type": "scatter", "x": list(range(n)), "y": top, "name": s.name, "cliponaxis": False,
              "mode": "lines+markers" if st.line_markers else "lines", "line": {"color": s.color, "width": lw},
              "marker": {"color": s.color, "size": marker}} for s, top in zip(chart.series, tops)]
    return fills + (lines[::-1] if stacked else lines)


def _xy_geometry(chart: ChartData, layout: dict[str, Any], top: int, legend: _Legend | None, fs: float,
                 colors: tuple[str, str, str]):
    st, kind, fam = chart.style, chart.chart_type, chart.style.font_family
    ink, grid, axis_line = colors
    horizontal, n = kind == "hbar", len(chart.categories)
    line_h = fs * (ASCENT + DESCENT)
    rot = 0 if horizontal else st.tick_rotation
    slots = _bar_slots(chart) if kind not in LINED else []
    label_w = max(_text_w(fmt_value(v, st.value_decimals, chart.unit), fam, 0.85 * fs)
                  for s in chart.series for v in s.values)
    right = round(legend.w + 2 * PAD) if legend and legend.loc == "outside right" else 2 * PAD
    below = legend.h + PAD if legend and legend.loc == "outside bottom" else 0.0
    cat_pad = 0.35 if kind in LINED else 0.5
    crange = [n - 1 + cat_pad, -cat_pad] if horizontal else [-cat_pad, n - 1 + cat_pad]
    floor = -math.inf
    for _ in range(3):  # an inside legend may lift the range, which may widen the tick labels
        lo, hi = _value_range(chart, label_w)
        hi = max(hi, floor)
        ticks = nice_ticks(lo, hi)
        tick_labels = [tick_text(t, ticks) for t in ticks]
        left_labels, bottom_labels = (chart.categories, tick_labels) if horizontal else (tick_labels, chart.categories)
        left = PAD + (line_h + PAD if chart.y_label else 0) + max(_text_w(t, fam, fs) for t in left_labels) + 6
        a = math.radians(abs(rot))
        tick_h = max(_text_w(t, fam, fs) * math.sin(a) + line_h * math.cos(a) for t in bottom_labels)
        bottom = 6 + tick_h + (PAD + line_h if chart.x_label else 0) + PAD + below
        if rot == 0:  # a centred label at the right edge must not spill off the image
            right = max(right, round(_text_w(bottom_labels[-1], fam, fs) / 2 + 4))
        xr, yr = ((lo, hi), crange) if horizontal else (crange, (lo, hi))
        frame = _Frame(st.width_px, st.height_px, (round(left), right, top, round(bottom)), xr, yr)
        if frame.pw < 60 or frame.ph < 60:
            raise LayoutError(f"a {st.width_px}x{st.height_px} px canvas leaves no room for the plot area "
                              f"once titles, labels and legend are placed; enlarge style.width_px/height_px")
        marks = _marks(chart, frame, slots, fs)
        if legend is None or legend.loc.startswith("outside"):
            break
        floor = _lift(chart, frame, marks, legend, fs, lo)
        if floor <= hi + 1e-9:
            break
    texts = _Texts(frame, fam, ink)
    value_axis = {"type": "linear", "range": [lo, hi], "tickmode": "array", "tickvals": ticks,
                  "ticktext": tick_labels, "showgrid": st.grid, "gridcolor": grid, "zeroline": lo < 0 < hi,
                  "zerolinecolor": axis_line, "zerolinewidth": 1, "showline": False, "ticks": "",
                  "automargin": False}
    cat_axis = {"type": "linear", "range": crange, "tickmode": "array", "tickvals": list(range(n)),
                "ticktext": chart.categories, "showgrid": False, "zeroline": False, "showline": True,
                "linecolor": axis_line, "ticks": "", "tickangle": -rot, "automargin": False}
    layout["xaxis"], layout["yaxis"] = (value_axis, cat_axis) if horizontal else (cat_axis, value_axis)

    # tick labels where plotly draws them: y labels end at the axis, centred on the tick (0.35 em);
    # x labels hang below it (baseline one em down); slanted ones turn about their end's middle
    bottom_y = frame.h - frame.b
    for t, label in zip(ticks, tick_labels):
        if horizontal:
            texts.span(label, frame.px(t), bottom_y + _label_standoff(fs, False) + fs, fs, "x_tick")
        else:
            texts.span(label, frame.l - _label_standoff(fs, False), frame.py(t) + 0.35 * fs, fs, "y_tick",
                       anchor="end")
    for j, cat in enumerate(chart.categories):
        if horizontal:
            texts.span(cat, frame.l - _label_standoff(fs, True), frame.py(j) + 0.35 * fs, fs, "y_tick", anchor="end")
        else:
            texts.span(cat, frame.px(j), bottom_y + _label_standoff(fs, True) + fs, fs, "x_tick", -rot,
                       "end" if rot else "middle", fs / 2 if rot else 0.0)
    if chart.x_label:
        texts.add(chart.x_label, frame.l + frame.pw / 2, frame.h - PAD - below - line_h / 2, fs, "x_label")
    if chart.y_label:
        texts.add(chart.y_label, PAD + line_h / 2, frame.t + frame.ph / 2, fs, "y_label", angle=-90)

    traces, entities = [], []
    printed: dict[str, dict[str, str]] = {}  # mark id -> {attr: the value label's text}
    lw, marker = st.line_width * st.dpi / 72, 6 * st.dpi / 72
    if kind in ("area", "stacked_area"):
        traces = _area_traces(chart, lw, marker)
    for i, s in enumerate(chart.series):
        if kind in ("area", "stacked_area"):
            continue
        if kind == "line":
            traces.append({"type": "scatter", "x": list(range(n)), "y": s.values, "name": s.name,
                           "mode": "lines+markers" if st.line_markers else "lines", "cliponaxis": False,
                           "line": {"color": s.color, "width": lw}, "marker": {"color": s.color, "size": marker}})
        else:
            width, offset, starts = slots[i]
            seam = {"color": st.background, "width": 0.8} if kind == "stacked_bar" else {"width": 0}
            traces.append({"type": "bar", "orientation": "h" if horizontal else "v", "name": s.name,
                           ("y" if horizontal else "x"): list(range(n)), ("x" if horizontal else "y"): s.values,
                           "base": starts, "width": width, "offset": offset,
                           "marker": {"color": s.color, "line": seam}})
    for m in marks:
        s = chart.series[m["i"]]
        entities.append(Entity(id=f"s{m['i']}c{m['j']}", box=tuple(round(v, 2) for v in m["box"]), attrs={
            "series": s.name, "category": chart.categories[m["j"]], "value": round(s.values[m["j"]], st.value_decimals),
            "color_name": color_name(s.color), "color": s.color} if kind not in ("area", "stacked_area")
            else _kind_attrs(chart, m["i"], m["j"], s.color)))
        if kind == "stacked_area":  # the totals, above the top layer only
            if st.value_labels and m["i"] == len(chart.series) - 1:
                texts.add(m["label"], *m["at"], 0.85 * fs, "value_label")
                printed[f"s{m['i']}c{m['j']}"] = {"top": m["label"]}
            continue
        if st.value_labels:
            color = _contrast(s.color) if kind == "stacked_bar" else None
            texts.add(m["label"], *m["at"], 0.85 * fs, "value_label", color=color)
            printed[f"s{m['i']}c{m['j']}"] = {"value": m["label"]}
    extra = {"value_axis": {"axis": "x" if horizontal else "y", "range": [lo, hi], "ticks": ticks},
             "value_ticks": ticks, "printed": printed}
    if kind == "stacked_area":  # a layer's own value is two readings: only the tops are read (kinds/stacked_area.py)
        extra.update(value_axis=None, axes={"y": {"axis": "y", "range": [lo, hi], "ticks": ticks, "box": frame.box}},
                     reads={"top": "y"})
    return frame, traces, entities, texts, extra


def _pie_geometry(chart: ChartData, layout: dict[str, Any], top: int, legend: _Legend | None, fs: float,
                  colors: tuple[str, str, str]):
    st, s = chart.style, chart.series[0]
    total = math.fsum(s.values)
    if total <= 0 or any(v < 0 for v in s.values):
        raise RenderError(f"a pie needs non-negative values with a positive sum; got {s.values}")
    right = round(legend.w + 2 * PAD) if legend and legend.loc == "outside right" else 2 * PAD
    below = legend.h + PAD if legend and legend.loc == "outside bottom" else 0.0
    frame = _Frame(st.width_px, st.height_px, (2 * PAD, right, top, round(2 * PAD + below)))
    texts = _Texts(frame, st.font_family, colors[0])
    cx, cy = frame.l + frame.pw / 2, frame.t + frame.ph / 2
    r = min(frame.pw, frame.ph) / 2  # plotly: a pie fills the smaller side of its domain
    if legend is None:  # slice names at the rim (1.08 r, as matplotlib's labeldistance): room for them
        rim = max(_text_w(c, st.font_family, fs) for c in chart.categories)
        r = min(r, (frame.pw / 2 - rim - 6) / 1.08, (frame.ph / 2 - fs) / 1.08)
    if r < 30:
        raise LayoutError(f"a {st.width_px}x{st.height_px} px canvas leaves no room for the pie; "
                          f"enlarge style.width_px/height_px")
    colors_ = slice_colors(chart)
    hole = float(chart.extra.get("hole", 0.5)) if chart.chart_type == "donut" else 0.0
    domain = {"x": [(cx - r - frame.l) / frame.pw, (cx + r - frame.l) / frame.pw],
              "y": [(frame.h - frame.b - cy - r) / frame.ph, (frame.h - frame.b - cy + r) / frame.ph]}
    traces = [{"type": "pie", "labels": chart.categories, "values": s.values, "sort": False,
               "direction": "clockwise", "rotation": 0, "textinfo": "none", "hole": hole, "domain": domain,
               "marker": {"colors": colors_, "line": {"color": st.background, "width": 1}}}]
    entities, start, printed = [], 0.0, {}
    for j, (cat, v) in enumerate(zip(chart.categories, s.values)):
        sweep = 360.0 * v / total
        # angles clockwise from 12 o'clock; the box holds the centre, the ends and any axis crossing
        angles = [start + sweep * f for f in (0, 0.25, 0.5, 0.75, 1)]
        angles += [q for q in (90.0, 180.0, 270.0) if start < q < start + sweep]
        pts = [(cx, cy)] if not hole else [(cx + hole * r * math.sin(math.radians(q)),
                                             cy - hole * r * math.cos(math.radians(q))) for q in angles]
        pts += [(cx + r * math.sin(math.radians(q)), cy - r * math.cos(math.radians(q))) for q in angles]
        box = (min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts))
        entities.append(Entity(id=f"s0c{j}", box=tuple(round(x, 2) for x in box), attrs={
            "series": s.name, "category": cat, "value": round(v, st.value_decimals),
            "color_name": color_name(colors_[j]), "color": colors_[j],
            "percent": round(100 * v / total, st.value_decimals)}))
        mid = math.radians(start + sweep / 2)
        if st.value_labels:
            label = f"{100 * v / total:.{st.value_decimals}f}%"
            at = (1 + hole) / 2 if hole else 0.68  # a donut's on the middle of its ring
            texts.add(label, cx + at * r * math.sin(mid),
                      cy - at * r * math.cos(mid), 0.9 * fs, "value_label", color=_contrast(colors_[j]))
            printed[f"s0c{j}"] = {"percent": label}
        if legend is None:
            side = math.sin(mid)
            texts.add(cat, cx + 1.08 * r * side, cy - 1.08 * r * math.cos(mid), fs, "category_label",
                      xanchor="left" if side > 0.02 else "right" if side < -0.02 else "center")
        start += sweep
    extra = {"value_axis": None, "pie_center": [cx, cy], "pie_radius": r, "printed": printed}
    if hole:
        extra.update(_donut_centre(chart, texts, cx, cy, hole * r, fs))
    return frame, traces, entities, texts, extra


def _donut_centre(chart: ChartData, texts: _Texts, cx: float, cy: float, inner: float, fs: float) -> dict[str, Any]:
    """The total in a donut's hole, as the matplotlib renderer writes it (kinds/donut.py): the word and
    the number (role `field:total`, the Facts field `total`); extra entries: the hole's radius, fields."""
    from deltaprompts.generators.kinds.donut import TOTAL_WORD, donut_total, total_text

    out: dict[str, Any] = {"donut_hole": round(inner, 2)}
    text = total_text(chart)
    if text is None:
        return out
    # matplotlib centres the word at +0.16 and the number at -0.1 of the hole (radius 1 units)
    hole_frac = float(chart.extra.get("hole", 0.5))
    unit_px = inner / hole_frac
    texts.add(TOTAL_WORD, cx, cy - 0.16 * hole_frac * unit_px, 0.9 * fs, "label:total")
    texts.add(text, cx, cy + 0.1 * hole_frac * unit_px, 1.25 * fs, "field:total")
    out["fields"] = {"total": donut_total(chart)}
    return out


_FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><dir>{fonts}</dir><cachedir>{cache}</cachedir></fontconfig>
"""


class _Server:
    """One Chromium (through kaleido) owned by this process, driven from its own event-loop thread."""

    def __init__(self, browser: str, tabs: int):
        try:
            import kaleido  # imported here: the plotly extra is optional
        except ImportError as e:
            raise RenderError("plotly export needs kaleido>=1.0: pip install 'deltaprompts[plotly]'") from e

        class Kaleido(kaleido.Kaleido):
            """kaleido's browser, reloading a tab only every RELOAD_EVERY figures: plotly's toImage
            purges its own plot, so the reload only costs time (~0.3 s of a ~0.4 s figure)."""

            uses = 0

            async def _return_kaleido_tab(self, tab) -> None:
                self.uses += 1
                if self.uses % RELOAD_EVERY == 0 or not hasattr(self, "tabs_ready"):
                    await super()._return_kaleido_tab(tab)
                else:
                    await self.tabs_ready.put(tab)

        async def open_browser():
            k = Kaleido(n=tabs, path=browser, mathjax=False, timeout=FIGURE_TIMEOUT_S)
            await k.open()
            return k

        self.pid, self.kaleido = os.getpid(), None
        self.tmp = tempfile.mkdtemp(prefix="deltaprompts-plotly-")
        conf = Path(self.tmp) / "fonts.conf"
        conf.write_text(_FONTS_CONF.format(fonts=_FONT_DIR, cache=Path(self.tmp) / "fc-cache"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="deltaprompts-plotly", daemon=True)
        self.thread.start()
        # Chromium reads FONTCONFIG_FILE from the environment it starts with (checked: the text it
        # draws changes with it); set it only while the browser process starts
        saved = os.environ.get("FONTCONFIG_FILE")
        os.environ["FONTCONFIG_FILE"] = str(conf)
        try:
            self.kaleido = self._run(open_browser(), 120)
        except BaseException as e:
            self.stop()
            raise RenderError(f"could not start the browser {browser!r} for plotly export: {e}") from e
        finally:
            if saved is None:
                os.environ.pop("FONTCONFIG_FILE", None)
            else:
                os.environ["FONTCONFIG_FILE"] = saved

    def _run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def export(self, figures: list[dict[str, Any]]) -> list[bytes | BaseException]:
        """PNG bytes (or the error) for each figure, rendered concurrently on the browser's tabs."""
        async def batch():
            return await asyncio.gather(*(self.kaleido.calc_fig(
                f, opts={"format": "png", "width": f["layout"]["width"], "height": f["layout"]["height"],
                         "scale": 1}) for f in figures), return_exceptions=True)
        return self._run(batch(), FIGURE_TIMEOUT_S * (1 + len(figures)))

    def stop(self) -> None:
        """Close the browser, stop the loop thread and remove the font config."""
        try:
            if self.kaleido is not None:
                self._run(self.kaleido.close(), 30)
        finally:
            self.kaleido = None
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


_server: _Server | None = None
_lock = threading.Lock()


def _get_server() -> _Server:
    global _server
    with _lock:
        if _server is not None and _server.pid != os.getpid():
            _server = None  # inherited through fork: the browser belongs to the parent
        if _server is None:
            _server = _Server(find_browser(), TABS)
        return _server


def render_plotly_batch(specs: Sequence[Spec]) -> list[Rendered]:
    """Render chart Specs (their `data` is a ChartData) with plotly, all in one export batch.

    Takes Specs of the chart families; returns one Rendered (metadata-free RGB PNG, Facts) per Spec,
    in order. Starts this process's browser on first use. Raises RenderError when a Spec cannot be
    drawn, no browser is found or it fails to start, or a figure fails to export (naming the Spec).
    """
    built = []
    for s in specs:
        try:
            chart = ChartData.model_validate(s.data)
        except ValueError as e:  # pydantic's ValidationError is a ValueError
            raise RenderError(f"{s.family} index {s.index}: its data is not a valid ChartData: {e}") from e
        built.append(build_figure(chart))
    if not built:
        return []
    server = _get_server()
    try:
        results = server.export([fig for fig, _ in built])
    except Exception as e:  # the browser died or hung: drop it so the next call starts afresh
        close_plotly()
        raise RenderError(f"plotly export of {len(specs)} figure(s) failed: {e}") from e
    out = []
    for spec, (fig, facts), res in zip(specs, built, results):
        if isinstance(res, BaseException):
            raise RenderError(f"plotly export failed for {spec.family} index {spec.index}: {res}")
        image = Image.open(BytesIO(res))
        if image.size != (facts.width, facts.height):
            raise RenderError(f"plotly exported {image.size} px for {spec.family} index {spec.index}, "
                              f"expected {(facts.width, facts.height)}")
        flat = Image.new("RGB", image.size, fig["layout"]["paper_bgcolor"])
        flat.paste(image, mask=image.convert("RGBA").getchannel("A"))
        out.append(Rendered(png=png_bytes(flat), facts=facts))
    return out


@atexit.register
def close_plotly() -> None:
    """Close this process's browser, if one was started; safe to call more than once."""
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None and server.pid == os.getpid():
        server.stop()
