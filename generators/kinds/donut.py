"""A donut: a pie of one series drawn as a ring, percentages on the ring, the total printed in the hole.

The hole's size is drawn per chart (40-60% of the radius, `ChartData.extra["hole"]`). The total is
the sum of the parts (not shown for percent topics, whose parts already sum to 100%); the kind
declares it as the field `total` (`fields`), printed in the hole as the text `total_text`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import Drawn, fmt_value
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.pie import SLICE_NAMES, PartsOfWhole, draw_wedges

HOLE = (0.4, 0.6)
TOTAL_WORD = "Total"


def donut_total(data: ChartData) -> float | None:
    """The total printed in the hole (the sum of the parts at the chart's decimals); None for a
    percent topic, whose parts sum to 100% by construction."""
    if data.unit == "%":
        return None
    return round(math.fsum(data.series[0].values), data.style.value_decimals)


def total_text(data: ChartData) -> str | None:
    """The number printed in the hole, or None when none is."""
    total = donut_total(data)
    return None if total is None else fmt_value(total, data.style.value_decimals, data.unit)


@register_kind
class Donut(PartsOfWhole):
    """A ring of parts of a whole with its total in the centre."""

    name = "donut"
    description = "Donut chart of parts of a whole (2-8 slices): percentages on the ring, the total in the hole."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (2, 8), (3, 6)
    knobs = (n_categories_knob(2, 8, "slices"), SLICE_NAMES, *common_knobs())

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        data.extra = {"hole": round(float(rng.uniform(*HOLE)), 2)}
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        hole = float(data.extra.get("hole", 0.5))
        draw_wedges(d, data, theme, hole=hole)
        text = total_text(data)
        if text is not None:
            st = data.style
            d.other_texts.append((d.ax.text(0, 0.16 * hole, TOTAL_WORD, ha="center", va="center",
                                            fontsize=st.font_size * 0.9, color=theme["text"]), "label"))
            d.field_texts.append((d.ax.text(0, -0.1 * hole, text, ha="center", va="center",
                                            fontsize=st.font_size * 1.25, fontweight="bold", color=theme["text"]),
                                  "total"))

    def fields(self, data: ChartData) -> dict[str, Any]:
        """Facts.fields this kind adds: the total in the hole (when printed)."""
        total = donut_total(data)
        return {} if total is None else {"total": total}
