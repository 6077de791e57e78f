"""The box kind: a run passes the checks, boxes have their colour, the statistics agree with the
samples (Tukey whiskers), programs re-execute, the same Spec gives the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.box"
KNOB_SETS = ({"value_labels": "on", "style": "dark", "outliers": "on"}, {"value_labels": "off", "n_categories": 6,
             "size": "small"}, {"value_decimals": 1, "style": "gray", "value_labels": "on", "n_categories": 2})


@pytest.fixture(scope="module")
def renders():
    fam = FAMILIES.get(FAMILY)()
    out = []
    for i, given in enumerate(KNOB_SETS):
        spec = fam.sample(5, i, fam.resolve_knobs(given))
        out.append((spec, fam.render(spec)))
    return out


def test_a_run_of_20_items_passes_the_checks(tmp_path):
    cfg = GenerateConfig(families=[FAMILY], n=20, seed=2, questions_per_image=2,
                         knobs=resolve_all_knobs([FAMILY], {}), balance_ratio=None)
    generate(cfg, tmp_path / "run")
    report = check_run(tmp_path / "run")
    assert report.items == 20 and not report.problems
    assert report.ill_posed <= 2, report.failed
    assert not report.failed.get("answer") and not report.failed.get("own_answer"), report.failed


def test_boxes_have_their_colour_and_the_statistics_of_their_samples(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        assert len(r.facts.entities) == len(data.categories) == len(data.extra["samples"])
        for e in r.facts.entities:
            s = np.array(data.extra["samples"][int(e.id.split("c")[1])])
            assert len(s) % 2 == 1 and e.attrs["median"] == e.attrs["value"] == pytest.approx(np.median(s))
            q1, q3 = np.percentile(s, [25, 75])
            assert (e.attrs["q1"], e.attrs["q3"]) == (pytest.approx(q1, abs=0.01), pytest.approx(q3, abs=0.01))
            iqr = q3 - q1
            assert e.attrs["whisker_hi"] == pytest.approx(s[s <= q3 + 1.5 * iqr].max(), abs=0.01)
            assert e.attrs["whisker_lo"] == pytest.approx(s[s >= q1 - 1.5 * iqr].min(), abs=0.01)
            x0, y0, x1, y1 = e.box
            patch = img[int(y0) + 2:int(y1) - 1, int(x0) + 2:int(x1) - 1].reshape(-1, 3)
            colors, counts = np.unique(patch, axis=0, return_counts=True)  # the median line crosses the box
            want = tuple(int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5))
            assert tuple(colors[counts.argmax()]) == want, e.id
        # the box spans q1..q3 on the value axis: pixels per unit the same for every box
        spans = np.array([(e.box[3] - e.box[1]) / (e.attrs["q3"] - e.attrs["q1"]) for e in r.facts.entities])
        assert np.ptp(spans) / spans.mean() < 0.05
        reads = r.facts.extra["reads"]
        assert {reads[a] for a in ("median", "q1", "q3", "whisker_lo", "whisker_hi")} == {"value"}
        assert r.facts.extra["axes"]["value"]["axis"] == "y"


def test_programs_reexecute_and_readings_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.box_")]
    assert len(tpls) >= 3
    rng = np.random.default_rng(0)
    seen = set()
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(4):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                seen.add((t.name, q.tolerance_source))
    assert ("chart.box_iqr", "axis") in seen and ("chart.box_median_lookup", "axis") in seen
    assert ("chart.box_median_lookup", "printed") in seen  # a printed median label is exact
    assert {n for n, _ in seen} == {t.name for t in tpls}


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on"})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
