"""Radar (spider) chart: 1-3 series scored on 4-8 axes (the categories) around a circle.

The kind draws on polar axes (`make_axes`) (`kind.axes` is False: it
draws its own radial rings and their labels). Each vertex is a Mark at its (angle, radius) in the
polar axes' data coordinates, so its box is the marker around it. There is no value axis: a radial
scale is not read to a declared tolerance here, so a vertex's value is printed (value labels) or
only compared; values of one axis across series, and of one series across axes, are kept apart
by at least RADAR_GAP_PCT of the largest value so that those comparisons are visible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from deltaprompts.generators.chart_kind import (
    LEGEND, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, fmt_value
from deltaprompts.generators.chart_sampling import Topic, _raw_values, spread_values
from deltaprompts.generators.chart_spec import ChartData, ChartStyle
from deltaprompts.knobs import Knob

#: least gap between compared vertices, in % of the largest value (a radius judged by eye)
RADAR_GAP_PCT = 9.0
FILL = Knob("fill", "choice", "random", "shade the area inside each series' polygon", choices=("random", "on", "off"),
            difficulty="none")


@register_kind
class Radar(ChartKind):
    """1-3 series over 4-8 axes on a circle."""

    name = "radar"
    description = "Radar chart: 1-3 series scored on 4-8 axes (criteria), own radial rings, optional value labels."
    mark = "point"
    axes = False
    n_categories, n_categories_random = (4, 8), (5, 8)
    n_series, n_series_random = (1, 3), (1, 3)
    knobs = (n_categories_knob(4, 8, "axes of the radar"), n_series_knob(1, 3), VALUE_LABELS, LEGEND, FILL,
             *common_knobs(("matplotlib",)))

    def topic_ok(self, topic: Topic) -> bool:
        return "radar" in topic.kinds

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        # an inside legend would sit on the circle: always beside or below it
        return legend, legend_loc if legend_loc.startswith("outside") else "outside right"

    def auto_rotation(self, categories: list[str], style: ChartStyle) -> int:
        return 0

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        lo, _ = topic.range  # spreading pushes values up: start from the lower two thirds of the range
        raw = lo + (_raw_values(rng, topic, n_ser, n_cat) - lo) * 0.65
        return spread_values(raw, decimals, max(gap_pct, RADAR_GAP_PCT), rng).tolist()

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        fill = knobs.get("fill", "random")
        data.extra = {"fill": fill == "on" or (fill == "random" and bool(rng.random() < 0.6))}
        if len(data.series) > 1 and rng.random() < 0.7:
            self._stand_out(rng, data)
        return data

    @staticmethod
    def _stand_out(rng: np.random.Generator, data: ChartData) -> None:
        """Raise the leading series on one axis so that it stands clearly apart from every other
        series there (a widest gap one can see); kept only if the series' values stay apart."""
        dec, n = data.style.value_decimals, len(data.categories)
        k = int(rng.integers(n))
        vals = [list(s.values) for s in data.series]
        top = max(range(len(vals)), key=lambda s: vals[s][k])
        need = max(max(abs(vals[top][c] - vals[j][c]) for c in range(n) if c != k) * 1.6 + vals[j][k]
                   for j in range(len(vals)) if j != top)
        new = round(max(vals[top][k], need), dec)
        row = vals[top][:k] + vals[top][k + 1:]
        gap = RADAR_GAP_PCT / 100 * max(max(v) for v in vals)
        if all(abs(new - v) >= gap for v in row) and new <= 1.25 * max(max(v) for v in vals):
            data.series[top].values[k] = float(new)

    def make_axes(self, fig: Any) -> Any:
        return fig.add_subplot(projection="polar")

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st = data.style
        ax = d.ax
        ax.set_facecolor(theme["face"] or st.background)
        ax.set_theta_offset(math.pi / 2)  # first axis at the top, then clockwise
        ax.set_theta_direction(-1)
        n = len(data.categories)
        theta = [2 * math.pi * k / n for k in range(n)]
        top = max(max(s.values) for s in data.series)
        ticks = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(0, top)
        ticks = [float(t) for t in ticks if t > 0]
        rmax = ticks[-1] if ticks[-1] >= top * 1.04 else ticks[-1] + (ticks[-1] - (ticks[-2] if len(ticks) > 1 else 0))
        ticks = [t for t in ticks if t <= rmax] + ([rmax] if rmax not in ticks else [])
        ax.set_ylim(0, rmax)
        # polygon rings (not circles) and spokes, in the grid colour
        ax.grid(False)
        ax.spines["polar"].set_visible(False)
        ring_theta = theta + [theta[0]]
        for t in ticks:
            ax.plot(ring_theta, [t] * (n + 1), color=theme["grid"], linewidth=0.8, zorder=1)
        for a in theta:
            ax.plot([a, a], [0, rmax], color=theme["grid"], linewidth=0.8, zorder=1)
        ax.set_yticks(ticks, [fmt_value(t, 0 if float(t).is_integer() else 1, data.unit) for t in ticks])
        ax.set_rlabel_position(180 / n)  # between the first two axes
        ax.tick_params(axis="y", colors=theme["text"], labelsize=st.font_size * 0.8)
        ax.set_xticks(theta, data.categories)
        ax.tick_params(axis="x", colors=theme["text"], labelsize=st.font_size, pad=6)
        for a, label in zip(theta, ax.get_xticklabels()):
            s = math.sin(a)  # right of centre: left-aligned, left of centre: right-aligned
            label.set_horizontalalignment("center" if abs(s) < 0.2 else ("left" if s > 0 else "right"))
        for s, ser in enumerate(data.series):
            vals = list(ser.values)
            ax.plot(ring_theta, vals + vals[:1], color=ser.color, linewidth=st.line_width, label=ser.name, zorder=3,
                    marker="o", markersize=MARKER_PT)
            if data.extra.get("fill"):
                ax.fill(ring_theta, vals + vals[:1], color=ser.color, alpha=0.12, zorder=2)
            for c, v in enumerate(vals):
                d.marks.append(Mark(id=f"s{s}c{c}", series=s, category=c, point=(theta[c], float(v))))
                if st.value_labels:
                    # the highest vertex of an axis is labelled outward, the lowest inward, a middle one aside
                    rank = sorted(x.values[c] for x in data.series).index(v)
                    a = theta[c] + (0.0 if rank == len(data.series) - 1 else
                                    (math.pi if rank == 0 else math.pi / 2))
                    dx, dy = 10 * math.sin(a), 10 * math.cos(a)
                    t = ax.annotate(fmt_value(v, st.value_decimals, data.unit), (theta[c], v), xytext=(dx, dy),
                                    textcoords="offset points", ha="center", va="center",
                                    fontsize=st.font_size * 0.75, color=ser.color if st.theme != "dark" else
                                    theme["text"], zorder=4,
                                    bbox={"boxstyle": "round,pad=0.1", "fc": theme["face"] or st.background,
                                          "ec": "none", "alpha": 0.85})
                    d.value_texts.append((t, f"s{s}c{c}"))
        d.category_texts += [t.label1 for t in ax.xaxis.get_major_ticks()[:n]]

    def context(self, data: ChartData) -> dict[str, Any]:
        return {"axis_noun": data.category_noun}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        ticks = [float(t) for t in d.ax.yaxis.get_majorticklocs()]
        return {"radial_axis": {"range": [float(v) for v in d.ax.get_ylim()], "ticks": ticks}}
