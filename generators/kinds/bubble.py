"""Bubble chart: named points over two measures, a third measure as each bubble's area.

Like the scatter kind (its helpers are reused): x in `ChartData.extra["x"]` read against a declared
x axis, y the series value; the third measure is `extra["size"]`, drawn as the bubble's area
(area proportional to size, so the diameter to its square root) and explained by a size legend.
Sizes are either printed on the bubbles (`value_labels`; Facts `printed[id]["size"]`) or only
comparable by eye: a question reading a size then needs the label, and one comparing sizes does
not (sorted sizes differ by at least `MIN_SIZE_RATIO` in area). Each bubble has its own colour
and its name beside it; larger bubbles lie under smaller ones, and the points are placed apart
so that no bubble's centre is covered.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import matplotlib
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from deltaprompts.generators.chart_kind import (
    VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value, ink
from deltaprompts.generators.chart_sampling import Topic, color_name, load_topics, slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.scatter import axis_facts, distinct_round
from deltaprompts.knobs import Knob

SIZE_LEGEND = Knob("size_legend", "choice", "random", "where the size legend (reference bubbles) sits",
                   choices=("random", "right", "bottom"), difficulty="none")
#: sorted sizes differ at least this much (as an area ratio), so "which is bigger" has a visible answer
MIN_SIZE_RATIO = 1.2
#: the largest bubble over the smallest, at most (keeps the small ones visible and the big ones in bounds)
MAX_SIZE_RATIO = 6.0
#: the largest bubble's diameter as a share of the image's shorter side
MAX_DIAMETER = 0.11
#: axis limits extend this share of the data span beyond it on each side (room for the bubbles),
#: and above it TOP_MARGIN (room for the names over the top bubbles)
MARGIN = 0.12
TOP_MARGIN = 0.22
#: room for a bubble's name, as a share of the axes width added to its radius when placing
LABEL_ROOM = 0.035


def bubble_sizes(rng: np.random.Generator, lo: float, hi: float, n: int, decimals: int) -> np.ndarray:
    """n sizes in [lo, hi] (shuffled), the sorted ones at least MIN_SIZE_RATIO apart, at most MAX_SIZE_RATIO
    from smallest to largest, distinct at `decimals`."""
    total = min(math.log(MAX_SIZE_RATIO), math.log(hi / lo))
    step = math.log(MIN_SIZE_RATIO)
    if (n - 1) * step > total:
        gaps = np.full(n - 1, total / (n - 1))
    else:
        gaps = step + rng.dirichlet(np.full(n - 1, 2.0)) * (total - (n - 1) * step) * float(rng.uniform(0.6, 1.0))
    logs = np.concatenate([[0.0], np.cumsum(gaps)])
    s0 = float(rng.uniform(lo, hi / math.exp(logs[-1])))
    sizes = np.round(s0 * np.exp(logs), decimals)
    unit = 10.0 ** -decimals
    for k in range(1, n):  # rounding must not make two equal
        sizes[k] = max(sizes[k], round(sizes[k - 1] + unit, decimals))
    return sizes[rng.permutation(n)]


def place(rng: np.random.Generator, radii: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (u, v) in [0, 1]^2 for bubbles of these radii (as shares of the axes width, the
    height being `aspect` times the width), each pair at least their summed radii (plus room for
    the names) apart, with a random linear trend; crowded ones a little closer."""
    n = len(radii)
    sign = 1.0 if rng.random() < 0.6 else -1.0
    strength = float(rng.uniform(0.3, 0.8))
    radii = radii + LABEL_ROOM
    for _ in range(20):
        us, vs = np.zeros(n), np.zeros(n)
        ok = True
        for i in np.argsort(-radii):  # the big ones first: they need the most room
            for _ in range(200):
                u = float(rng.uniform(0.0, 1.0))
                v = float(np.clip(0.5 + sign * strength * (u - 0.5) + rng.normal(0, 0.25), 0.0, 1.0))
                placed = [j for j in range(n) if us[j] or vs[j]]
                if all(math.hypot((u - us[j]) / (1 + 2 * MARGIN), (v - vs[j]) / (1 + MARGIN + TOP_MARGIN) * aspect)
                       >= radii[i] + radii[j] for j in placed):
                    us[i], vs[i] = max(u, 1e-6), v
                    break
            else:
                ok = False
                break
        if ok:
            return us, vs
        radii = radii * 0.95  # crowded: allow it a little closer next time
    return us, vs


@register_kind
class Bubble(ChartKind):
    """Named bubbles over two measures; the area shows a third."""

    name = "bubble"
    description = "Bubble chart of 5-10 named points over two measures, a third as bubble area, with a size legend."
    mark = "bubble"
    n_categories, n_categories_random = (5, 10), (5, 8)
    by_category = True
    marks_overlap = True  # bubbles may touch; a size label sits on its own bubble
    printed_attr = "size"
    knobs = (n_categories_knob(5, 10, "bubbles"), VALUE_LABELS, SIZE_LEGEND, *common_knobs(("matplotlib",)))

    def auto_rotation(self, categories: list[str], style: Any) -> int:
        return 0  # the x axis is numeric

    def topic_ok(self, topic: Topic) -> bool:
        return "bubble" in topic.kinds and "x" in topic.measures and "size" in topic.measures

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        where = knobs.get("size_legend", "random")
        if where == "random":
            where = "right" if rng.random() < 0.6 else "bottom"
        return True, f"outside {where}"

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        return [[0.0] * n_cat]  # drawn with x and size in finish(), which needs them together

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        n, dec, st = len(data.categories), data.style.value_decimals, data.style
        mx, ms = topic.measures["x"], topic.measures["size"]
        sizes = bubble_sizes(rng, *ms.range, n, dec)
        d_max = MAX_DIAMETER * min(st.width_px, st.height_px)
        # the axes take about 60% of the width and 60% of the height (title, ticks, a legend around them)
        radii = 0.5 * d_max * np.sqrt(sizes / sizes.max()) / (0.6 * st.width_px)
        us, vs = place(rng, radii, 0.6 * st.width_px / (0.6 * st.height_px))
        (xlo, xhi), (ylo, yhi) = mx.range, topic.range
        xs = distinct_round(xlo + us * (xhi - xlo), dec, 0.0)
        ys = distinct_round(ylo + vs * (yhi - ylo), dec, 0.0)
        data.series[0].values = [float(v) for v in ys]
        data.extra = {"x": [float(v) for v in xs], "size": [float(v) for v in sizes],
                      "x_noun": mx.noun, "x_unit": mx.unit, "x_range": [xlo, xhi], "y_range": [ylo, yhi],
                      "size_noun": ms.noun, "size_unit": ms.unit, "size_label": ms.label}
        data.x_label, data.y_label = mx.label, topic.value_label
        return data

    def diameter_pt(self, data: ChartData, size: float) -> float:
        """A bubble's diameter in points: the largest MAX_DIAMETER of the image, area proportional to size."""
        st = data.style
        d_max = MAX_DIAMETER * min(st.width_px, st.height_px) * 72 / st.dpi
        return d_max * math.sqrt(size / max(data.extra["size"]))

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        xs, ys, sizes = data.extra["x"], data.series[0].values, data.extra["size"]
        colors = slice_colors(data)
        char_px = 0.6 * 0.75 * st.font_size * st.dpi / 72
        for rank, c in enumerate(sorted(range(len(xs)), key=lambda i: -sizes[i])):  # big ones underneath
            diam = self.diameter_pt(data, sizes[c])
            (line,) = ax.plot([xs[c]], [ys[c]], linestyle="none", marker="o", markersize=diam,
                              markerfacecolor=colors[c], markeredgecolor=st.background, markeredgewidth=1.0,
                              zorder=2 + 0.01 * rank)
            d.marks.append(Mark(id=f"s0c{c}", series=0, category=c, artist=line))
            d.category_texts.append(ax.annotate(data.categories[c], (xs[c], ys[c]), xytext=(0, diam / 2 + 2),
                                                textcoords="offset points", ha="center", va="bottom",
                                                fontsize=st.font_size * 0.8, color=theme["text"], zorder=5))
            if st.value_labels:
                text = fmt_value(sizes[c], st.value_decimals, "")
                inside = len(text) * char_px + 4 <= 0.9 * diam * st.dpi / 72
                t = ax.annotate(text, (xs[c], ys[c]), xytext=(0, 0 if inside else -diam / 2 - 2),
                                textcoords="offset points", ha="center", va="center" if inside else "top",
                                fontsize=st.font_size * 0.75, color=ink(colors[c]) if inside else theme["text"],
                                zorder=5)
                d.value_texts.append((t, f"s0c{c}"))
        d.marks.sort(key=lambda m: m.category)
        (xlo, xhi), (ylo, yhi) = data.extra["x_range"], data.extra["y_range"]
        ax.set_xlim(xlo - MARGIN * (xhi - xlo), xhi + MARGIN * (xhi - xlo))
        ax.set_ylim(ylo - MARGIN * (yhi - ylo), yhi + TOP_MARGIN * (yhi - ylo))

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        """A size legend: a header naming the measure, then three reference bubbles to scale."""
        sizes = data.extra["size"]
        lo, hi = min(sizes), max(sizes)
        refs = [v for v in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if 0.75 * lo <= v <= hi]
        refs = [refs[0], refs[len(refs) // 2], refs[-1]] if len(refs) >= 3 else refs
        refs = list(dict.fromkeys(refs))
        big = self.diameter_pt(data, refs[-1])
        # rows as tall as the largest reference bubble (restored when the render's rc_context ends)
        fs = data.style.font_size * 0.95
        matplotlib.rcParams.update({"legend.handleheight": big / fs, "legend.handlelength": big / fs,
                                    "legend.labelspacing": 0.4, "legend.columnspacing": 1.0})
        theme_text = "#e6e6e6" if data.style.theme == "dark" else "#333333"
        handles: list[Any] = [Line2D([], [], linestyle="none", marker="")]
        handles += [Line2D([], [], linestyle="none", marker="o", markersize=self.diameter_pt(data, v),
                           markerfacecolor="none", markeredgecolor=theme_text, markeredgewidth=1.0) for v in refs]
        header = textwrap.fill(data.extra["size_label"], max(12, len(data.extra["size_label"]) // 2 + 1))
        return handles, [header, *(f"{v:g}" for v in refs)]

    def mark_colors(self, data: ChartData) -> list[str]:
        return slice_colors(data)

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        dec = data.style.value_decimals
        return {"series": data.series[0].name, "category": data.categories[m.category],
                "value": round(data.series[0].values[m.category], dec),
                "x": round(data.extra["x"][m.category], dec), "size": round(data.extra["size"][m.category], dec),
                "color_name": color_name(color), "color": color}

    def context(self, data: ChartData) -> dict[str, Any]:
        return {"x_noun": data.extra.get("x_noun", ""), "x_unit": data.extra.get("x_unit", ""), "trend": False,
                "size_noun": data.extra.get("size_noun", ""), "size_unit": data.extra.get("size_unit", "")}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        return {"axes": {"x": axis_facts(d.ax, "x", data.style.height_px)}, "reads": {"x": "x"}}
