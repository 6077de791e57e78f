"""The area, stacked area and donut kinds drawn by plotly: the same Spec gives the same data in
the Facts as matplotlib's (entity ids and attributes, a donut's total field, a stacked area's
declared axis for tops), and the marks' boxes lie on their colours in Chromium's pixels."""

from __future__ import annotations

import pytest

from deltaprompts.errors import RenderError
from deltaprompts.generators import chart_plotly
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_mpl import render_matplotlib
from deltaprompts.generators.chart_spec import ChartData

from .kinds_common import centre_hits, pixels

CASES = (("chart.area", {"n_series": 3, "value_labels": "on"}), ("chart.area", {"n_series": 1}),
         ("chart.stacked_area", {"n_series": 3, "value_labels": "on", "style": "dark"}),
         ("chart.stacked_area", {"n_series": 2, "value_labels": "off"}),
         ("chart.donut", {"slice_names": "legend"}), ("chart.donut", {"slice_names": "direct", "style": "gray"}))


@pytest.fixture(scope="module")
def pairs():
    pytest.importorskip("kaleido", reason="plotly export needs the kaleido package")
    try:
        chart_plotly.find_browser()
    except RenderError as e:
        pytest.skip(f"no browser for plotly export: {e}")
    specs = []
    for i, (family, given) in enumerate(CASES):
        fam = FAMILIES.get(family)()
        specs.append(fam.sample(7, i, fam.resolve_knobs({**given, "renderer": "plotly"})))
    plotly = chart_plotly.render_plotly_batch(specs)
    return [(s, p, render_matplotlib(ChartData.model_validate(s.data))[1]) for s, p in zip(specs, plotly)]


def test_plotly_and_matplotlib_facts_agree_on_the_data(pairs):
    for spec, p, mpl in pairs:
        pf = p.facts
        assert pf.extra["renderer"] == "plotly" and mpl.extra["renderer"] == "matplotlib"
        assert [e.id for e in pf.entities] == [e.id for e in mpl.entities], spec.family
        for a, b in zip(pf.entities, mpl.entities):
            assert a.attrs == b.attrs, (spec.family, a.id)
        assert pf.fields == mpl.fields  # a donut's total included
        if spec.family == "chart.stacked_area":
            assert pf.extra["value_axis"] is None and pf.extra["reads"] == mpl.extra["reads"] == {"top": "y"}
            assert set(pf.extra["printed"]) == set(mpl.extra["printed"])
            assert all(set(v) == {"top"} for v in pf.extra["printed"].values())
        if spec.family == "chart.donut":
            data = ChartData.model_validate(spec.data)
            if data.unit != "%":
                assert pf.fields["total"] == round(sum(data.series[0].values), data.style.value_decimals)
                assert any(t.role == "field:total" for t in pf.texts)
            assert pf.extra["printed"] == mpl.extra["printed"]


def test_plotly_marks_lie_on_their_colour(pairs):
    for spec, p, _ in pairs:
        if spec.family == "chart.donut":
            continue  # a wedge's box is not its colour (the ring around it); its label is checked by the pie tests
        # Chromium's antialiasing: within 8 per channel
        good, total = centre_hits(pixels(p.png), p.facts.entities, skip=p.facts.extra["legend_overlap"], tol=8)
        assert good >= 0.8 * total, (spec.family, good, total)
