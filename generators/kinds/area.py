"""Filled areas under 1-3 lines over an ordered (time) axis; the shared drawing of (stacked) areas.

An area chart is a line chart whose lines are filled down to zero: the marks are the points on the
lines (as a line chart's), their Facts read like a line's. Overlapping fills are translucent (at
most three series; alpha falls with their number) and every line is drawn above every fill, so a
series' outline stays visible wherever another series' area covers it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, fmt_value
from deltaprompts.generators.chart_spec import ChartData

#: fill opacity of overlapping areas by number of series: overlaps of two or three stay distinguishable
AREA_ALPHA = {1: 0.35, 2: 0.28, 3: 0.22}
#: fill opacity of stacked layers (they never overlap; the layer's line shows its top edge)
STACK_ALPHA = 0.6


def area_alpha(n_series: int, stacked: bool) -> float:
    """The fill opacity both renderers use for an area chart of `n_series`."""
    return STACK_ALPHA if stacked else AREA_ALPHA.get(n_series, 0.2)


def area_tops(data: ChartData, stacked: bool) -> list[list[float]]:
    """Per series, the y of its line at each category: its values, or the running sums when stacked
    (rounded to the chart's decimals, so they are the printed totals exactly)."""
    dec, out, bottom = data.style.value_decimals, [], [0.0] * len(data.categories)
    for ser in data.series:
        top = [round(b + v, dec) if stacked else v for b, v in zip(bottom, ser.values)]
        out.append(top)
        bottom = top if stacked else bottom
    return out


def draw_areas(d: Drawn, data: ChartData, theme: dict[str, Any], stacked: bool = False) -> None:
    """Fills (to zero, or between stacked layers) under all series, then each series' line with a
    Mark per point at its top; value labels above the points (when stacked: the totals, on the top
    layer only). Sets the value-axis limits and the category ticks."""
    st, ax = data.style, d.ax
    x = np.arange(len(data.categories), dtype=float)
    tops = area_tops(data, stacked)
    alpha = area_alpha(len(data.series), stacked)
    bottom = np.zeros(len(x))
    for s, ser in enumerate(data.series):
        top = np.array(tops[s])
        ax.fill_between(x, bottom if stacked else 0.0, top, color=ser.color, alpha=alpha, linewidth=0, zorder=2)
        bottom = top if stacked else bottom
    last = len(data.series) - 1
    for s, ser in enumerate(data.series):
        ax.plot(x, tops[s], color=ser.color, linewidth=st.line_width, label=ser.name, zorder=3,
                marker="o" if st.line_markers else None, markersize=MARKER_PT, solid_capstyle="round")
        for c, y in enumerate(tops[s]):
            d.marks.append(Mark(id=f"s{s}c{c}", series=s, category=c, point=(float(x[c]), float(y))))
            if st.value_labels and (not stacked or s == last):
                t = ax.annotate(fmt_value(y, st.value_decimals, data.unit), (x[c], y), xytext=(0, 5),
                                textcoords="offset points", ha="center", va="bottom",
                                fontsize=st.font_size * 0.8, color=theme["text"], zorder=4)
                d.value_texts.append((t, f"s{s}c{c}"))
    lo = min(0.0, min(min(t) for t in tops))
    hi = max(max(t) for t in tops)
    head = 1.06 + 0.1 * st.value_labels + 0.3 * (st.legend and not st.legend_loc.startswith("outside"))
    ax.set_ylim(lo, lo + (hi - lo) * head)  # layout() widens it further until labels and legend fit
    ax.set_xlim(-0.04 * (len(x) - 1), (len(x) - 1) * 1.04)
    ax.set_xticks(list(x), data.categories)


@register_kind
class Area(ChartKind):
    """Filled areas under 1-3 lines over an ordered (time) axis."""

    name = "area"
    description = "Area chart over a time axis: 1-3 translucent filled series, lines drawn above the fills."
    renderers = ("matplotlib", "plotly")
    mark = "point"
    topic_kinds = ("line",)
    n_categories, n_categories_random = (4, 12), (5, 12)
    n_series, n_series_random = (1, 3), (1, 3)
    knobs = (n_categories_knob(4, 12), n_series_knob(1, 3), VALUE_LABELS, TICK_ROTATION, LEGEND, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_areas(d, data, theme)
