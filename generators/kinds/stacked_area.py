"""Stacked areas: 2-4 series stacked over an ordered (time) axis.

Each mark is a point on the top edge of its layer, so its box sits at the running total (`top`);
its `value` is the layer's own value. A layer's own value read off the axis is two readings (top
minus bottom), which a single-reading tolerance would understate: the Facts therefore give no value
axis for `value` (it is only readable where printed, and nothing prints it) and declare the y axis
for `top` instead (extra["axes"], extra["reads"]). Value labels, when shown, print the totals above
the top layer. Questions ask for totals (tops) and compare layers (which one is thickest).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark
from deltaprompts.generators.chart_sampling import Topic, _raw_values, spread_values
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.area import area_tops, draw_areas
from deltaprompts.generators.kinds.scatter import axis_facts

#: layers of one period differ by at least this % of the largest value (which layer is thickest must show)
LAYER_GAP_PCT = 6.0
#: the largest total exceeds the runner-up by at least this fraction of it (the peak period must show)
PEAK_MARGIN = 0.04


@register_kind
class StackedArea(ChartKind):
    """Stacked areas, 2-4 series over a time axis; marks at the top of each layer."""

    name = "stacked_area"
    description = "Stacked area chart over a time axis: 2-4 layers; totals printed above the top layer when labelled."
    renderers = ("matplotlib", "plotly")
    mark = "point"
    printed_attr = "top"
    n_categories, n_categories_random = (4, 12), (5, 10)
    n_series, n_series_random = (2, 4), (2, 4)
    knobs = (n_categories_knob(4, 12), n_series_knob(2, 4), VALUE_LABELS, TICK_ROTATION, LEGEND, *common_knobs())

    def topic_ok(self, topic: Topic) -> bool:
        # summable quantities over time: the line topics that also stack as bars
        return topic.ordered and "line" in topic.kinds and "stacked_bar" in topic.kinds

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        gap = max(gap_pct, LAYER_GAP_PCT)
        for _ in range(20):
            vals = spread_values(_raw_values(rng, topic, n_ser, n_cat), decimals, gap, rng)
            totals = np.sort(vals.sum(axis=0))
            if totals[-1] - totals[-2] >= PEAK_MARGIN * totals[-1]:
                return vals.tolist()
        # no clear peak drawn: raise the largest period's top layer until it is one (values stay distinct)
        top, c = vals.sum(axis=0), int(np.argmax(vals.sum(axis=0)))
        step = 10.0 ** -decimals
        bump = np.ceil((np.sort(top)[-2] / (1 - PEAK_MARGIN) - top[c]) / step + 1) * step
        used = set(np.round(vals, decimals).ravel().tolist())
        v = round(float(vals[-1, c] + max(bump, step)), decimals)
        while v in used:
            v = round(v + step, decimals)
        vals[-1, c] = v
        return vals.tolist()

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_areas(d, data, theme, stacked=True)

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        handles, labels = d.ax.get_legend_handles_labels()
        return handles[::-1], labels[::-1]  # top layer first, as the layers stack

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        out["top"] = area_tops(data, True)[m.series][m.category]
        return out

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        return {"value_axis": None, "axes": {"y": axis_facts(d.ax, "y", data.style.height_px)}, "reads": {"top": "y"}}
