"""Bars or points with error bars (an interval per mark: a 95% CI, ±1 SD or ±1 SE), 1-3 series.

Each mark is a mean (`value`) with a symmetric interval [`lo`, `hi`] (`width` = hi - lo). The
intervals are read against the value axis: the Facts declare it for `lo` and `hi` (`extra["axes"]`,
`extra["reads"]`). A mark's box covers its bar (or point) and its whisker, so an inside legend is
lifted clear of the whiskers and a covered whisker counts as a covered mark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.transforms import Bbox

from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, VALUE_LABELS, ChartKind, common_knobs, n_categories_knob, n_series_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark, fmt_value, image_box
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.scatter import axis_facts
from deltaprompts.knobs import Knob

MARKS = Knob("marks", "choice", "random", "each mean drawn as a bar or as a point",
             choices=("random", "bars", "points"),
             difficulty="none (points put the intervals side by side without bars)")
INTERVAL = Knob("interval", "choice", "random", "what the error bars show (named in the axis label)",
                choices=("random", "ci95", "sd", "se"), difficulty="none")
#: knob value -> (short text on the chart, the words phrasings use)
INTERVALS = {"ci95": ("mean ± 95% CI", "95% confidence interval"), "sd": ("mean ± 1 SD", "±1 SD interval"),
             "se": ("mean ± 1 SE", "±1 SE interval")}
#: each series' widest interval is at least this many times its runner-up (a visible winner)
WIDEST_MARGIN = 1.3
POINT_DODGE = 0.22  # x offset between the series of a category, in category widths (points)
CAP = 0.3  # cap half-width, as a fraction of a bar's width (of the dodge for points)


class UnionExtent:
    """The window extent of a mark drawn as several pieces (a bar or marker plus its whisker),
    computed when asked (the axes move during layout). Stands in for the mark's artist."""

    def __init__(self, ax: Any, body: Any, x: float, half: float, lo: float, hi: float, pad_px: float):
        self.ax, self.body, self.x, self.half, self.lo, self.hi, self.pad = ax, body, x, half, lo, hi, pad_px

    def whisker(self) -> Bbox:
        (x0, y0), (x1, y1) = self.ax.transData.transform([(self.x - self.half, self.lo), (self.x + self.half, self.hi)])
        return Bbox.from_extents(x0 - self.pad, y0 - self.pad, x1 + self.pad, y1 + self.pad)

    def body_extent(self) -> Bbox:
        if not isinstance(self.body, tuple):
            return self.body.get_window_extent()
        px, py = self.ax.transData.transform(self.body)  # a point's marker
        r = MARKER_PT * self.ax.figure.dpi / 72 / 2
        return Bbox.from_extents(px - r, py - r, px + r, py + r)

    def get_window_extent(self, renderer: Any = None) -> Bbox:
        return Bbox.union([self.body_extent(), self.whisker()])


def half_widths(rng: np.random.Generator, values: np.ndarray, span: float, decimals: int) -> np.ndarray:
    """Interval half-widths (n_ser x n_cat) at `decimals`: 3-10% of the value span, below 80% of
    their mean (intervals stay above zero), and one clear widest per series."""
    step = 10.0 ** -decimals
    out = np.round(rng.uniform(0.03, 0.10, size=values.shape) * span, decimals)
    out = np.minimum(out, np.floor(0.8 * values / step) * step)
    out = np.maximum(out, step)
    for s in range(values.shape[0]):
        row = out[s]
        if len(row) < 2:
            continue
        room = np.floor(0.8 * values[s] / step) * step  # the largest half-width each mark can take
        others = np.sort(row)[::-1]
        candidates = [c for c in range(len(row)) if room[c] >= WIDEST_MARGIN * others[1] + step]
        if not candidates:  # small means: the roomiest mark takes all it can, the others shrink below it
            k = int(np.argmax(room))
            row[k] = room[k]
            row[:] = np.where(np.arange(len(row)) == k, row,
                              np.maximum(np.minimum(row, np.floor(room[k] / WIDEST_MARGIN / step) * step), step))
            continue
        k = candidates[int(rng.integers(0, len(candidates)))]
        rest = max(float(v) for c, v in enumerate(row) if c != k)
        want = np.ceil(rest * float(rng.uniform(WIDEST_MARGIN, 1.7)) / step) * step
        row[k] = min(max(want, np.ceil(WIDEST_MARGIN * rest / step) * step), room[k])
    return np.round(out, decimals)


@register_kind
class ErrorBars(ChartKind):
    """Means with error bars, drawn as bars or points, one to three series."""

    name = "error_bars"
    description = "Means with error bars (95% CI, SD or SE) as bars or points, 3-8 groups, 1-3 series."
    n_categories, n_categories_random = (3, 8), (3, 6)
    n_series, n_series_random = (1, 3), (1, 3)
    knobs = (n_categories_knob(3, 8, "groups per series"), n_series_knob(1, 3), MARKS, INTERVAL, VALUE_LABELS,
             TICK_ROTATION, LEGEND, *common_knobs(("matplotlib",)))

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        from deltaprompts.generators.chart_sampling import load_topics

        topic = next(t for t in load_topics() if t.id == data.topic)
        marks = knobs.get("marks", "random")
        marks = marks if marks != "random" else ("bars", "points")[int(rng.integers(0, 2))]
        interval = knobs.get("interval", "random")
        interval = interval if interval != "random" else tuple(INTERVALS)[int(rng.integers(0, len(INTERVALS)))]
        vals = np.array([s.values for s in data.series])
        dec = data.style.value_decimals
        half = half_widths(rng, vals, topic.range[1] - topic.range[0], dec)
        data.extra = {"marks": marks, "interval": interval, "half": half.tolist()}
        data.y_label = f"{data.y_label}\n{INTERVALS[interval][0]}" if data.y_label else INTERVALS[interval][0]
        return data

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        bars = data.extra["marks"] == "bars"
        n_ser, x = len(data.series), np.arange(len(data.categories), dtype=float)
        whisker_color = theme["text"] if bars else None
        width = st.bar_width / n_ser if bars else POINT_DODGE
        lw = 1.3
        top = 0.0
        for s, ser in enumerate(data.series):
            offset = (s - (n_ser - 1) / 2) * width
            vals, half = np.array(ser.values), np.array(data.extra["half"][s])
            lo, hi = vals - half, vals + half
            xs = x + offset
            if bars:
                rects = ax.bar(xs, vals, width=width, color=ser.color, label=ser.name, zorder=2).patches
            else:
                ax.plot(xs, vals, linestyle="none", marker="o", markersize=MARKER_PT, color=ser.color,
                        label=ser.name, zorder=4)
            cap = CAP * width
            for c in range(len(xs)):
                ax.plot([xs[c], xs[c], np.nan, xs[c] - cap, xs[c] + cap, np.nan, xs[c] - cap, xs[c] + cap],
                        [lo[c], hi[c], np.nan, lo[c], lo[c], np.nan, hi[c], hi[c]],
                        color=whisker_color or ser.color, linewidth=lw, solid_capstyle="butt", zorder=3)
                body = rects[c] if bars else (float(xs[c]), float(vals[c]))
                extent = UnionExtent(ax, body, float(xs[c]), cap, float(lo[c]), float(hi[c]), lw * st.dpi / 72 / 2)
                d.marks.append(Mark(id=f"s{s}c{c}", series=s, category=c, artist=extent))  # type: ignore[arg-type]
                if st.value_labels:
                    text = fmt_value(vals[c], st.value_decimals, data.unit)
                    kw: dict[str, Any] = {"textcoords": "offset points", "fontsize": st.font_size * 0.85,
                                          "color": theme["text"], "zorder": 5}
                    t = (ax.annotate(text, (xs[c], hi[c]), xytext=(0, 2), ha="center", va="bottom", **kw) if bars
                         else ax.annotate(text, (xs[c], vals[c]), xytext=(MARKER_PT / 2 + 2, 0), ha="left",
                                          va="center", **kw))
                    d.value_texts.append((t, f"s{s}c{c}"))
            top = max(top, float(hi.max()))
        head = 1.06 + 0.22 * (st.legend and not st.legend_loc.startswith("outside"))
        if bars:
            ax.set_ylim(0, top * head)
        else:  # points need no zero baseline: the intervals fill the view
            low = min(float(np.min(np.array(s.values) - np.array(h))) for s, h in zip(data.series, data.extra["half"]))
            span = top - low
            ax.set_ylim(max(0.0, low - 0.08 * span), top + (head - 1.0) * span + 0.04 * span)
        ax.set_xticks(list(x), data.categories)
        ax.set_xlim(-0.6, len(x) - 0.4)

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        dec = data.style.value_decimals
        half = data.extra["half"][m.series][m.category]
        out.update(lo=round(out["value"] - half, dec), hi=round(out["value"] + half, dec), width=round(2 * half, dec))
        return out

    def context(self, data: ChartData) -> dict[str, Any]:
        interval = data.extra.get("interval", "ci95")
        return {"mark": "bar" if data.extra.get("marks") == "bars" else "point",
                "interval_name": INTERVALS[interval][1]}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        h = data.style.height_px
        return {"axes": {"y": axis_facts(d.ax, "y", h)}, "reads": {"lo": "y", "hi": "y"},
                "marks": data.extra["marks"], "interval": data.extra["interval"],
                "whiskers": {m.id: image_box(m.artist.whisker(), h) for m in d.marks},  # type: ignore[union-attr]
                "bodies": {m.id: image_box(m.artist.body_extent(), h) for m in d.marks}}  # type: ignore[union-attr]
