"""The box kind: boxes have their colour, the statistics agree with the samples (Tukey whiskers),
programs re-execute and readings get an axis tolerance. (Generating a run and determinism are tested
for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates

from .kinds_common import commonest_colour, draw_questions, pixels, renders_fixture, rgb

FAMILY = "chart.box"
KNOB_SETS = ({"value_labels": "on", "style": "dark", "outliers": "on"}, {"value_labels": "off", "n_categories": 6,
             "size": "small"}, {"value_decimals": 1, "style": "gray", "value_labels": "on", "n_categories": 2})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_boxes_have_their_colour_and_the_statistics_of_their_samples(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        assert len(r.facts.entities) == len(data.categories) == len(data.extra["samples"])
        for e in r.facts.entities:
            s = np.array(data.extra["samples"][int(e.id.split("c")[1])])
            assert len(s) % 2 == 1 and e.attrs["median"] == e.attrs["value"] == pytest.approx(np.median(s))
            q1, q3 = np.percentile(s, [25, 75])
            assert (e.attrs["q1"], e.attrs["q3"]) == (pytest.approx(q1, abs=0.01), pytest.approx(q3, abs=0.01))
            iqr = q3 - q1
            assert e.attrs["whisker_hi"] == pytest.approx(s[s <= q3 + 1.5 * iqr].max(), abs=0.01)
            assert e.attrs["whisker_lo"] == pytest.approx(s[s >= q1 - 1.5 * iqr].min(), abs=0.01)
            # the median line crosses the box: its commonest colour
            assert commonest_colour(img, e.box, lead=2, trail=1) == rgb(e.attrs["color"]), e.id
        # the box spans q1..q3 on the value axis: pixels per unit the same for every box
        spans = np.array([(e.box[3] - e.box[1]) / (e.attrs["q3"] - e.attrs["q1"]) for e in r.facts.entities])
        assert np.ptp(spans) / spans.mean() < 0.05
        reads = r.facts.extra["reads"]
        assert {reads[a] for a in ("median", "q1", "q3", "whisker_lo", "whisker_hi")} == {"value"}
        assert r.facts.extra["axes"]["value"]["axis"] == "y"


def test_programs_reexecute_and_readings_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.box_")]
    assert len(tpls) >= 3
    seen = {(t.name, q.tolerance_source) for _, _, t, q in draw_questions(FAMILY, renders, tpls, tries=4)}
    assert ("chart.box_iqr", "axis") in seen and ("chart.box_median_lookup", "axis") in seen
    assert ("chart.box_median_lookup", "printed") in seen  # a printed median label is exact
    assert {n for n, _ in seen} == {t.name for t in tpls}
