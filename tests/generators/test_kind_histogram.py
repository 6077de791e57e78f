"""The histogram kind: bars have their colour, counts agree with the samples, programs re-execute and
counts get an axis tolerance unless printed. (Generating a run and determinism are tested for every
chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import numpy as np

from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates

from .kinds_common import centre_colour, draw_questions, pixels, renders_fixture, rgb

FAMILY = "chart.histogram"
KNOB_SETS = ({"value_labels": "on", "style": "dark"}, {"value_labels": "off", "shape": "bimodal", "size": "small"},
             {"shape": "skewed", "style": "gray", "n_categories": 12})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_bars_have_the_series_colour_and_counts_match_the_samples(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        want = rgb(data.series[0].color)
        edges = data.extra["edges"]
        counts = np.histogram(data.extra["samples"], bins=edges)[0]
        assert len(r.facts.entities) == len(edges) - 1 and 5 <= len(edges) - 1 <= 12
        steps = np.diff(edges)
        assert np.allclose(steps, steps[0]) and all(float(e / steps[0]).is_integer() for e in edges)  # round edges
        for e in r.facts.entities:
            c = int(e.id.split("c")[1])
            assert e.attrs["count"] == e.attrs["value"] == counts[c] > 0
            assert (e.attrs["bin_lo"], e.attrs["bin_hi"]) == (edges[c], edges[c + 1])
            assert e.attrs["category"] == f"{edges[c]:g}-{edges[c + 1]:g}"
            assert centre_colour(img, e.box) == want, e.id
        heights = np.array([e.box[3] - e.box[1] for e in r.facts.entities])
        assert np.ptp(heights / counts) <= 1.5 / counts.min() + 1e-6  # pixels proportional to counts
        top = sorted(counts)[-2:]
        assert top[1] >= 1.1 * top[0]  # one clear mode


def test_programs_reexecute_and_counts_get_an_axis_tolerance_unless_printed(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.histogram_")]
    assert len(tpls) >= 3
    sources = set()
    for _, r, t, q in draw_questions(FAMILY, renders, tpls, tries=4):
        if q.answer_type == "number":
            labelled = bool(r.facts.extra["printed"])
            sources.add(q.tolerance_source)
            assert q.tolerance_source == ("computed" if labelled else "axis") or (
                labelled and q.tolerance_source == "printed"), (t.name, q.tolerance_source)
    assert "axis" in sources and sources - {"axis"}
