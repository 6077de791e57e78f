"""Chart families (bar, hbar, grouped/stacked bar, line, pie): curated topics drawn with matplotlib or plotly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from deltaprompts.errors import KnobError, RenderError
from deltaprompts.generators.base import Generator, Rendered, register
from deltaprompts.generators.chart_mpl import render_matplotlib
from deltaprompts.generators.chart_sampling import (
    N_CATEGORIES, N_SERIES, PALETTES, PLOTLY_THEMES, SIZES, THEMES, chart_context, sample_chart,
)
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.knobs import Knob
from deltaprompts.records import Spec


def _n_categories(kind: str) -> Knob:
    lo, hi = N_CATEGORIES[kind]
    return Knob("n_categories", "int", 0, f"categories ({'slices' if kind == 'pie' else 'marks per series'}); "
                f"0 = random, else {lo}-{hi}", lo=0, hi=hi, difficulty="higher is harder")


def _n_series(kind: str) -> Knob:
    lo, hi = N_SERIES[kind]
    return Knob("n_series", "int", 0, f"data series (legend entries); 0 = random, else {lo}-{hi}",
                lo=0, hi=hi, difficulty="higher is harder")


COMMON = (
    Knob("value_decimals", "int", 0, "decimals of the values (and of value labels / pie percentages)",
         lo=0, hi=2, difficulty="higher is harder"),
    Knob("style", "choice", "random", "theme: plain, minimal (few lines), gray (ggplot-like), dark",
         choices=("random", *THEMES), difficulty="dark and gray are slightly harder"),
    Knob("palette", "choice", "random", "named colour palette", choices=("random", *PALETTES), difficulty="none"),
    Knob("size", "choice", "random", "image size: " + ", ".join(f"{k} {w}x{h}" for k, (w, h) in SIZES.items()),
         choices=("random", *SIZES), difficulty="smaller is harder"),
    Knob("min_gap_pct", "float", 3.0, "least gap between values of one series (or one category), in % of the "
         "largest value (pie: of the mean slice); values never tie at the shown precision",
         lo=0.0, hi=10.0, difficulty="lower is harder"),
    Knob("renderer", "choice", "matplotlib", "drawing library", choices=("matplotlib", "plotly"),
         difficulty="none (a different look)"),
)
VALUE_LABELS = Knob("value_labels", "choice", "random", "print each value on its mark", choices=("on", "off", "random"),
                    difficulty="off is harder (values must be read against the axis)")
TICK_ROTATION = Knob("tick_rotation", "choice", "auto", "category tick label rotation in degrees; auto rotates "
                     "only when labels would collide", choices=("auto", "0", "30", "45", "90"),
                     difficulty="rotated is slightly harder; 0 with many long labels may collide")
LEGEND = Knob("legend", "choice", "random", "legend position: outside the axes, or inside (may cover marks)",
              choices=("random", "outside", "inside"), difficulty="inside is harder")
SLICE_NAMES = Knob("slice_names", "choice", "random", "name slices in a legend beside the pie, or directly at the rim",
                   choices=("random", "legend", "direct"), difficulty="legend is harder (match colours)")


class ChartFamily(Generator):
    """Shared sampling and rendering of the chart families; subclasses set name, chart_type, knobs."""

    domain: ClassVar[str] = "chart"
    version: ClassVar[str] = "1"
    chart_type: ClassVar[str]

    def resolve_knobs(self, given: dict[str, Any]) -> dict[str, Any]:
        """All knob values, parsed; raises KnobError also for a count between 0 (random) and the minimum."""
        knobs = super().resolve_knobs(given)
        if knobs.get("renderer") == "plotly" and knobs.get("style") not in ("random", *PLOTLY_THEMES):
            raise KnobError(f"knob 'style' of {self.name}: {knobs['style']!r} is not drawn by renderer=plotly; "
                            f"allowed: random, {', '.join(PLOTLY_THEMES)}")
        for name, table in (("n_categories", N_CATEGORIES), ("n_series", N_SERIES)):
            if name in knobs and 0 < int(knobs[name]) < table[self.chart_type][0]:
                lo, hi = table[self.chart_type]
                raise KnobError(f"knob {name!r} of {self.name}: {knobs[name]!r} is out of range; "
                                f"allowed: 0 (random) or an int in [{lo}, {hi}]")
        return knobs

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Sample a ChartData (dumped to JSON-able dict) from a curated topic; randomness only from rng."""
        return sample_chart(rng, self.chart_type, knobs).model_dump()

    def render(self, spec: Spec) -> Rendered:
        """Draw one Spec with the renderer its knobs name; raises RenderError."""
        return self.render_batch([spec])[0]

    def render_batch(self, specs: Sequence[Spec]) -> list[Rendered]:
        """Render Specs in order; those asking for plotly go to the plotly renderer in one batch."""
        out: list[Rendered | None] = [None] * len(specs)
        plotly_idx = [i for i, s in enumerate(specs) if s.knobs.get("renderer", "matplotlib") == "plotly"]
        if plotly_idx:
            try:  # optional dependency (kaleido + Chromium): imported only when asked for
                from deltaprompts.generators.chart_plotly import render_plotly_batch
            except ImportError as e:
                raise RenderError(f"renderer=plotly is unavailable: {e}") from None
            for i, r in zip(plotly_idx, render_plotly_batch([specs[i] for i in plotly_idx])):
                # the family owns the phrasing words: fill in any the renderer did not set
                words = chart_context(ChartData.model_validate(specs[i].data))
                r.facts.context = {**words, **r.facts.context}
                out[i] = r
        for i, spec in enumerate(specs):
            if out[i] is None:
                png, facts = render_matplotlib(ChartData.model_validate(spec.data))
                out[i] = Rendered(png=png, facts=facts)
        return out  # type: ignore[return-value]


@register
class BarChart(ChartFamily):
    """Vertical bars, one series."""

    name = "chart.bar"
    chart_type = "bar"
    description = "Vertical bar chart of one series over 3-12 categories (curated topics)."
    knobs = (_n_categories("bar"), VALUE_LABELS, TICK_ROTATION, *COMMON)


@register
class HBarChart(ChartFamily):
    """Horizontal bars, one series, first category at the top."""

    name = "chart.hbar"
    chart_type = "hbar"
    description = "Horizontal bar chart of one series over 3-12 categories."
    knobs = (_n_categories("hbar"), VALUE_LABELS, *COMMON)


@register
class GroupedBarChart(ChartFamily):
    """Side-by-side bars, 2-4 series per category."""

    name = "chart.grouped_bar"
    chart_type = "grouped_bar"
    description = "Grouped (clustered) vertical bars: 2-4 series side by side per category."
    knobs = (_n_categories("grouped_bar"), _n_series("grouped_bar"), VALUE_LABELS, TICK_ROTATION, LEGEND, *COMMON)


@register
class StackedBarChart(ChartFamily):
    """Stacked bars, 2-4 series per category."""

    name = "chart.stacked_bar"
    chart_type = "stacked_bar"
    description = "Stacked vertical bars: 2-4 series stacked per category; labels inside segments that fit."
    knobs = (_n_categories("stacked_bar"), _n_series("stacked_bar"), VALUE_LABELS, TICK_ROTATION, LEGEND, *COMMON)


@register
class LineChart(ChartFamily):
    """Lines over an ordered (time) axis, 1-4 series."""

    name = "chart.line"
    chart_type = "line"
    description = "Line chart over a time axis (months, years, quarters, days, hours): 1-4 series."
    knobs = (_n_categories("line"), _n_series("line"), VALUE_LABELS, TICK_ROTATION, LEGEND, *COMMON)


@register
class PieChart(ChartFamily):
    """A pie of one series with percentage labels on the slices."""

    name = "chart.pie"
    chart_type = "pie"
    description = "Pie chart of parts of a whole (2-8 slices) with percentage labels."
    knobs = (_n_categories("pie"), SLICE_NAMES, *COMMON)
