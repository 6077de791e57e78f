"""Candlestick (OHLC) chart of one stock over 8-20 trading days, dates as categories.

Each day's candle is a body from open to close, green (or blue) when the day closed up and red (or
orange) when it closed down, and a wick from low to high. Prices come from a random walk; the
sampling keeps the questions visibly well posed: every body is tall enough to show its direction,
the widest day (high - low) clearly beats the runner-up, and so does the highest close. Every
price is read against the y axis (`extra["reads"]`); `value` is the close.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from matplotlib.patches import Patch

from deltaprompts.errors import RenderError
from deltaprompts.generators.chart_kind import (
    LEGEND, TICK_ROTATION, ChartKind, common_knobs, n_categories_knob, register_kind,
)
from deltaprompts.generators.chart_mpl import Drawn, Mark
from deltaprompts.generators.chart_sampling import color_name, load_topics
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.error_bars import UnionExtent
from deltaprompts.generators.kinds.scatter import axis_facts
from deltaprompts.knobs import Knob

COLORS = Knob("candle_colors", "choice", "random", "up/down colours: green/red, or blue/orange (colour-blind safe)",
              choices=("random", "green_red", "blue_orange"), difficulty="none (a legend names them)")
#: (up, down) colours; palette colours, so that each has a plain name
CANDLE_COLORS = {"green_red": ("#2ca02c", "#d62728"), "blue_orange": ("#1f77b4", "#ff7f0e")}
MIN_BODY = 0.025  # the least body height, as a fraction of the chart's price span
WIDEST_MARGIN = 1.25  # the widest day's range over the runner-up's
TOP_CLOSE_MARGIN = 0.03  # the highest close over the runner-up, as a fraction of the price span
WICK_PX = 1.4


def trading_days(rng: np.random.Generator, n: int) -> list[dt.date]:
    """n consecutive weekdays from a random start in 2016-2024."""
    day = dt.date(int(rng.integers(2016, 2025)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
    out: list[dt.date] = []
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def _walk(rng: np.random.Generator, n: int, lo: float, hi: float, decimals: int) -> np.ndarray | None:
    """One OHLC draw (4 x n: open, high, low, close) at `decimals`, or None when it misses a margin."""
    step = 10.0 ** -decimals
    sigma, drift = rng.uniform(0.012, 0.03), rng.normal(0, 0.004)
    price = rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))
    o, c = np.empty(n), np.empty(n)
    for i in range(n):
        o[i] = price if i == 0 else c[i - 1] * (1 + rng.normal(0, 0.3 * sigma))
        c[i] = o[i] * np.exp(rng.normal(drift, sigma))
    span = float(max(o.max(), c.max()) - min(o.min(), c.min())) or float(o[0]) * sigma
    body = max(MIN_BODY * 1.3 * span, 2 * step)
    sign = np.where(c >= o, 1.0, -1.0)
    c = np.where(np.abs(c - o) < body, o + sign * body, c)  # every body shows its direction
    top, bot = np.maximum(o, c), np.minimum(o, c)
    wick = np.abs(rng.normal(0, 0.5 * sigma, size=(2, n))) * o + step
    h, low = top + wick[0], bot - wick[1]
    k = int(rng.integers(0, n))  # the widest day: both wicks stretched past every other day's range
    rng_ = h - low
    others = float(np.max(np.delete(rng_, k)))
    extra = others * rng.uniform(WIDEST_MARGIN + 0.05, 1.6) - rng_[k]
    if extra > 0:
        share = rng.uniform(0.3, 0.7)
        h[k] += share * extra
        low[k] -= (1 - share) * extra
    ohlc = np.round(np.array([o, h, low, c]), decimals)
    o, h, low, c = ohlc
    span = float(h.max() - low.min())
    ranges, closes = np.sort(h - low), np.sort(c)
    if (np.min(np.abs(c - o)) < max(MIN_BODY * span, step) or ranges[-1] < WIDEST_MARGIN * ranges[-2]
            or closes[-1] - closes[-2] < TOP_CLOSE_MARGIN * span or low.min() <= 0):
        return None
    return ohlc


def ohlc_walk(rng: np.random.Generator, n: int, lo: float, hi: float, decimals: int) -> np.ndarray:
    """Open, high, low and close (4 x n) of n trading days whose questions are well posed."""
    for _ in range(200):
        got = _walk(rng, n, lo, hi, decimals)
        if got is not None:
            return got
    raise RenderError(f"no well-posed OHLC walk of {n} days in [{lo}, {hi}] at {decimals} decimals")


@register_kind
class Candlestick(ChartKind):
    """Daily open-high-low-close candles of one stock."""

    name = "candlestick"
    description = "Candlestick (OHLC) chart of one stock over 8-20 trading days, dates on the x axis."
    mark = "candle"
    n_categories, n_categories_random = (8, 20), (8, 16)
    by_category = True
    knobs = (n_categories_knob(8, 20, "trading days"), COLORS, TICK_ROTATION, LEGEND, *common_knobs(("matplotlib",)))

    def values(self, rng: np.random.Generator, topic: Any, n_ser: int, n_cat: int, decimals: int,
               gap_pct: float) -> list[list[float]]:
        return [[0.0] * n_cat]  # drawn with open, high and low in finish(), which needs them together

    def style_legend(self, rng: np.random.Generator, knobs: dict[str, Any], legend: bool,
                     legend_loc: str) -> tuple[bool, str]:
        # always a legend (it names the up and down colours); never beside the axes, whose width the
        # dates need
        return True, "outside bottom" if legend_loc == "outside right" else legend_loc

    def finish(self, rng: np.random.Generator, data: ChartData, knobs: dict[str, Any]) -> ChartData:
        topic = next(t for t in load_topics() if t.id == data.topic)
        n, dec = len(data.categories), data.style.value_decimals
        days = trading_days(rng, n)
        o, h, low, c = ohlc_walk(rng, n, *topic.range, dec)
        scheme = knobs.get("candle_colors", "random")
        scheme = scheme if scheme != "random" else tuple(CANDLE_COLORS)[int(rng.integers(0, len(CANDLE_COLORS)))]
        data.categories = [f"{d:%b} {d.day}" for d in days]
        if knobs.get("tick_rotation", "auto") == "auto":  # the sampler measured the topic's stand-in names
            data.style.tick_rotation = self.auto_rotation(data.categories, data.style)
        period = f"{data.categories[0]}\u2013{data.categories[-1]}"
        pattern = topic.titles[int(rng.integers(0, len(topic.titles)))]
        data.title = pattern.format(series=data.series[0].name, period=period, year=days[-1].year, company="")
        data.series[0].values = [float(v) for v in c]
        data.series[0].color = CANDLE_COLORS[scheme][0]
        data.extra = {"open": o.tolist(), "high": h.tolist(), "low": low.tolist(), "colors": scheme,
                      "dates": [d.isoformat() for d in days]}
        data.style.value_labels = False
        return data

    def mark_colors(self, data: ChartData) -> list[str]:
        up, down = CANDLE_COLORS[data.extra["colors"]]
        return [up if c > o else down for o, c in zip(data.extra["open"], data.series[0].values)]

    def draw(self, d: Drawn, data: ChartData, theme: dict[str, Any]) -> None:
        st, ax = data.style, d.ax
        o, h, low = (np.array(data.extra[k]) for k in ("open", "high", "low"))
        c = np.array(data.series[0].values)
        colors = self.mark_colors(data)
        width = min(0.7, st.bar_width)
        for i in range(len(c)):
            ax.plot([i, i], [low[i], h[i]], color=colors[i], linewidth=WICK_PX, solid_capstyle="butt", zorder=2)
            body = ax.bar(i, abs(c[i] - o[i]), bottom=min(o[i], c[i]), width=width, color=colors[i],
                          zorder=3).patches[0]
            extent = UnionExtent(ax, body, float(i), 0.0, float(low[i]), float(h[i]), WICK_PX * st.dpi / 72 / 2)
            d.marks.append(Mark(id=f"s0c{i}", series=0, category=i, artist=extent))  # type: ignore[arg-type]
        span = float(h.max() - low.min())
        head = 0.06 + 0.2 * (st.legend and not st.legend_loc.startswith("outside"))
        ax.set_ylim(float(low.min()) - 0.06 * span, float(h.max()) + head * span)
        ax.set_xticks(list(range(len(c))), data.categories)
        ax.set_xlim(-0.7, len(c) - 0.3)

    def legend_entries(self, d: Drawn, data: ChartData) -> tuple[list[Any], list[str]]:
        up, down = CANDLE_COLORS[data.extra["colors"]]
        return [Patch(color=up), Patch(color=down)], ["Up (close > open)", "Down (close < open)"]

    def attrs(self, data: ChartData, m: Mark, color: str) -> dict[str, Any]:
        dec = data.style.value_decimals
        o, h, low = (round(data.extra[k][m.category], dec) for k in ("open", "high", "low"))
        close = round(data.series[0].values[m.category], dec)
        return {"series": data.series[0].name, "category": data.categories[m.category],
                "date": data.extra["dates"][m.category], "open": o, "high": h, "low": low, "close": close,
                "value": close, "range": round(h - low, dec), "direction": "up" if close > o else "down",
                "color_name": color_name(color), "color": color}

    def context(self, data: ChartData) -> dict[str, Any]:
        return {"ticker": data.series[0].name}

    def facts_extra(self, d: Drawn, data: ChartData) -> dict[str, Any]:
        return {"axes": {"y": axis_facts(d.ax, "y", data.style.height_px)},
                "reads": {k: "y" for k in ("open", "high", "low", "close")}, "candle_colors": data.extra["colors"]}
