"""Heatmap: a matrix of rows (the series) by columns (the categories), each cell coloured on a
sequential colour map with a colour bar beside it; cell values printed when labels are on.

One Rectangle patch per cell is one Mark, so each cell's box in the Facts is exact. The chart
has no value axis (the rows' and columns' ticks name them): a cell's value is printed or it is
only compared by colour, and the ops of deltaprompts/ops/grid.py refuse a comparison of two cells
whose colours are too close to tell apart. `kind.axes` is False (the shared axis decoration
would give the y axis a number formatter); the kind styles its own ticks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_hex
from matplotlib.patches import Rectangle

from deltaprompts.generators.chart_kind import (
    VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value, image_box, ink
from deltaprompts.generators.chart_sampling import Topic
from deltaprompts.generators.chart_spec import ChartData, ChartStyle
from deltaprompts.knobs import Knob

#: sequential colour maps; viridis and cividis are colour-blind safe
COLORMAPS = ("viridis", "cividis", "magma", "YlOrRd", "Blues")
COLORMAP = Knob("colormap", "choice", "random", "sequential colour map of the cells (viridis and cividis are "
                "colour-blind safe)", choices=("random", *COLORMAPS), difficulty="none")
GAPS = Knob("cell_gaps", "choice", "random", "thin background-coloured lines between cells",
            choices=("random", "on", "off"), difficulty="none")


def cell_color(data: ChartData, value: float) -> str:
    """The colour a value gets on the chart's colour map (#rrggbb)."""
    lo, hi = data.extra["vmin"], data.extra["vmax"]
    return to_hex(colormaps[data.extra["cmap"]](Normalize(lo, hi)(value)))


@register_kind
class Heatmap(ChartKind):
    """A colour-coded matrix of rows by columns with a colour bar."""

    name = "heatmap"
    description = "Heatmap of 2-8 rows by 3-10 columns on a sequential colour map, colour bar, optional cell labels."
    mark = "cell"
    axes = False
    labels_inside = True  # a label wider than its cell is hidden (not printed)
    n_categories, n_categories_random = (3, 10), (4, 8)
    n_series, n_series_random = (2, 8), (3, 7)
    # no tick_rotation knob: slanted column names would have overlapping boxes; they stand upright when crowded
    knobs = (n_categories_knob(3, 10, "columns"), n_series_knob(2, 8), VALUE_LABELS, COLORMAP, GAPS,
             *common_knobs(("matplotlib",)))

    def topic_ok(self, topic: Topic) -> bool:
        return "heatmap" in topic.kinds

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        return False, legend_loc  # rows are named by their ticks; the colour bar is the key

    def auto_rotation(self, categories: list[str], style: ChartStyle) -> int:
        char_px = 0.58 * style.font_size * style.dpi / 72
        slot = 0.6 * style.width_px / len(categories)
        widest = max(len(c) for c in categories) * char_px + 8
        return 0 if widest <= slot else 90

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        want, gaps = knobs.get("colormap", "random"), knobs.get("cell_gaps", "random")
        vals = [v for s in data.series for v in s.values]
        data.extra = {"cmap": want if want != "random" else str(COLORMAPS[int(rng.integers(len(COLORMAPS)))]),
                      "gaps": gaps == "on" or (gaps == "random" and bool(rng.random() < 0.5)),
                      "vmin": float(min(vals)), "vmax": float(max(vals))}
        data.style.legend = False
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        n_rows, n_cols = len(data.series), len(data.categories)
        for r, ser in enumerate(data.series):
            for c, v in enumerate(ser.values):
                color = cell_color(data, v)
                rect = Rectangle((c, r), 1, 1, facecolor=color, zorder=2,
                                 edgecolor=st.background if data.extra["gaps"] else color,
                                 linewidth=1.5 if data.extra["gaps"] else 0.0)
                ax.add_patch(rect)
                d.marks.append(Mark(id=f"s{r}c{c}", series=r, category=c, artist=rect))
                if st.value_labels:
                    t = ax.text(c + 0.5, r + 0.5, fmt_value(v, st.value_decimals, data.unit), ha="center",
                                va="center", fontsize=st.font_size * 0.8, color=ink(color), zorder=3)
                    d.value_texts.append((t, f"s{r}c{c}"))
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_rows, 0)  # first row on top
        ax.set_xticks(np.arange(n_cols) + 0.5, data.categories)
        ax.set_yticks(np.arange(n_rows) + 0.5, [s.name for s in data.series])
        ax.tick_params(colors=theme["text"], labelsize=st.font_size, length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if st.tick_rotation:
            for label in ax.get_xticklabels():
                label.set(rotation=st.tick_rotation, ha="center" if st.tick_rotation == 90 else "right",
                          rotation_mode="default" if st.tick_rotation == 90 else "anchor")
        ax.set_xlabel(data.x_label, fontsize=st.font_size * 1.05, color=theme["text"])
        ax.set_ylabel(data.series_noun.capitalize(), fontsize=st.font_size * 1.05, color=theme["text"])
        d.category_texts += [t.label1 for t in ax.xaxis.get_major_ticks()[:n_cols]]
        d.category_texts += [t.label1 for t in ax.yaxis.get_major_ticks()[:n_rows]]
        # the colour bar: an inset of the axes, so it follows them when layout() moves them
        cax = ax.inset_axes([1.03, 0.0, 0.045, 1.0])
        bar = d.fig.colorbar(ScalarMappable(Normalize(data.extra["vmin"], data.extra["vmax"]),
                                            colormaps[data.extra["cmap"]]), cax=cax)
        bar.outline.set_edgecolor(theme["spine"])
        cax.tick_params(colors=theme["text"], labelsize=st.font_size * 0.9)
        bar.set_label(data.y_label, fontsize=st.font_size, color=theme["text"])
        d.extras["colorbar"] = bar  # read back in facts_extra

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        ser = data.series[m.series]
        value = round(ser.values[m.category], data.style.value_decimals)
        row, col = ser.name, data.categories[m.category]
        return {"row": row, "column": col, "series": row, "category": col, "cell": f"{row}, {col}",
                "value": value, "color": cell_color(data, ser.values[m.category])}

    def context(self, data: ChartData) -> dict[str, Any]:
        return {"row_noun": data.series_noun, "column_noun": data.category_noun}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        cax = d.extras["colorbar"].ax
        lo, hi = data.extra["vmin"], data.extra["vmax"]
        ticks = [float(t) for t in cax.yaxis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]
        # no value axis: a cell's value is printed or compared by colour only (never read off the bar)
        return {"value_axis": None, "colorbar": {"cmap": data.extra["cmap"], "range": [lo, hi], "ticks": ticks,
                                                 "box": image_box(cax.get_window_extent(), data.style.height_px)}}
