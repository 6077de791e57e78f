"""Bars of one measure on the left axis and a line of a second measure on the right axis, over time.

The topic names the second measure (`measures.right` in templates/vocab/charts.d/dual_axis.yaml).
Series 0 holds the bars, series 1 the line. The line is drawn on the main axes, mapped linearly
from its own range, and the right-hand axis is a matplotlib secondary axis of the main axes (not a
`twinx` sibling): so the shared layout, which fits one axes and its children, makes room for the
right-hand ticks and label, and a line point's box comes from the main axes' transform. The Facts
declare that axis (`extra["axes"]["right"]`) and route the line points' values to it
(`extra["entity_reads"]`); each axis's labels take its series' colour.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.ticker import FixedLocator, MaxNLocator, ScalarFormatter

from deltaprompts.generators.chart_kind import ChartKind, common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, image_box
from deltaprompts.generators.chart_sampling import PALETTES, Topic, _raw_values, load_topics, spread_values
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.knobs import Knob

LINE_SPAN = Knob("line_span", "choice", "random", "how much of the plot height the line's range fills: the whole "
                 "height, or the upper part (above most bars)", choices=("random", "full", "upper"),
                 difficulty="full is harder (the line crosses the bars)")
#: the least contrast (WCAG ratio) of an axis's coloured labels against the background
MIN_CONTRAST = 3.5


def _luminance(hex_color: str) -> float:
    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(int(hex_color[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _legible_pair(rng: np.random.Generator, first: str, background: str) -> tuple[str, str]:
    """Two colours of the palette holding `first` that read as text on `background`: `first` when
    it does, and another one for the line."""
    pal = next((p for p in PALETTES.values() if first.lower() in {hx for _, hx in p}), PALETTES["tableau"])
    ok = [hx for _, hx in pal if contrast(hx, background) >= MIN_CONTRAST]
    if len(ok) < 2:  # a pale palette: its two most legible colours
        ok = sorted((hx for _, hx in pal), key=lambda hx: -contrast(hx, background))[:2]
    bar = first if first in ok else ok[int(rng.integers(0, len(ok)))]
    rest = [hx for hx in ok if hx != bar]
    return bar, rest[int(rng.integers(0, len(rest)))]


def _nice_ticks(lo: float, hi: float) -> list[float]:
    """Round ticks from one at or below `lo` to one at or above `hi` (the right axis's whole range)."""
    ticks = MaxNLocator(nbins=5).tick_values(lo, hi)
    first, last = max(t for t in ticks if t <= lo), min(t for t in ticks if t >= hi)
    return [float(t) for t in ticks if first <= t <= last]


@register_kind
class DualAxis(ChartKind):
    """Bars (left axis) and a line of a second measure (right axis) over months, quarters or years."""

    name = "dual_axis"
    description = "Bars of one measure (left axis) and a line of another (right axis) over 4-12 time periods."
    n_categories, n_categories_random = (4, 12), (5, 10)
    knobs = (n_categories_knob(4, 12, "time periods"), LINE_SPAN, *common_knobs(("matplotlib",)))

    def topic_ok(self, topic: Topic) -> bool:
        return "dual_axis" in topic.kinds and "right" in topic.measures

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        # always a legend (two measures), under the axes: inside it would cover the line or the bars,
        # and on the right it would take the width the right-hand axis already narrows
        return True, "outside bottom"

    def auto_rotation(self, categories: list[str], style: Any) -> int:
        # as the shared rule, for a plot narrowed by a second axis's ticks and label
        char_px = 0.58 * style.font_size * style.dpi / 72
        slot = 0.66 * style.width_px / len(categories)
        widest = max(len(c) for c in categories) * char_px + 8
        if widest <= slot:
            return 0
        return 45 if char_px * 1.6 <= slot else 90

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        right = topic.measures["right"]
        dec = data.style.value_decimals
        raw = _raw_values(rng, topic.model_copy(update={"range": right.range}), 1, len(data.categories))
        line = spread_values(raw, dec, float(knobs["min_gap_pct"]), rng)[0]
        bar_color, line_color = _legible_pair(rng, data.series[0].color, data.style.background)
        span = knobs.get("line_span", "random")
        span = span if span != "random" else ("full", "upper")[int(rng.integers(0, 2))]
        bars = data.series[0].model_copy(update={"name": topic.value_noun[:1].upper() + topic.value_noun[1:],
                                                 "color": bar_color})
        data.series = [bars, bars.model_copy(update={"name": right.noun[:1].upper() + right.noun[1:],
                                                     "values": [float(v) for v in line], "color": line_color})]
        data.extra = {"right_noun": right.noun, "right_unit": right.unit, "right_label": right.label,
                      "line_span": span}
        data.style.value_labels = False  # two scales: labels on bars and points would crowd the line
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        bars, line = data.series
        x = np.arange(len(data.categories), dtype=float)
        rects = ax.bar(x, bars.values, width=st.bar_width, color=bars.color, label=bars.name, zorder=2)
        d.marks += [Mark(id=f"s0c{c}", series=0, category=c, artist=r) for c, r in enumerate(rects.patches)]
        top = max(bars.values) * 1.12
        ax.set_ylim(0, top)
        ax.set_xticks(list(x), data.categories)
        ax.set_xlim(-0.6, len(x) - 0.4)
        vals = np.array(line.values)
        spread = float(vals.max() - vals.min()) or 1.0
        below = 0.15 if data.extra["line_span"] == "full" else 1.2  # room under the line, in line spreads
        ticks = _nice_ticks(max(vals.min() - below * spread, 0.0), vals.max() + 0.15 * spread)
        r_lo, r_hi = ticks[0], ticks[-1]
        to_left = lambda r: (np.asarray(r, dtype=float) - r_lo) / (r_hi - r_lo) * top  # noqa: E731
        to_right = lambda y: r_lo + np.asarray(y, dtype=float) / top * (r_hi - r_lo)  # noqa: E731
        ys = to_left(vals)
        ax.plot(x, ys, color=line.color, linewidth=st.line_width, marker="o", markersize=MARKER_PT, label=line.name,
                zorder=4)
        d.marks += [Mark(id=f"s1c{c}", series=1, category=c, point=(float(x[c]), float(ys[c]))) for c in range(len(x))]
        sec = ax.secondary_yaxis("right", functions=(to_right, to_left))
        # fixed ticks: the layout measures them before the secondary axis is drawn at its final size
        sec.yaxis.set_major_locator(FixedLocator(ticks))
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        sec.yaxis.set_major_formatter(fmt)
        sec.tick_params(colors=line.color, labelsize=st.font_size, length=0 if st.theme == "gray" else 3.5)
        sec.spines["right"].set_visible("right" in theme["spines"] or st.theme == "minimal")
        sec.spines["right"].set_color(line.color)
        sec.set_ylabel(data.extra["right_label"], fontsize=st.font_size * 1.05, color=line.color)
        d.extras["right_axis"] = sec  # read back by laid_out_texts and facts_extra

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        # the shared decoration paints the left axis in the theme's text colour; the legend is drawn
        # after it (always, for this kind), so the left axis takes its bars' colour here
        color = data.series[0].color
        d.ax.tick_params(axis="y", labelcolor=color)
        d.ax.yaxis.label.set_color(color)
        handles, labels = d.ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: labels[i] != data.series[0].name)  # bars first
        return [handles[i] for i in order], [labels[i] for i in order]

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        out.update(measure=data.series[m.series].name, axis="left" if m.series == 0 else "right")
        return out

    def context(self, data: ChartData) -> dict[str, Any]:
        unit = data.extra.get("right_unit", "")
        return {"bar_noun": data.value_noun, "line_noun": data.extra.get("right_noun", ""), "line_unit": unit,
                "line_unit_suffix": "" if not unit else ("%" if unit == "%" else f" {unit}")}

    def laid_out_texts(self, d: Drawn, data: ChartData) -> list[tuple[Any, str]]:
        """The right axis's tick labels and its label, in the Facts' texts (so the legibility checks
        and text_overlaps see them)."""
        sec = d.extras["right_axis"]
        lo, hi = sorted(map(float, sec.yaxis.get_view_interval()))
        eps = (hi - lo) * 1e-9
        locs = sec.yaxis.get_majorticklocs()
        labels = [t.label2 for loc, t in zip(locs, sec.yaxis.get_major_ticks(len(locs))) if lo - eps <= loc <= hi + eps]
        return [(t, "y2_tick") for t in labels if t.get_visible()] + [(sec.yaxis.label, "y2_label")]

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        sec, h = d.extras["right_axis"], data.style.height_px
        lo, hi = sorted(map(float, sec.yaxis.get_view_interval()))
        eps = (hi - lo) * 1e-9
        ticks = [float(t) for t in sec.yaxis.get_majorticklocs() if lo - eps <= t <= hi + eps]
        return {"axes": {"right": {"axis": "y", "range": [lo, hi], "ticks": ticks,
                                   "box": image_box(d.ax.get_window_extent(), h)}},
                "entity_reads": {m.id: {"value": "right"} for m in d.marks if m.series == 1},
                "line_span": data.extra["line_span"]}
