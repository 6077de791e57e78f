"""Histogram: raw samples of one quantity counted in 5-12 bins with edges at round numbers.

The samples (`ChartData.extra["samples"]`) are drawn from a normal, skewed or bimodal
distribution; each bar is one bin, a mark whose attrs are `bin_lo`, `bin_hi` and `count` (its
`value`), named by its bin label ("20-30"). Counts are read against the y axis unless printed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import (
    VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value
from deltaprompts.generators.chart_sampling import Topic, load_topics
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.knobs import Knob

SHAPES = ("normal", "skewed", "bimodal")
SHAPE = Knob("shape", "choice", "random", "the distribution the samples come from",
             choices=("random", *SHAPES), difficulty="bimodal and skewed are slightly harder (no single peak)")
#: the least count of a bin, as a share of the tallest bin (so that every bar is visible)
MIN_SHARE = 0.05
#: the tallest bin exceeds the runner-up by at least this share (a visible mode)
MODE_MARGIN = 0.1


def bin_label(lo: float, hi: float) -> str:
    """A bin's name: its edges as the axis prints them, "20-30"."""
    return f"{lo:g}-{hi:g}"


def nice_width(raw: float) -> float:
    """The round bin width (1, 2 or 5 times a power of ten) nearest to `raw`, at least 1."""
    k = math.floor(math.log10(raw))
    cands = [m * 10.0 ** e for e in (k - 1, k, k + 1) for m in (1, 2, 5)]
    return float(max(1.0, min(cands, key=lambda c: abs(math.log(c / raw)))))


def draw_samples(rng: np.random.Generator, shape: str, a: float, b: float, n: int) -> np.ndarray:
    """n samples in [a, b) from a normal, skewed (either side) or bimodal distribution."""
    if shape == "skewed":
        u = rng.beta(float(rng.uniform(1.6, 2.4)), float(rng.uniform(4.0, 6.5)), size=n)
        u = u if rng.random() < 0.7 else 1.0 - u
    else:
        if shape == "bimodal":
            centers = np.where(rng.random(n) < rng.uniform(0.4, 0.6), rng.uniform(0.22, 0.35), rng.uniform(0.65, 0.78))
            sd = rng.uniform(0.07, 0.1)
        else:
            centers, sd = np.full(n, rng.uniform(0.38, 0.62)), rng.uniform(0.13, 0.2)
        u = centers + rng.normal(0.0, sd, size=n)
        u = np.where((u < 0) | (u >= 1), rng.uniform(0.3, 0.7, size=n), u)  # the rare tail back inside
    return a + np.clip(u, 0.0, 0.9999) * (b - a)


def _fill_bin(rng: np.random.Generator, lo: float, hi: float, k: int) -> list[float]:
    return [float(v) for v in rng.uniform(lo, hi - 1e-6 * (hi - lo), size=k)]


@register_kind
class Histogram(ChartKind):
    """Counts of raw samples in bins of equal, round width."""

    name = "histogram"
    description = "Histogram of 80-500 raw samples (normal, skewed or bimodal) in 5-12 bins with round edges."
    mark = "bar"
    n_categories, n_categories_random = (5, 12), (6, 10)
    knobs = (n_categories_knob(5, 12, "bins"), VALUE_LABELS, SHAPE, *common_knobs(("matplotlib",)))

    def topic_ok(self, topic: Topic) -> bool:
        return "histogram" in topic.kinds and "sample" in topic.measures

    def auto_rotation(self, categories: list[str], style: Any) -> int:
        return 0  # the x ticks are the bin edges: short numbers, thinned in draw() when crowded

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        return [[0.0] * n_cat]  # the counts come from the samples, in finish()

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        meas = topic.measures["sample"]
        n_bins = len(data.categories)
        lo, hi = meas.range
        width = nice_width((hi - lo) / n_bins * float(rng.uniform(0.6, 1.0)))
        while n_bins * width > (hi - lo) and width > 1.0:
            width = nice_width(width * 0.7)
        first, last = math.ceil(lo / width), math.floor(hi / width) - n_bins
        start = width * int(rng.integers(first, max(first, last) + 1))
        edges = [round(start + k * width, 6) for k in range(n_bins + 1)]
        want = knobs.get("shape", "random")
        shape = want if want != "random" else SHAPES[int(rng.integers(0, len(SHAPES)))]
        samples = [float(v) for v in draw_samples(rng, shape, edges[0], edges[-1], int(rng.integers(80, 400)))]
        counts = np.histogram(samples, bins=edges)[0]
        for c in range(n_bins):  # every bar tall enough to see
            need = max(2, math.ceil(MIN_SHARE * counts.max())) - counts[c]
            if need > 0:
                samples += _fill_bin(rng, edges[c], edges[c + 1], int(need))
        counts = np.histogram(samples, bins=edges)[0]
        top = int(np.argmax(counts))
        runner = int(np.sort(counts)[-2])
        need = math.ceil(runner * (1 + MODE_MARGIN)) + 1 - int(counts[top])
        if need > 0:  # one clear mode
            samples += _fill_bin(rng, edges[top], edges[top + 1], need)
        samples = [round(v, 2) for v in samples]
        counts = np.histogram(samples, bins=edges)[0]  # rounding can move a sample over an edge
        data.categories = [bin_label(edges[c], edges[c + 1]) for c in range(n_bins)]
        data.series[0].values = [float(v) for v in counts]
        data.extra = {"samples": samples, "edges": edges, "shape": shape, "sample_noun": meas.noun,
                      "sample_unit": meas.unit}
        data.x_label = meas.label
        data.y_label = topic.value_label
        data.style.legend = False
        data.style.value_decimals = 0  # counts are whole numbers
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax, ser = data.style, d.ax, data.series[0]
        edges, counts = data.extra["edges"], ser.values
        width = edges[1] - edges[0]
        bars = ax.bar(edges[:-1], counts, width=width, align="edge", color=ser.color, edgecolor=st.background,
                      linewidth=0.8, label=ser.name, zorder=2)
        d.marks += [Mark(id=f"s0c{c}", series=0, category=c, artist=rect) for c, rect in enumerate(bars.patches)]
        if st.value_labels:
            texts = ax.bar_label(bars, labels=[fmt_value(v, 0, "") for v in counts], padding=2,
                                 fontsize=st.font_size * 0.85, color=theme["text"])
            d.value_texts += [(t, f"s0c{c}") for c, t in enumerate(texts)]
        # every edge a tick when they fit (about 5 characters each), else every other one
        char_px = 0.6 * st.font_size * st.dpi / 72
        widest = max(len(f"{e:g}") for e in edges) * char_px + 10
        step = 1 if widest * len(edges) < 0.7 * st.width_px else 2
        ax.set_xticks(edges[::step], [f"{e:g}" for e in edges[::step]])
        ax.set_xlim(edges[0] - 0.25 * width, edges[-1] + 0.25 * width)
        ax.set_ylim(0, max(counts) * (1.08 + 0.08 * st.value_labels))

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        edges = data.extra["edges"]
        out.update(bin_lo=edges[m.category], bin_hi=edges[m.category + 1], count=int(data.series[0].values[m.category]))
        out["value"] = out["count"]
        return out

    def context(self, data: ChartData) -> dict[str, Any]:
        unit = data.extra.get("sample_unit", "")
        return {"sample_noun": data.extra.get("sample_noun", ""), "sample_unit": unit,
                "sample_unit_suffix": f" {unit}" if unit else "", "n_bins": len(data.categories)}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        return {"bins": {"edges": data.extra["edges"], "shape": data.extra["shape"]}}
