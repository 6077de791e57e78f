"""The bubble kind: bubbles have their colour and an area proportional to their size, sizes are
comparable by eye, programs re-execute and sizes are read only where printed. (Generating a run and
determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import numpy as np

from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.bubble import MIN_SIZE_RATIO
from deltaprompts.questions import load_templates

from .kinds_common import commonest_colour, draw_questions, pixels, renders_fixture, rgb

FAMILY = "chart.bubble"
KNOB_SETS = ({"value_labels": "on", "style": "dark"}, {"value_labels": "off", "n_categories": 10, "size": "small"},
             {"value_decimals": 1, "style": "gray", "value_labels": "on", "size_legend": "bottom"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_bubbles_have_their_colour_and_an_area_proportional_to_size(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        ents = r.facts.entities
        assert len(ents) == len(data.categories) and {"x", "size", "value"} <= set(ents[0].attrs)
        for e in ents:
            x0, y0, x1, y1 = e.box
            cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4
            # the central square; a size label may sit at the centre: its commonest colour
            assert commonest_colour(img, (cx - h, cy - h, cx + h, cy + h), 0, 0) == rgb(e.attrs["color"]), e.id
        sizes = np.array([e.attrs["size"] for e in ents])
        diam = np.array([e.box[2] - e.box[0] for e in ents])
        area_per_size = diam ** 2 / sizes
        assert np.ptp(area_per_size) / area_per_size.mean() < 0.06
        s = np.sort(sizes)
        assert (s[1:] / s[:-1] >= MIN_SIZE_RATIO - 0.05).all()  # neighbours in size differ visibly
        assert r.facts.extra["reads"] == {"x": "x"} and r.facts.extra["axes"]["x"]["axis"] == "x"
        if data.style.value_labels:
            assert {k for p in r.facts.extra["printed"].values() for k in p} == {"size"}


def test_programs_reexecute_and_sizes_are_read_only_where_printed(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.bubble_")
            or (t.name.startswith("chart.scatter_") and "chart.bubble" in t.applies_to)]
    assert len([t for t in tpls if t.name.startswith("chart.bubble_")]) >= 3
    seen = set()
    for _, r, t, q in draw_questions(FAMILY, renders, tpls, tries=4):
        seen.add(t.name)
        if t.name == "chart.bubble_size_lookup":
            e = next(e for e in r.facts.entities if e.attrs["category"] == q.program.args[0].args[0].params["value"])
            assert e.id in r.facts.extra["printed"] and q.tolerance_source == "printed"
    assert {"chart.bubble_largest", "chart.bubble_compare", "chart.bubble_size_lookup", "chart.scatter_x_lookup"} <= seen
