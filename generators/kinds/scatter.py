"""Scatter plot of named points over two measures, with an optional fitted trend line.

The worked example of a kind whose data is not one value per category: the x values live in
`ChartData.extra["x"]`, the points are named by the categories (a label beside each point), and
the Facts declare the x axis (`extra["axes"]`, `extra["reads"]`) so that a question reading a
point's x gets a tolerance from that axis, as one reading its value (y) does from the y axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import ChartKind, common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, image_box
from deltaprompts.generators.chart_sampling import Topic
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.knobs import Knob

TREND = Knob("trend", "choice", "random", "draw the least-squares trend line", choices=("random", "on", "off"),
             difficulty="off is harder (the trend must be judged by eye)")
OUTLIER = Knob("outlier", "choice", "random", "one point placed well off the trend", choices=("random", "yes", "no"),
               difficulty="none")


def axis_facts(ax: Any, which: str, height: int) -> dict[str, Any]:
    """An axis as Facts declare it for reading values: its direction, view range, visible ticks and the axes box."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(map(float, axis.get_view_interval()))
    eps = (hi - lo) * 1e-9
    ticks = [float(t) for t in axis.get_majorticklocs() if lo - eps <= t <= hi + eps]
    return {"axis": which, "range": [lo, hi], "ticks": ticks, "box": image_box(ax.get_window_extent(), height)}


def distinct(rng: np.random.Generator, lo: float, hi: float, n: int, decimals: int) -> np.ndarray:
    """n values in [lo, hi], distinct at `decimals` and at least 2% of the range apart."""
    gap = 0.02 * (hi - lo)
    for _ in range(50):
        xs = np.round(rng.uniform(lo, hi, size=n), decimals)
        s = np.sort(xs)
        if len(set(xs.tolist())) == n and (n < 2 or np.min(np.diff(s)) >= gap):
            return xs
    return np.round(np.linspace(lo, hi, n), decimals)[rng.permutation(n)]  # evenly spread: always distinct


@register_kind
class Scatter(ChartKind):
    """Named points over two measures; a trend line when asked."""

    name = "scatter"
    description = "Scatter plot of 6-14 named points over two measures, optional trend line and outlier."
    mark = "point"
    category_text_role = "point_label"  # the name beside each point: checked for legibility
    n_categories, n_categories_random = (5, 14), (6, 11)
    knobs = (n_categories_knob(5, 14, "points"), TREND, OUTLIER, *common_knobs(("matplotlib",)))

    def auto_rotation(self, categories: list[str], style: Any) -> int:
        return 0  # the x axis is numeric: its tick labels are short

    def topic_ok(self, topic: Topic) -> bool:
        return "scatter" in topic.kinds and "x" in topic.measures

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        return [[0.0] * n_cat]  # drawn with the x values in finish(), which needs them together

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        from deltaprompts.generators.chart_sampling import load_topics

        topic = next(t for t in load_topics() if t.id == data.topic)
        n, dec = len(data.categories), data.style.value_decimals
        xlo, xhi = topic.measures["x"].range
        ylo, yhi = topic.range
        xs = distinct(rng, xlo, xhi, n, dec)
        sign = 1.0 if rng.random() < 0.6 else -1.0
        strength = float(rng.uniform(0.55, 0.95))
        t = (xs - xlo) / (xhi - xlo)
        base = 0.5 + sign * strength * (t - 0.5)
        ys = ylo + (yhi - ylo) * np.clip(base + rng.normal(0, 0.08 * (1.2 - strength), size=n), 0.02, 0.98)
        want = knobs.get("outlier", "random")
        if want == "yes" or (want == "random" and rng.random() < 0.5):
            k = int(rng.integers(0, n))  # pushed to the far side of the trend
            ys[k] = ylo + (yhi - ylo) * (0.08 if base[k] > 0.5 else 0.92)
        ys = distinct_round(ys, dec, 0.01 * (yhi - ylo))
        trend = knobs.get("trend", "random")
        data.series[0].values = [float(v) for v in ys]
        data.extra = {"x": [float(v) for v in xs], "x_noun": topic.measures["x"].noun,
                      "x_unit": topic.measures["x"].unit,
                      "trend": trend == "on" or (trend == "random" and bool(rng.random() < 0.5))}
        data.x_label = topic.measures["x"].label
        data.y_label = topic.value_label
        data.style.legend = False
        data.style.value_labels = False
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        ax, ser = d.ax, data.series[0]
        xs, ys = data.extra["x"], ser.values
        ax.plot(xs, ys, linestyle="none", marker="o", markersize=MARKER_PT, color=ser.color, zorder=3,
                label=ser.name)
        for c, (x, y) in enumerate(zip(xs, ys)):
            d.marks.append(Mark(id=f"s0c{c}", series=0, category=c, point=(float(x), float(y))))
        ax.margins(x=0.08, y=0.1)
        ax.autoscale_view()
        place_labels(d, data, theme)
        if data.extra.get("trend"):
            slope, icept = np.polyfit(xs, ys, 1)
            lo, hi = min(xs), max(xs)
            ax.plot([lo, hi], [slope * lo + icept, slope * hi + icept], color=theme["spine"], linestyle="--",
                    linewidth=1.2, zorder=2)

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        out["x"] = round(data.extra["x"][m.category], data.style.value_decimals)
        return out

    def context(self, data: ChartData) -> dict[str, Any]:
        unit = data.extra.get("x_unit", "")
        return {"x_noun": data.extra.get("x_noun", ""), "x_unit": unit, "trend": bool(data.extra.get("trend"))}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        out: dict[str, Any] = {"axes": {"x": axis_facts(d.ax, "x", data.style.height_px)}, "reads": {"x": "x"}}
        if data.extra.get("trend"):
            slope, icept = np.polyfit(data.extra["x"], data.series[0].values, 1)
            out["trend"] = {"slope": float(slope), "intercept": float(icept)}
        return out


#: where a point's name may sit, in points from the point: right-above first, then the other corners
LABEL_OFFSETS = ((5, 4, "left", "bottom"), (-5, 4, "right", "bottom"), (5, -4, "left", "top"),
                 (-5, -4, "right", "top"), (0, 7, "center", "bottom"), (0, -7, "center", "top"))


def place_labels(d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
    """Name each point beside it, at the first offset where the name covers no other name and no
    other point (measured at the axes' current size; the item checks catch what layout moves)."""
    from deltaprompts.generators.chart_mpl import mark_extent

    st, ax = data.style, d.ax
    renderer = d.fig.canvas.get_renderer()
    points = [mark_extent(d, m) for m in d.marks]
    placed: list[Any] = []
    for c, m in enumerate(d.marks):
        for k, (dx, dy, ha, va) in enumerate(LABEL_OFFSETS):
            t = ax.annotate(data.categories[c], m.point, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                            fontsize=st.font_size * 0.8, color=theme["text"], zorder=4)
            box = t.get_window_extent(renderer)
            clear = not any(box.overlaps(b) for b in placed) and \
                not any(box.overlaps(p) for j, p in enumerate(points) if j != c)
            if clear or k == len(LABEL_OFFSETS) - 1:
                break
            t.remove()
        placed.append(box)
        d.category_texts.append(t)


def distinct_round(vals: np.ndarray, decimals: int, gap: float) -> np.ndarray:
    """Round to `decimals`, nudging values up until no two are closer than `gap` (order kept)."""
    order = np.argsort(vals, kind="stable")
    out = np.round(vals.astype(float), decimals)
    step = 10.0 ** -decimals
    prev = -np.inf
    for i in order:
        v = max(out[i], prev + max(gap, step))
        out[i] = round(v, decimals)
        prev = out[i]
    return out
