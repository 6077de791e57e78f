"""Cleveland dot plot: long-named categories down the y axis, one or two series as dots on a
horizontal value axis (linear or log), an optional dashed reference line (a target or the average).

A log axis is drawn only when the values span more than 1.5 decades. The tolerances of
deltaprompts.tolerances read axes linearly, so on a log axis the Facts' value_axis carries
`"scale": "log"` and no `ticks` (its ticks go under `log_ticks`): a value read off it is refused
(ProgramError "unreadable_value"), while comparisons (deltaprompts/ops/reading.py) use a log-space
reading error.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from deltaprompts.generators.chart_kind import ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind
from deltaprompts.generators.chart_mpl import Drawn, Mark, image_box
from deltaprompts.generators.chart_sampling import Topic, load_topics, spread_values
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.small_multiples import GRID, REF_COLOR, REFERENCE, nice_target, pick
from deltaprompts.knobs import Knob

SCALE = Knob("scale", "choice", "random", "value axis scale; log only where the values span more than 1.5 decades "
             "(else linear); random draws log one time in three", choices=("random", "linear", "log"), difficulty="log is harder")
MIN_DECADES = 1.5
DOT_PT = 8.0  # dot diameter in points
WRAP = 24
SEPARATION = 0.04  # least distance of a row's two dots, as a share of the axis  # category labels wrap at this many characters


@register_kind
class DotPlot(ChartKind):
    """Dots on a horizontal value axis, one row per (long-named) category, 1-2 series."""

    name = "dot_plot"
    description = "Cleveland dot plot: long-named categories on the y axis, 1-2 series as dots (linear or log axis)."
    mark = "dot"
    n_categories, n_categories_random = (3, 10), (4, 8)
    n_series, n_series_random = (1, 2), (1, 2)
    horizontal = True
    knobs = (n_categories_knob(3, 10, "rows"), n_series_knob(1, 2), SCALE, REFERENCE, GRID,
             *common_knobs(("matplotlib",)))

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        # inside, a legend would sit on the dots (horizontal kinds get no room made under it); at the
        # right it would take the width the long category names need
        return legend, "outside bottom"

    def axis_labels(self, category_label: str, value_label: str) -> tuple[str, str]:
        return value_label, category_label

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        dec = data.style.value_decimals
        scale = pick(rng, knobs, "scale", ("linear", "log", "linear"))  # random: log one time in three
        vals = self._values(rng, topic, len(data.series), len(data.categories), dec, log=scale == "log")
        for s, ser in enumerate(data.series):
            ser.values = [float(v) for v in vals[s]]
        allv = [v for s in data.series for v in s.values]
        if scale == "log" and math.log10(max(allv) / min(allv)) <= MIN_DECADES:
            scale = "linear"
        reference = pick(rng, knobs, "reference", ("none", "target", "average"))
        ref = None
        if reference == "target":
            ref = nice_target(rng, allv, 0.04 * (max(allv) - min(allv)) if scale == "linear" else 0.0, dec)
        elif reference == "average":
            ref = round(float(np.mean(allv)), dec)
        data.style.value_labels = False
        data.style.grid = pick(rng, knobs, "grid", ("on", "off")) == "on"
        data.style.tick_rotation = 0
        data.extra = {"scale": scale, "reference": reference if ref is not None else "none", "ref_value": ref}
        return data

    def _values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
                log: bool) -> np.ndarray:
        """Values over the topic's range (log-uniform, and spanning it when `log`), the two series' dots of
        a row at least SEPARATION of the axis apart (on the scale they are drawn), distinct when shown."""
        lo, hi = topic.range
        wide = log and math.log10(hi / lo) > MIN_DECADES
        for _ in range(20):
            base = np.exp(rng.uniform(math.log(lo), math.log(hi), size=n_cat))
            if wide and n_cat >= 2:
                base[rng.permutation(n_cat)[:2]] = (lo * rng.uniform(1.0, 1.3), hi * rng.uniform(0.75, 1.0))
            raw = base[None, :] * rng.uniform(0.55, 1.45, size=(n_ser, n_cat))
            vals = spread_values(np.clip(raw, lo, hi * 1.1), decimals, 3.0, rng)
            if n_ser < 2:
                return vals
            pos = np.log10(vals) if wide else vals
            if np.min(np.abs(pos[0] - pos[1])) >= SEPARATION * (pos.max() - pos.min()):
                return vals
        raw[1] = raw[0] * np.where(rng.random(n_cat) < 0.5, 0.55, 1.8)  # fall back: far apart on either scale
        return spread_values(np.clip(raw, lo, hi * 1.1), decimals, 3.0, rng)

    def context(self, data: ChartData) -> dict[str, Any]:
        ref = data.extra.get("reference", "none")
        return {"reference": ref, "target": data.extra.get("ref_value") if ref == "target" else None,
                "log_scale": data.extra.get("scale") == "log"}

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        n_cat, y = len(data.categories), np.arange(len(data.categories), dtype=float)
        allv = [v for s in data.series for v in s.values]
        ref = data.extra.get("ref_value")
        for c in range(n_cat if len(data.series) > 1 else 0):  # a bar between the two series' dots
            vals = [s.values[c] for s in data.series]
            ax.plot([min(vals), max(vals)], [c, c], color=theme["spine"], linewidth=2.0, alpha=0.5, zorder=2)
        for s, ser in enumerate(data.series):
            for c, v in enumerate(ser.values):
                (pt,) = ax.plot([v], [c], linestyle="none", marker="o", markersize=DOT_PT, color=ser.color,
                                markeredgewidth=0, zorder=4 + s, label=ser.name if c == 0 else None)
                d.marks.append(Mark(id=f"s{s}c{c}", series=s, category=c, artist=pt))
        if data.extra["scale"] == "log":
            ax.set_xscale("log")
            ax.set_xlim(min(allv) / 1.5, max(allv) * 1.5)
        else:
            span = [*allv, *([ref] if ref is not None else [])]
            pad = 0.06 * (max(span) - min(span))
            ax.set_xlim(max(0.0, min(span) - pad) if min(span) >= 0 else min(span) - pad, max(span) + pad)
        top = -1.3 if ref is not None else -0.6  # a free row above the first category for the line's label
        ax.set_ylim(n_cat - 0.4, top)
        ax.set_yticks(list(y), ["\n".join(textwrap.wrap(c, WRAP)) for c in data.categories])
        ax.tick_params(axis="y", length=0)
        if ref is not None:
            color = REF_COLOR.get(st.theme, "#333333")
            ax.axvline(ref, color=color, linestyle="--", linewidth=1.2, zorder=3)
            word = "Target" if data.extra["reference"] == "target" else "Average"
            lo, hi = ax.get_xlim()
            frac = (math.log(ref / lo) / math.log(hi / lo)) if data.extra["scale"] == "log" else (ref - lo) / (hi - lo)
            right = frac > 0.6
            d.category_texts.append(ax.annotate(f"{word} {ref:,.{st.value_decimals}f}", (ref, -0.95),
                                                xytext=(-4 if right else 4, 0), textcoords="offset points",
                                                ha="right" if right else "left", va="center",
                                                fontsize=st.font_size * 0.85, color=color, zorder=5))

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        if data.extra.get("ref_value") is not None:
            out["reference"] = data.extra["ref_value"]
        return out

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": None if data.extra.get("ref_value") is None else {
            "kind": data.extra["reference"], "value": data.extra["ref_value"]}, "scale": data.extra["scale"]}
        if data.extra["scale"] == "log":
            lo, hi = sorted(map(float, d.ax.xaxis.get_view_interval()))
            ticks = [float(t) for t in d.ax.xaxis.get_majorticklocs() if lo <= t <= hi]
            out["value_axis"] = {"axis": "x", "range": [lo, hi], "ticks": [], "log_ticks": ticks, "scale": "log",
                                 "box": image_box(d.ax.get_window_extent(), data.style.height_px)}
        return out

    def topic_ok(self, topic: Topic) -> bool:
        return "dot_plot" in topic.kinds
