"""Waterfall chart: a start level, 4-8 signed steps as floating bars, and the end total.

Bars are coloured by kind (increase, decrease, total) from one of two schemes (green/red, or the
colour-blind-safe blue/orange); dashed connectors join the running totals when asked. Every bar
is a Mark: "start", "s0c<i>" for step i, "end". A step's `value` is its signed change, `start`
and `end` the running total before and after it; a total bar's `value` is its level.

Reading without labels: a step is two readings against the y axis (its end minus its start), so
the Facts declare no single-reading value axis for the steps; they declare the y axis for the
`start` and `end` attributes and for the total bars' values (extra["axes"], ["reads"],
["entity_reads"]). Printed labels (on by default) make every value exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.patches import Patch

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark, fmt_value
from deltaprompts.generators.chart_sampling import Topic, _raw_values, color_name, load_topics, spread_values
from deltaprompts.generators.chart_spec import ChartData, ChartStyle
from deltaprompts.generators.kinds.scatter import axis_facts
from deltaprompts.knobs import Knob

#: (increase, decrease, total) colours, all palette colours so that each has a plain name
SCHEMES = {"green_red": ("#2ca02c", "#d62728", "#1f77b4"), "blue_orange": ("#1f77b4", "#ff7f0e", "#7f7f7f")}
#: least gap between step sizes, in % of the largest step (floating bars compared by eye)
STEP_GAP_PCT = 8.0
WF_LABELS = Knob("value_labels", "choice", "on", "print each bar's change (and the totals' levels)",
                 choices=("on", "off", "random"), difficulty="off is harder (a step is two readings on the axis)")
SCHEME = Knob("colors", "choice", "random", "bar colours: green/red, or blue/orange (colour-blind safe)",
              choices=("random", *SCHEMES), difficulty="none")
CONNECTORS = Knob("connectors", "choice", "random", "dashed lines joining consecutive running totals",
                  choices=("random", "on", "off"), difficulty="none")


def _topic(data: ChartData) -> Topic:
    return next(t for t in load_topics() if t.id == data.topic)


def signed_steps(data: ChartData) -> list[float]:
    return list(data.series[0].values)


def running(data: ChartData) -> list[float]:
    """The running total after each step (rounded to the shown decimals)."""
    dec, total, out = data.style.value_decimals, data.extra["start"], []
    for v in signed_steps(data):
        total = round(total + v, dec)
        out.append(total)
    return out


@register_kind
class Waterfall(ChartKind):
    """A start level, signed steps as floating bars, and the end total."""

    name = "waterfall"
    description = "Waterfall chart: a start value, 4-8 signed steps coloured by sign, and the end total."
    n_categories, n_categories_random = (4, 8), (4, 8)
    knobs = (n_categories_knob(4, 8, "steps"), WF_LABELS, SCHEME, CONNECTORS, LEGEND, TICK_ROTATION,
             *common_knobs(("matplotlib",)))

    def topic_ok(self, topic: Topic) -> bool:
        return "waterfall" in topic.kinds and "start" in topic.measures

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        return True, legend_loc  # the legend explains the bar colours

    def auto_rotation(self, categories: list[str], style: ChartStyle) -> int:
        return super().auto_rotation([*categories, "Closing", "Opening"], style)

    def values(self, rng: np.random.Generator, topic: Topic, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        lo, _ = topic.range  # sizes first (signs in finish); spreading pushes them up, so start low
        raw = lo + (_raw_values(rng, topic, 1, n_cat) - lo) * 0.7
        return spread_values(raw, decimals, max(gap_pct, STEP_GAP_PCT), rng).tolist()

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic, dec = _topic(data), data.style.value_decimals
        n = len(data.categories)
        n_up = int(rng.integers(2, n - 1))  # at least two increases and two decreases
        signs = np.array([1.0] * n_up + [-1.0] * (n - n_up))[rng.permutation(n)]
        data.series[0].values = [round(float(s * v), dec) for s, v in zip(signs, data.series[0].values)]
        slo, shi = topic.measures["start"].range
        scheme, conn = knobs.get("colors", "random"), knobs.get("connectors", "random")
        start = round(float(rng.uniform(slo, shi)), dec)
        low = float(np.min(np.cumsum(data.series[0].values)))
        # a balance may go below zero now and then (a negative total); a count of people never does
        if start + low < 0 and (topic.unit == "employees" or rng.random() < 0.7):
            start = round(-low + 0.15 * (shi - slo), dec)
        data.extra = {"start": start,
                      "start_label": topic.measures["start"].label, "end_label": topic.measures["end"].label,
                      "scheme": scheme if scheme != "random" else str(list(SCHEMES)[int(rng.integers(len(SCHEMES)))]),
                      "connectors": conn == "on" or (conn == "random" and bool(rng.random() < 0.6))}
        data.style.legend = True
        return data

    def mark_colors(self, data: ChartData) -> list[str]:
        return list(SCHEMES[data.extra["scheme"]])

    def _bars(self, data: ChartData) -> list[tuple[str, str, float, float, str, float]]:
        """(mark id, label, bottom, top, kind, value) of every bar, left to right."""
        start, ends = data.extra["start"], running(data)
        out = [("start", data.extra["start_label"], 0.0, start, "total", start)]
        prev = start
        for c, (cat, v, end) in enumerate(zip(data.categories, signed_steps(data), ends)):
            out.append((f"s0c{c}", cat, prev, end, "increase" if v > 0 else "decrease", v))
            prev = end
        out.append(("end", data.extra["end_label"], 0.0, prev, "total", prev))
        return out

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        inc, dec_c, tot = SCHEMES[data.extra["scheme"]]
        colors = {"increase": inc, "decrease": dec_c, "total": tot}
        bars = self._bars(data)
        x = np.arange(len(bars), dtype=float)
        w = st.bar_width
        rects = ax.bar(x, [top - bot for _, _, bot, top, _, _ in bars], bottom=[b[2] for b in bars], width=w,
                       color=[colors[b[4]] for b in bars], zorder=2)
        for i, ((mid, _, _, _, _, _), rect) in enumerate(zip(bars, rects.patches)):
            d.marks.append(Mark(id=mid, series=0, category=i - 1, artist=rect))
        if data.extra["connectors"]:
            for i in range(len(bars) - 1):
                level = bars[i][3]
                ax.plot([x[i] + w / 2, x[i + 1] - w / 2], [level, level], color=theme["spine"], linewidth=0.9,
                        linestyle="--", zorder=1)
        ax.axhline(0, color=theme["spine"], linewidth=0.8, zorder=1.5)
        if st.value_labels:
            labels = [fmt_value(v, st.value_decimals, data.unit) if kind == "total" else
                      ("+" if v > 0 else "\u2212") + fmt_value(abs(v), st.value_decimals, data.unit)
                      for _, _, _, _, kind, v in bars]
            texts = ax.bar_label(rects, labels=labels, label_type="edge", padding=2, fontsize=st.font_size * 0.85,
                                 color=theme["text"])
            d.value_texts += [(t, b[0]) for t, b in zip(texts, bars)]
        levels = [b[2] for b in bars] + [b[3] for b in bars]
        lo, hi = min(levels), max(levels)
        span = hi - lo
        # room under the axis line only for a negative total or a label under a decrease ending near 0
        low_end = min([b[3] for b in bars if b[4] == "decrease"] + [lo])
        room = st.value_labels and low_end < lo + 0.12 * span
        bottom = min(0.0, lo) - (0.1 * span if room else (0.04 * span if lo < 0 else 0.0))
        head = 1.05 + 0.06 * st.value_labels + 0.22 * (not st.legend_loc.startswith("outside"))
        ax.set_ylim(bottom, bottom + (hi - bottom) * head)
        ax.set_xticks(list(x), [b[1] for b in bars])

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        inc, dec_c, tot = SCHEMES[data.extra["scheme"]]
        return [Patch(color=inc), Patch(color=dec_c), Patch(color=tot)], ["Increase", "Decrease", "Total"]

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        inc, dec_c, tot = SCHEMES[data.extra["scheme"]]
        bar = next(b for b in self._bars(data) if b[0] == m.id)
        mid, label, bottom, top, kind, value = bar
        dec = data.style.value_decimals
        c = {"increase": inc, "decrease": dec_c, "total": tot}[kind]
        out: dict[str, Any] = {"series": data.series[0].name, "type": kind, "role": m.id if kind == "total" else "step",
                               "value": round(value, dec), "start": round(bottom, dec), "end": round(top, dec),
                               "color": c, "color_name": color_name(c)}
        if kind == "total":
            out["label"] = label
        else:
            out["category"] = label
            out["step"] = round(value, dec)
        return out

    def context(self, data: ChartData) -> dict[str, Any]:
        topic = _topic(data)
        return {"start_label": data.extra.get("start_label", ""), "end_label": data.extra.get("end_label", ""),
                "start_noun": topic.measures["start"].noun, "end_noun": topic.measures["end"].noun,
                "step_noun": data.category_noun}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        # a step's value is two readings (end - start): no single-reading value axis for it
        return {"value_axis": None, "axes": {"y": axis_facts(d.ax, "y", data.style.height_px)},
                "reads": {"start": "y", "end": "y"},
                "entity_reads": {"start": {"value": "y"}, "end": {"value": "y"}}}
