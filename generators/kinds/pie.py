"""A pie of one series with percentage labels on the slices."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import ChartKind, common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import Drawn, Mark, ink
from deltaprompts.generators.chart_sampling import pie_percents, slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.knobs import Knob

SLICE_NAMES = Knob("slice_names", "choice", "random", "name slices in a legend beside the pie, or directly at the rim",
                   choices=("random", "legend", "direct"), difficulty="legend is harder (match colours)")


def draw_wedges(d: Drawn, data: ChartData, theme: dict[str, Any], hole: float = 0.0) -> None:
    """The slices of series 0 clockwise from 12 o'clock, named at the rim unless a legend names
    them, each with its percentage inside (a ring of width 1 - `hole` for a donut)."""
    st, ax, vals = data.style, d.ax, data.series[0].values
    colors = slice_colors(data)
    wedgeprops: dict[str, Any] = {"edgecolor": st.background, "linewidth": 1.0}
    if hole:
        wedgeprops["width"] = 1.0 - hole
    wedges, texts = ax.pie(vals, colors=colors, startangle=90, counterclock=False,
                           labels=None if st.legend else data.categories, labeldistance=1.08,
                           wedgeprops=wedgeprops, textprops={"color": theme["text"], "fontsize": st.font_size})
    d.category_texts = list(texts)
    total = math.fsum(vals)
    r = 0.68 if not hole else (1.0 + hole) / 2
    for c, w in enumerate(wedges):
        d.marks.append(Mark(id=f"s0c{c}", series=0, category=c, artist=w))
        ang = math.radians((w.theta1 + w.theta2) / 2)
        t = ax.text(r * math.cos(ang), r * math.sin(ang), f"{100 * vals[c] / total:.{st.value_decimals}f}%",
                    ha="center", va="center", fontsize=st.font_size * 0.9, color=ink(colors[c]))
        d.value_texts.append((t, f"s0c{c}"))
    # keep the axes box and widen the data limits instead, so the title centres over the image;
    # the limits pie() fixed must be free for that
    ax.set_autoscale_on(True)
    ax.set_aspect("equal", adjustable="datalim")


class PartsOfWhole(ChartKind):
    """What pies and donuts share: one series of parts, percentages printed, slices named by colour."""

    mark = "slice"
    axes = False
    always_value_labels = True
    marks_overlap = True
    by_category = True
    printed_attr = "percent"
    topic_kinds = ("pie",)

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        names = knobs.get("slice_names", "random")  # a legend beside the pie, or labels at the rim
        return names == "legend" or (names == "random" and rng.random() < 0.5), "outside right"

    def values(self, rng: np.random.Generator, topic: Any, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        pct = pie_percents(rng, n_cat, decimals, gap_pct)
        lo, hi = topic.range
        # values = percent * k (k whole): their shares are exactly the sampled percentages
        k = 1 if topic.unit == "%" else max(1, round(rng.uniform(lo, hi) * n_cat / 100))
        return [[round(p * k, decimals) for p in pct]]

    def axis_labels(self, category_label: str, value_label: str) -> tuple[str, str]:
        return "", ""

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        return [m.artist for m in d.marks], list(data.categories)

    def mark_colors(self, data: ChartData) -> list[str]:
        return slice_colors(data)

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        total = math.fsum(data.series[0].values)
        out["percent"] = round(100 * data.series[0].values[m.category] / total, data.style.value_decimals)
        return out


@register_kind
class Pie(PartsOfWhole):
    """A pie of one series with percentage labels on the slices."""

    name = "pie"
    description = "Pie chart of parts of a whole (2-8 slices) with percentage labels."
    renderers = ("matplotlib", "plotly")
    n_categories, n_categories_random = (2, 8), (3, 6)
    knobs = (n_categories_knob(2, 8, "slices"), SLICE_NAMES, *common_knobs())

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        draw_wedges(d, data, theme)
