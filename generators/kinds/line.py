"""Lines over an ordered (time) axis, 1-4 series."""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, fmt_value
from deltaprompts.generators.chart_spec import ChartData


def draw_lines(d: Drawn, data: ChartData, theme: dict[str, Any]) -> np.ndarray:
    """One line per series over the category positions, a Mark per point (with its value label when
    shown); returns the x positions."""
    st, ax = data.style, d.ax
    x = np.arange(len(data.categories), dtype=float)
    for s, ser in enumerate(data.series):
        ax.plot(x, ser.values, color=ser.color, linewidth=st.line_width, label=ser.name, zorder=3,
                marker="o" if st.line_markers else None, markersize=MARKER_PT, solid_capstyle="round")
        for c, v in enumerate(ser.values):
            d.marks.append(Mark(id=f"s{s}c{c}", series=s, category=c, point=(float(x[c]), float(v))))
            if st.value_labels:
                t = ax.annotate(fmt_value(v, st.value_decimals, data.unit), (x[c], v), xytext=(0, 5),
                                textcoords="offset points", ha="center", va="bottom",
                                fontsize=st.font_size * 0.8, color=theme["text"], zorder=4)
                d.value_texts.append((t, f"s{s}c{c}"))
    return x


def value_limits(d: Drawn, data: ChartData) -> None:
    """Room above the marks for value labels and an inside legend; the axis starts at 0 unless a value is negative."""
    st, ax = data.style, d.ax
    ax.margins(x=0.04, y=0.08)
    ax.autoscale_view()
    lo, hi = ax.get_ylim()
    extra = 0.1 * st.value_labels + 0.3 * (st.legend and not st.legend_loc.startswith("outside"))
    ax.set_ylim(max(lo, 0.0) if min(min(s.values) for s in data.series) >= 0 else lo, hi + (hi - lo) * extra)


@register_kind
class Line(ChartKind):
    """Lines over an ordered (time) axis, 1-4 series."""

    name = "line"
    description = "Line chart over a time axis (months, years, quarters, days, hours): 1-4 series."
    renderers = ("matplotlib", "plotly")
    mark = "point"
    n_categories, n_categories_random = (4, 12), (5, 12)
    n_series, n_series_random = (1, 4), (1, 3)
    knobs = (n_categories_knob(4, 12), n_series_knob(1, 4), VALUE_LABELS, TICK_ROTATION, LEGEND, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        x = draw_lines(d, data, theme)
        value_limits(d, data)
        d.ax.set_xticks(list(x), data.categories)
