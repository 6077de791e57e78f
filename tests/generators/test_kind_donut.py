"""The donut kind: a run passes the checks, each ring segment has its colour, percentages sum to
100 and the total is the sum of the parts, programs re-execute, the same Spec gives the same bytes."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_sampling import slice_colors
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.donut import Donut, donut_total, total_text
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.donut"
KNOB_SETS = ({"slice_names": "legend", "style": "dark"}, {"slice_names": "direct", "n_categories": 7},
             {"style": "gray", "size": "small", "value_decimals": 1})


@pytest.fixture(scope="module")
def renders():
    fam = FAMILIES.get(FAMILY)()
    out = []
    for i, given in enumerate(KNOB_SETS):
        spec = fam.sample(5, i, fam.resolve_knobs(given))
        out.append((spec, fam.render(spec)))
    return out


def test_a_run_of_20_items_passes_the_checks(tmp_path):
    cfg = GenerateConfig(families=[FAMILY], n=20, seed=2, knobs=resolve_all_knobs([FAMILY], {}), balance_ratio=None)
    generate(cfg, tmp_path / "run")
    report = check_run(tmp_path / "run")
    assert report.items == 20 and not report.problems
    assert report.ill_posed <= 2, report.failed
    assert not report.failed.get("answer") and not report.failed.get("own_answer"), report.failed


def test_ring_segments_have_their_colour(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
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
            assert tuple(img[int(y), int(x)]) == tuple(int(color[i:i + 2], 16) for i in (1, 3, 5)), e.id
        assert sum(e.attrs["percent"] for e in r.facts.entities) == pytest.approx(100, abs=0.5 * len(vals))
        # the hole holds the total (percent topics print none): background there, the number printed
        if donut_total(data) is not None:
            assert Donut().fields(data) == {"total": round(math.fsum(vals), data.style.value_decimals)}
            assert any(t.text == total_text(data) and t.role == "field:total" for t in r.facts.texts)
            assert r.facts.fields["total"] == Donut().fields(data)["total"]


def test_programs_reexecute(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.donut_")]
    assert len(tpls) >= 3
    rng = np.random.default_rng(0)
    asked = set()
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(3):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                asked.add(t.name)
                assert engine.execute(q.program, r.facts) == q.value
                if q.answer_type == "percent":
                    assert q.tolerance_source in ("printed", "computed")
    assert {"chart.donut_largest", "chart.donut_percent", "chart.donut_combined"} <= asked


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
