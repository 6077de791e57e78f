"""Grouped (clustered) vertical bars: 2-4 series side by side per category."""

from __future__ import annotations

from typing import Any

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.bar import draw_bars


@register_kind
class GroupedBar(ChartKind):
    """Side-by-side bars, 2-4 series per category."""

    name = "grouped_bar"
    description = "Grouped (clustered) vertical bars: 2-4 series side by side per category."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (2, 8), (3, 6)
    n_series, n_series_random = (2, 4), (2, 3)
    upright_crowded_labels = True
    knobs = (n_categories_knob(2, 8), n_series_knob(2, 4), VALUE_LABELS, TICK_ROTATION, LEGEND, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_bars(self, d, data, theme, grouped=True)
