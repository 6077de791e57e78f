"""The donut kind: each ring segment has its colour, percentages sum to 100 and the total is the sum
of the parts, programs re-execute. (Generating a run and determinism are tested for every chart kind
in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deltaprompts.generators.chart_sampling import slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.donut import Donut, donut_total, total_text
from deltaprompts.questions import load_templates

from .kinds_common import draw_questions, pixels, renders_fixture, rgb

FAMILY = "chart.donut"
KNOB_SETS = ({"slice_names": "legend", "style": "dark"}, {"slice_names": "direct", "n_categories": 7},
             {"style": "gray", "size": "small", "value_decimals": 1})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_ring_segments_have_their_colour(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        hole = data.extra["hole"]
        assert 0.4 <= hole <= 0.6
        boxes = np.array([e.box for e in r.facts.entities])
        cx, cy = (boxes[:, 0].min() + boxes[:, 2].max()) / 2, (boxes[:, 1].min() + boxes[:, 3].max()) / 2
        radius = (boxes[:, 2].max() - boxes[:, 0].min()) / 2
        vals, start = data.series[0].values, 90.0
        for e, color in zip(r.facts.entities, slice_colors(data)):
            sweep = 360 * vals[int(e.id.split("c")[1])] / sum(vals)
            mid = math.radians(start - sweep / 2)
            start -= sweep
            at = (hole + 0.12 * (1 - hole)) * radius  # inside the ring, clear of the percentage label
            x, y = cx + at * math.cos(mid), cy - at * math.sin(mid)
            assert tuple(img[int(y), int(x)]) == rgb(color), e.id
        assert sum(e.attrs["percent"] for e in r.facts.entities) == pytest.approx(100, abs=0.5 * len(vals))
        # the hole holds the total (percent topics print none): background there, the number printed
        if donut_total(data) is not None:
            assert Donut().fields(data) == {"total": round(math.fsum(vals), data.style.value_decimals)}
            assert any(t.text == total_text(data) and t.role == "field:total" for t in r.facts.texts)
            assert r.facts.fields["total"] == Donut().fields(data)["total"]


def test_programs_reexecute(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.donut_")]
    assert len(tpls) >= 3
    asked = set()
    for _, _, t, q in draw_questions(FAMILY, renders, tpls, tries=3):
        asked.add(t.name)
        if q.answer_type == "percent":
            assert q.tolerance_source in ("printed", "computed")
    assert {"chart.donut_largest", "chart.donut_percent", "chart.donut_combined"} <= asked
