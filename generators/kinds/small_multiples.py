"""Small multiples: 2-6 panels, each a small line or bar chart of one series, titled with its name.

`d.ax` (the axes chart_mpl lays out) is a host without ticks or frame that carries the chart
title and the shared axis labels; the panels are its child axes, placed on a grid by an axes
locator that follows the host wherever layout() puts it, with pixel margins measured here for
their tick labels and titles. Each panel reads against its own y axis: the Facts declare
`extra["axes"]["panel<k>"]` and route every mark's value there (`extra["entity_reads"]`).
The panels' texts (titles, ticks, reference labels) travel as `d.category_texts` (role
`category_label`): the contract has no hook for texts of other roles.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from deltaprompts.generators.chart_kind import ChartKind, common_knobs, n_categories_knob, register_kind
from deltaprompts.generators.chart_mpl import MARKER_PT, Drawn, Mark
from deltaprompts.generators.chart_sampling import Topic
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.scatter import axis_facts
from deltaprompts.knobs import Knob

PANELS = Knob("n_series", "int", 0, "panels (one series each); 0 = random, else 2-6", lo=0, hi=6,
              difficulty="higher is harder")
PANEL_MARK = Knob("panel_mark", "choice", "random", "each panel a line (points on a line) or bars",
                  choices=("random", "line", "bar"), difficulty="none")
Y_AXES = Knob("y_axes", "choice", "random", "one y scale for every panel, or each panel its own",
              choices=("random", "shared", "independent"), difficulty="independent is harder to compare across panels")
REFERENCE = Knob("reference", "choice", "random", "a dashed reference line in every panel: a target (one value; "
                 "each panel's average when no target sits clear of the values), each panel's average, or none",
                 choices=("random", "none", "target", "average"), difficulty="none")
GRID = Knob("grid", "choice", "random", "horizontal gridlines in the panels", choices=("random", "on", "off"),
            difficulty="off is harder (values read against the ticks alone)")

#: panels -> (rows, columns)
GRID_SHAPE = {2: (1, 2), 3: (1, 3), 4: (2, 2), 5: (2, 3), 6: (2, 3)}
REF_COLOR = {"dark": "#f0f0f0"}  # the reference line's colour on a theme; else near-black


def pick(rng: np.random.Generator, knobs: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    """A choice knob's value, drawn from `choices` when it is random."""
    want = knobs.get(name, "random")
    return str(choices[int(rng.integers(0, len(choices)))]) if want == "random" else str(want)


def nice_target(rng: np.random.Generator, values: list[float], margin: float, decimals: int = 0) -> float | None:
    """A round number among the values, at least `margin` from each, with values on both sides."""
    lo, hi = min(values), max(values)
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9))) / 10
    for s in (step * 5, step * 2, step):
        cands = [k * s for k in range(math.ceil(lo / s), math.floor(hi / s) + 1)]
        ok = [t for t in cands if min(abs(v - t) for v in values) >= margin
              and 0.15 * len(values) <= sum(v > t for v in values) <= 0.85 * len(values)]
        if ok:
            return float(round(ok[int(rng.integers(0, len(ok)))], 6))
    srt = sorted(values)  # no round number fits: the middle of the widest gap in the middle of the values
    inner = [(b - a, (a + b) / 2) for a, b in zip(srt, srt[1:])][len(srt) // 6:len(srt) - len(srt) // 6]
    gap, mid = max(inner, default=(0.0, 0.0))
    return float(round(mid, decimals)) if gap >= 2 * margin else None


def fmt_tick(t: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{t:,.{decimals}f}"


def value_ticks(lo: float, hi: float) -> tuple[list[float], float]:
    """About four round ticks inside [lo, hi], and their spacing."""
    ticks = [float(t) for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
             if lo - 1e-9 <= t <= hi + 1e-9]
    return ticks, ticks[1] - ticks[0]


def text_px(text: str, size: float, renderer: Any) -> tuple[float, float]:
    w, h, _ = renderer.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return w, h


@register_kind
class SmallMultiples(ChartKind):
    """2-6 small panels, one series each, shared or independent y axes."""

    name = "small_multiples"
    description = "Small multiples: 2-6 panels, each a small line or bar chart of one series (line topics)."
    mark = "point"
    n_categories, n_categories_random = (4, 10), (5, 8)
    n_series, n_series_random = (2, 6), (2, 6)
    topic_kinds = ("line",)
    axes = False  # the host has no axes of its own; the panels are decorated here
    knobs = (n_categories_knob(4, 10, "periods per panel"), PANELS, PANEL_MARK, Y_AXES, REFERENCE, GRID,
             *common_knobs(("matplotlib",)))

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        return False, legend_loc  # each panel's title names its series

    def auto_rotation(self, categories: list[str], style: Any) -> int:
        return 0  # decided per panel in draw()

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        mark = pick(rng, knobs, "panel_mark", ("line", "bar"))
        shared = pick(rng, knobs, "y_axes", ("shared", "independent")) == "shared"
        reference = pick(rng, knobs, "reference", ("none", "target", "average"))
        grid = pick(rng, knobs, "grid", ("on", "off")) == "on"
        dec = data.style.value_decimals
        allv = [v for s in data.series for v in s.values]
        refs: list[float] | None = None
        spans = [max(s.values) - min(s.values) for s in data.series] if not shared else [max(allv) - min(allv)]
        if reference == "target":
            t = nice_target(rng, allv, (0.05 if shared else 0.1) * min(spans), dec)
            if t is None:  # no target sits clear of every value: each panel's average instead (the Facts say so)
                reference = "average"
            else:
                refs = [t] * len(data.series)
        if reference == "average":
            refs = []
            for s in data.series:  # keep every point clear of its panel's average line
                for _ in range(3):
                    mean, span = float(np.mean(s.values)), max(s.values) - min(s.values)
                    step = round(0.15 * span, dec) or 10.0 ** -dec
                    moved = [round(mean + math.copysign(step, v - mean), dec) if abs(v - mean) < 0.12 * span else v
                             for v in s.values]
                    if len(set(moved)) == len(moved) and min(moved) > 0:
                        s.values = moved
                refs.append(round(float(np.mean(s.values)), dec))
        data.style.value_labels = False
        data.style.grid = grid
        data.extra = {"mark": mark, "shared_y": shared, "reference": reference if refs else "none",
                      "references": refs or []}
        return data

    def context(self, data: ChartData) -> dict[str, Any]:
        ref = data.extra.get("reference", "none")
        return {"mark": "bar" if data.extra.get("mark") == "bar" else "point", "panel_noun": "panel",
                "shared_y": bool(data.extra.get("shared_y")), "reference": ref,
                "target": data.extra["references"][0] if ref == "target" else None}

    # ------------------------------------------------------------ drawing

    def _limits(self, data: ChartData, k: int) -> tuple[float, float]:
        vals = [v for s in data.series for v in s.values] if data.extra["shared_y"] else data.series[k].values
        refs = data.extra["references"]
        vals = list(vals) + (refs if data.extra["shared_y"] else refs[k:k + 1])
        lo, hi = min(vals), max(vals)
        span = hi - lo or abs(hi) or 1.0
        if data.extra["mark"] == "bar":
            lo = 0.0
            span = hi
        else:
            lo = max(0.0, lo - 0.12 * span) if lo >= 0 else lo - 0.12 * span
        return lo, hi + (0.08 + 0.2 * bool(refs)) * span  # headroom: the reference label sits there

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, host, fig = data.style, d.ax, d.fig
        renderer = fig.canvas.get_renderer()
        n, ncat = len(data.series), len(data.categories)
        rows, cols = GRID_SHAPE[n]
        shared, refs = data.extra["shared_y"], data.extra["references"]
        fs, small = st.font_size * 0.85, st.font_size * 0.75
        host.set_xticks([])
        host.set_yticks([])
        for spine in host.spines.values():
            spine.set_visible(False)
        host.patch.set_visible(False)
        host.set_xlabel(data.x_label, fontsize=st.font_size, color=theme["text"])
        host.set_ylabel(data.y_label, fontsize=st.font_size, color=theme["text"])
        d.category_texts += [t for t in (host.xaxis.label, host.yaxis.label) if t.get_text()]
        # pixel margins of a panel inside its grid cell
        limits = [self._limits(data, k) for k in range(n)]
        ticks = [value_ticks(*lim) for lim in limits]
        tick_w = max(text_px(fmt_tick(t, step), fs, renderer)[0] for ts, step in ticks for t in ts)
        cat_w = max(text_px(c, fs, renderer)[0] for c in data.categories)
        line_h = text_px("Ag", fs, renderer)[1]
        title_h = text_px("Ag", st.font_size, renderer)[1]
        left_full = tick_w + 10
        est_w = (0.9 * st.width_px - 40) / cols - left_full - 10
        rotate = cat_w + 4 > est_w / ncat
        bottom = (cat_w if rotate else line_h) + 10
        top = title_h + 8
        gap_r = 10.0

        def locator(k: int):
            r, c = divmod(k, cols)

            def place(_ax: Any, _renderer: Any) -> Bbox:
                hb = host.get_position()
                W, H = st.width_px, st.height_px
                x0, y0, w, h = hb.x0 * W, hb.y0 * H, hb.width * W, hb.height * H
                cw, ch = w / cols, h / rows
                left = left_full if (not shared or c == 0) else 6.0
                px0, py1 = x0 + c * cw + left, y0 + h - r * ch - top
                px1, py0 = x0 + (c + 1) * cw - gap_r, y0 + h - (r + 1) * ch + bottom
                px1, py0 = max(px1, px0 + 10), min(py0, py1 - 10)
                return Bbox.from_extents(px0 / W, py0 / H, px1 / W, py1 / H)
            return place

        x = np.arange(ncat, dtype=float)
        panels = []
        for k, ser in enumerate(data.series):
            ax = host.inset_axes([0, 0, 1, 1])
            ax.set_axes_locator(locator(k))
            ax.set_facecolor(theme["face"] or st.background)
            panels.append(ax)
            lo, hi = limits[k]
            if data.extra["mark"] == "bar":
                bars = ax.bar(x, ser.values, width=st.bar_width, color=ser.color, zorder=2)
                d.marks += [Mark(id=f"s{k}c{c}", series=k, category=c, artist=p) for c, p in enumerate(bars.patches)]
            else:
                ax.plot(x, ser.values, color=ser.color, linewidth=st.line_width, zorder=3, solid_capstyle="round")
                for c, v in enumerate(ser.values):
                    (pt,) = ax.plot([x[c]], [v], linestyle="none", marker="o", markersize=MARKER_PT, color=ser.color,
                                    markeredgewidth=0, zorder=4)
                    d.marks.append(Mark(id=f"s{k}c{c}", series=k, category=c, artist=pt))
            ax.set_xlim(-0.6, ncat - 0.4)
            ax.set_ylim(lo, hi)
            ts, step = ticks[k]
            ax.set_yticks(ts, [fmt_tick(t, step) if (not shared or k % cols == 0) else "" for t in ts])
            ax.set_xticks(list(x), data.categories)
            self._decorate(ax, data, theme, fs, rotate)
            title = ax.set_title(ser.name, loc="left", fontsize=st.font_size, color=theme["text"], pad=4)
            d.category_texts.append(title)
            if refs:
                self._reference(d, ax, data, refs[k], small, theme)
            d.category_texts += [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        d.panels = panels  # read back by facts_extra

    def _decorate(self, ax: Any, data: ChartData, theme: dict[str, Any], fs: float, rotate: bool) -> None:
        st = data.style
        for name, spine in ax.spines.items():
            spine.set_visible(name in theme["spines"] or (name == "left" and st.theme == "minimal"))
            spine.set_color(theme["spine"])
        ax.tick_params(colors=theme["text"], labelsize=fs, length=0 if st.theme == "gray" else 3)
        if st.grid:
            ax.grid(True, axis="y", color=theme["grid"], linewidth=0.8)
        ax.set_axisbelow(True)
        if rotate:
            for label in ax.get_xticklabels():
                label.set(rotation=90, ha="center")

    def _reference(self, d: Drawn, ax: Any, data: ChartData, ref: float, size: float, theme: dict[str, Any]) -> None:
        color = REF_COLOR.get(data.style.theme, "#333333")
        ax.axhline(ref, color=color, linestyle="--", linewidth=1.1, zorder=2.5)
        word = "Target" if data.extra["reference"] == "target" else "Average"
        text = f"{word} {ref:,.{data.style.value_decimals}f}"
        d.category_texts.append(ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top",
                                        fontsize=size, color=color, zorder=5))

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        out = super().attrs(data, m, color)
        out["panel"] = data.series[m.series].name
        out["last_period"] = m.category == len(data.categories) - 1
        if data.extra.get("references"):
            out["reference"] = data.extra["references"][m.series]
        return out

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        h = data.style.height_px
        axes = {f"panel{k}": axis_facts(ax, "y", h) for k, ax in enumerate(d.panels)}
        return {"axes": axes, "entity_reads": {m.id: {"value": f"panel{m.series}"} for m in d.marks},
                "panels": [s.name for s in data.series], "shared_y": data.extra["shared_y"],
                "reference": None if data.extra["reference"] == "none" else {
                    "kind": data.extra["reference"], "values": data.extra["references"]}}

    def topic_ok(self, topic: Topic) -> bool:
        return "line" in topic.kinds
