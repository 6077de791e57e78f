"""Box plots of 2-6 groups: each box sums up the raw samples of one group.

The samples (`ChartData.extra["samples"]`, one list per group, an odd count so that the median is
a sample) give each box its median, quartiles (q1, q3) and Tukey whiskers (the furthest samples
within 1.5 IQR of the box); samples beyond the whiskers are drawn as outlier points. Each box is a
mark whose attrs are these statistics, all read against the value axis (Facts `extra["reads"]`),
the median exact when its label is printed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib import cbook

from deltaprompts.generators.chart_kind import (
    TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value, ink
from deltaprompts.generators.chart_sampling import Topic, color_name, load_topics, slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.scatter import axis_facts
from deltaprompts.knobs import Knob

OUTLIERS = Knob("outliers", "choice", "random", "add a few samples far beyond the whiskers (drawn as points)",
                choices=("random", "on", "off"), difficulty="on is slightly harder (points to tell from whiskers)")
STATS = ("median", "q1", "q3", "whisker_lo", "whisker_hi")
#: the highest median and the widest box stand out from the runner-up by these shares
MEDIAN_GAP = 0.06  # of the topic range
IQR_RATIO = 1.25


def box_stats(samples: list[float]) -> dict[str, float]:
    """Median, quartiles and Tukey (1.5 IQR) whiskers of one group, as matplotlib draws them."""
    s = cbook.boxplot_stats(np.asarray(samples, dtype=float), whis=1.5)[0]
    return {"median": float(s["med"]), "q1": float(s["q1"]), "q3": float(s["q3"]),
            "whisker_lo": float(s["whislo"]), "whisker_hi": float(s["whishi"])}


def _group(rng: np.random.Generator, median: float, iqr: float, decimals: int, outliers: int,
           floor: float) -> list[float]:
    """An odd number of samples with this median (exactly) and about this IQR, rounded to `decimals`,
    none below `floor` (the topic's least value)."""
    n = 2 * int(rng.integers(12, 40)) + 1
    raw = rng.normal(size=n) if rng.random() < 0.6 else rng.lognormal(0.0, 0.5, size=n) * (1 if rng.random() < 0.7 else -1)
    q1, med, q3 = np.percentile(raw, [25, 50, 75])
    vals = median + (raw - med) * iqr / (q3 - q1)
    vals = np.sort(vals)
    for k in range(outliers):  # the largest (or smallest) samples pushed beyond the whisker: the median stays
        far = iqr * float(rng.uniform(1.8, 2.6))
        if rng.random() < 0.5 or np.percentile(vals, 25) - far < floor:
            vals[-1 - k] = np.percentile(vals, 75) + far
        else:
            vals[k] = np.percentile(vals, 25) - far
    vals = np.round(np.maximum(vals, floor), decimals)
    return [float(v) for v in vals[rng.permutation(n)]]


@register_kind
class Box(ChartKind):
    """Box-and-whisker plots, one box per group."""

    name = "box"
    description = "Box plots of 2-6 groups of raw samples: median, quartiles, Tukey whiskers, outlier points."
    mark = "box"
    n_categories, n_categories_random = (2, 6), (3, 5)
    by_category = True
    printed_attr = "median"
    knobs = (n_categories_knob(2, 6, "groups"), VALUE_LABELS, OUTLIERS, TICK_ROTATION, *common_knobs(("matplotlib",)))

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        return [[0.0] * n_cat]  # the medians come from the samples, in finish()

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        lo, hi = topic.range
        span, n, dec = hi - lo, len(data.categories), data.style.value_decimals
        want = knobs.get("outliers", "random")
        add = want == "on" or (want == "random" and rng.random() < 0.5)
        # medians: distinct, the highest clear of the runner-up; IQRs: the widest clear of the rest
        meds = np.sort(rng.uniform(lo + 0.3 * span, hi - 0.3 * span, size=n))
        for k in range(1, n - 1):
            meds[k] = max(meds[k], meds[k - 1] + 0.02 * span)
        meds[-1] = max(meds[-1], meds[-2] + MEDIAN_GAP * span) if n > 1 else meds[-1]
        meds = np.round(meds[rng.permutation(n)], dec)
        iqrs = np.sort(rng.uniform(0.12, 0.24, size=n) * span)
        iqrs[-1] = max(iqrs[-1], iqrs[-2] * IQR_RATIO * 1.1) if n > 1 else iqrs[-1]
        iqrs = iqrs[rng.permutation(n)]
        samples = [_group(rng, float(m), float(q), dec, int(rng.integers(1, 3)) if add else 0, lo)
                   for m, q in zip(meds, iqrs)]
        stats = [box_stats(s) for s in samples]
        data.series[0].values = [round(s["median"], dec) for s in stats]
        data.extra = {"samples": samples, "outliers": add}
        data.style.legend = False
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        colors = slice_colors(data)
        stats = cbook.boxplot_stats([np.asarray(s, dtype=float) for s in data.extra["samples"]], whis=1.5)
        pos = list(range(len(stats)))
        width = 0.35 + 0.35 * st.bar_width
        line = {"color": theme["spine"], "linewidth": 1.2}
        out = ax.bxp(stats, positions=pos, widths=width, patch_artist=True, showfliers=True,
                     boxprops={"edgecolor": theme["spine"], "linewidth": 1.0}, whiskerprops=line, capprops=line,
                     flierprops={"marker": "o", "markersize": 4.5, "markerfacecolor": "none",
                                 "markeredgecolor": theme["text"]},
                     medianprops={"linewidth": 2.0}, zorder=2)
        for c, (patch, med) in enumerate(zip(out["boxes"], out["medians"])):
            patch.set_facecolor(colors[c])
            med.set_color(ink(colors[c]))
            d.marks.append(Mark(id=f"s0c{c}", series=0, category=c, artist=patch))
            if st.value_labels:
                t = ax.annotate(fmt_value(data.series[0].values[c], st.value_decimals, data.unit),
                                (c + width / 2, stats[c]["med"]), xytext=(3, 0), textcoords="offset points",
                                ha="left", va="center", fontsize=st.font_size * 0.8, color=theme["text"], zorder=4)
                d.value_texts.append((t, f"s0c{c}"))
        ax.set_xticks(pos, data.categories)
        ax.set_xlim(-0.6, len(pos) - 0.4 + 0.25 * st.value_labels)
        low = min(min(s) for s in data.extra["samples"])
        high = max(max(s) for s in data.extra["samples"])
        ax.set_ylim(low - 0.08 * (high - low), high + 0.08 * (high - low))

    def mark_colors(self, data: ChartData) -> list[str]:
        return slice_colors(data)

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        s = box_stats(data.extra["samples"][m.category])
        dec = data.style.value_decimals
        out: dict[str, Any] = {"series": data.series[0].name, "category": data.categories[m.category],
                               "value": round(s["median"], dec)}
        out.update({k: round(v, 2 + dec) for k, v in s.items()})
        out["median"] = out["value"]
        out["iqr"] = round(s["q3"] - s["q1"], 2 + dec)
        out["n"] = len(data.extra["samples"][m.category])
        out.update(color_name=color_name(color), color=color)
        return out

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        return {"axes": {"value": axis_facts(d.ax, "y", data.style.height_px)},
                "reads": {k: "value" for k in STATS}}
