"""Vertical bars, one series: the kind to copy when adding one (generators/chart_kind.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import (
    TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value, ink
from deltaprompts.generators.chart_spec import ChartData


def draw_bars(kind: ChartKind, d: Drawn, data: ChartData, theme: dict[str, Any], grouped: bool = False,
              stacked: bool = False) -> None:
    """Bars of every series: side by side (`grouped`), on top of each other (`stacked`), or one
    series; horizontal when the kind is. Sets the value-axis limits and the category ticks."""
    st, ax = data.style, d.ax
    n_ser, x = len(data.series), np.arange(len(data.categories), dtype=float)
    bottom = np.zeros(len(x))
    for s, ser in enumerate(data.series):
        vals = np.array(ser.values)
        width = st.bar_width / n_ser if grouped else st.bar_width
        offset = (s - (n_ser - 1) / 2) * width if grouped else 0.0
        kw: dict[str, Any] = {"color": ser.color, "label": ser.name, "zorder": 2}
        if stacked:  # a thin background-coloured seam between segments
            kw.update(edgecolor=st.background, linewidth=0.6, bottom=bottom)
        bars = (ax.barh(x + offset, vals, height=width, **kw) if kind.horizontal
                else ax.bar(x + offset, vals, width=width, **kw))
        d.marks += [Mark(id=f"s{s}c{c}", series=s, category=c, artist=rect) for c, rect in enumerate(bars.patches)]
        if st.value_labels:
            inside = stacked
            texts = ax.bar_label(bars, labels=[fmt_value(v, st.value_decimals, data.unit) for v in vals],
                                 label_type="center" if inside else "edge", padding=0 if inside else 2,
                                 fontsize=st.font_size * 0.85, color=ink(ser.color) if inside else theme["text"])
            d.value_texts += [(t, f"s{s}c{c}") for c, t in enumerate(texts)]
        bottom = bottom + vals if stacked else np.maximum(bottom, vals)
    # first guess of the headroom; layout() widens it until labels and an inside legend fit
    head = 1.05 + 0.08 * st.value_labels + 0.22 * (st.legend and not st.legend_loc.startswith("outside"))
    if kind.horizontal:
        ax.set_xlim(0, bottom.max() * head)
        ax.set_yticks(list(x), data.categories)
        ax.invert_yaxis()  # first category at the top, as people read a ranking
    else:
        ax.set_ylim(0, bottom.max() * head)
        ax.set_xticks(list(x), data.categories)


@register_kind
class Bar(ChartKind):
    """Vertical bars, one series."""

    name = "bar"
    description = "Vertical bar chart of one series over 3-12 categories (curated topics)."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (3, 12), (4, 8)
    upright_crowded_labels = True
    knobs = (n_categories_knob(3, 12), VALUE_LABELS, TICK_ROTATION, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_bars(self, d, data, theme)
