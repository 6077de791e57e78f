"""The radar chart kind: Facts agree with the pixels (each vertex has its series' colour and lies on
its axis), no radial tolerance is declared. (Generating a run, re-executing its programs and
determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import numpy as np

from .kinds_common import centre_hits, pixels, render_spec

FAMILY = "chart.radar"


def test_vertex_pixels_have_the_series_colour():
    good = total = 0
    for i, given in enumerate(({"n_series": 1}, {"n_series": 3, "value_labels": "on"})):
        spec, r = render_spec(FAMILY, 4, i, given)
        colors = {s["name"]: s["color"] for s in spec.data["series"]}
        assert all(e.attrs["color"] == colors[e.attrs["series"]] for e in r.facts.entities)
        hits, n = centre_hits(pixels(r.png), r.facts.entities)
        good, total = good + hits, total + n
        assert r.facts.extra["value_axis"] is None  # no radial tolerance is declared
    assert good >= 0.85 * total  # another series' line may cross a vertex


def test_vertices_lie_on_their_axis_at_their_value():
    spec, r = render_spec(FAMILY, 4, 5, {"n_series": 2})
    boxes = {e.id: e.box for e in r.facts.entities}
    cx = np.mean([(b[0] + b[2]) / 2 for b in boxes.values()])
    n = len(spec.data["categories"])
    for e in r.facts.entities:  # the first axis points up: its vertices are above the centre, on one vertical
        if e.attrs["category"] == spec.data["categories"][0]:
            assert abs((e.box[0] + e.box[2]) / 2 - (boxes["s0c0"][0] + boxes["s0c0"][2]) / 2) < 1.0
    assert n >= 4 and cx > 0
