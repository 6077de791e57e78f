"""The chart families: one per registered chart kind (generators/chart_kind.py), drawn with
matplotlib or, for the kinds that offer it, plotly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from deltaprompts.errors import KnobError, RenderError
from deltaprompts.generators.base import Generator, Rendered, register
from deltaprompts.generators.chart_kind import KINDS, ChartKind, chart_context, kind_of
from deltaprompts.generators.chart_mpl import render_matplotlib
from deltaprompts.generators.chart_sampling import PLOTLY_THEMES, sample_chart
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.records import Spec


class ChartFamily(Generator):
    """The family of one chart kind: sampling, knob checks and rendering go through the kind."""

    domain: ClassVar[str] = "chart"
    version: ClassVar[str] = "1"
    chart_type: ClassVar[str]

    @property
    def kind(self) -> ChartKind:
        return kind_of(self.chart_type)

    def resolve_knobs(self, given: dict[str, Any]) -> dict[str, Any]:
        """All knob values, parsed; raises KnobError also for a count between 0 (random) and the minimum."""
        knobs = super().resolve_knobs(given)
        if knobs.get("renderer") == "plotly" and knobs.get("style") not in ("random", *PLOTLY_THEMES):
            raise KnobError(f"knob 'style' of {self.name}: {knobs['style']!r} is not drawn by renderer=plotly; "
                            f"allowed: random, {', '.join(PLOTLY_THEMES)}")
        for name, span in (("n_categories", self.kind.n_categories), ("n_series", self.kind.n_series)):
            if span is not None and name in knobs and 0 < int(knobs[name]) < span[0]:
                raise KnobError(f"knob {name!r} of {self.name}: {knobs[name]!r} is out of range; "
                                f"allowed: 0 (random) or an int in [{span[0]}, {span[1]}]")
        return knobs

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Sample a ChartData (as the Spec's JSON-able dict) from a curated topic; randomness only from rng."""
        return sample_chart(rng, self.kind, knobs).spec_data()

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


def family_of(kind: ChartKind) -> type[ChartFamily]:
    """The family class of a chart kind (`chart.<kind>`)."""
    return type(f"{type(kind).__name__}Chart", (ChartFamily,), {
        "__doc__": type(kind).__doc__, "__module__": type(kind).__module__, "name": kind.family,
        "chart_type": kind.name, "description": kind.description, "version": kind.version, "knobs": kind.knobs})


for _name in KINDS.names():
    register(family_of(KINDS.get(_name)))
