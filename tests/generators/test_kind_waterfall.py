"""The waterfall chart kind: Facts agree with the pixels (each bar holds its colour) and the running
totals, a step's value declares no single-reading axis. (Generating a run, re-executing its programs
and determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

from .kinds_common import centre_colour, pixels, render_spec, rgb

FAMILY = "chart.waterfall"


def test_bar_pixels_and_running_totals():
    for i, given in enumerate(({"value_labels": "on"}, {"value_labels": "off", "colors": "blue_orange"})):
        spec, r = render_spec(FAMILY, 4, i, given)
        img = pixels(r.png)
        hidden = set(r.facts.extra["legend_overlap"])
        ents = {e.id: e for e in r.facts.entities}
        steps = spec.data["series"][0]["values"]
        assert len(ents) == len(steps) + 2
        total = ents["start"].attrs["value"]
        for c, v in enumerate(steps):
            e = ents[f"s0c{c}"]
            assert e.attrs["start"] == total and e.attrs["value"] == v == e.attrs["step"]
            total = round(total + v, spec.data["style"]["value_decimals"])
            assert e.attrs["end"] == total and e.attrs["type"] == ("increase" if v > 0 else "decrease")
        assert ents["end"].attrs["value"] == total
        assert any(v > 0 for v in steps) and any(v < 0 for v in steps)
        for e in r.facts.entities:
            if e.id not in hidden:
                assert centre_colour(img, e.box) == rgb(e.attrs["color"]), e.id
        # a step's value is two readings: no single-reading value axis; start/end read on the y axis
        assert r.facts.extra["value_axis"] is None and r.facts.extra["reads"] == {"start": "y", "end": "y"}
