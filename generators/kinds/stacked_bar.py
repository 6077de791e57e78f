"""Stacked vertical bars: 2-4 series stacked per category."""

from __future__ import annotations

from typing import Any

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.bar import draw_bars


@register_kind
class StackedBar(ChartKind):
    """Stacked bars, 2-4 series per category."""

    name = "stacked_bar"
    description = "Stacked vertical bars: 2-4 series stacked per category; labels inside segments that fit."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (2, 10), (3, 7)
    n_series, n_series_random = (2, 4), (2, 4)
    labels_inside = True
    knobs = (n_categories_knob(2, 10), n_series_knob(2, 4), VALUE_LABELS, TICK_ROTATION, LEGEND, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_bars(self, d, data, theme, stacked=True)

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        handles, labels = d.ax.get_legend_handles_labels()
        return handles[::-1], labels[::-1]  # list entries top to bottom, as the segments stack
