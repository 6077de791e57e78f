"""The heatmap chart kind: Facts agree with the pixels (each cell holds its colour, the colour of its
value), values are printed or compared by colour only. (Generating a run, re-executing its programs
and determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.heatmap import cell_color

from .kinds_common import commonest_colour, pixels, render_spec, rgb

FAMILY = "chart.heatmap"


def test_cell_pixels_have_the_cell_colour():
    for i, labels in enumerate(("on", "off")):
        spec, r = render_spec(FAMILY, 4, i, {"value_labels": labels})
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        assert len(r.facts.entities) == len(data.series) * len(data.categories)
        assert r.facts.extra["value_axis"] is None  # values are printed or compared by colour only
        for e in r.facts.entities:
            # a label sits at the centre: the cell's commonest colour
            assert commonest_colour(img, e.box, lead=2, trail=2) == rgb(e.attrs["color"]), e.id
            assert e.attrs["color"] == cell_color(data, e.attrs["value"])
        if labels == "off":
            assert r.facts.extra["printed"] == {}
