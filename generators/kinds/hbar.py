"""Horizontal bars, one series, first category at the top."""

from __future__ import annotations

from typing import Any

from deltaprompts.generators.chart_kind import VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import Drawn
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.bar import draw_bars


@register_kind
class HBar(ChartKind):
    """Horizontal bars, one series, first category at the top."""

    name = "hbar"
    description = "Horizontal bar chart of one series over 3-12 categories."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (3, 12), (4, 10)
    horizontal = True
    knobs = (n_categories_knob(3, 12), VALUE_LABELS, *common_knobs())

    def axis_labels(self, category_label: str, value_label: str) -> tuple[str, str]:
        return value_label, category_label

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_bars(self, d, data, theme)
