"""The histogram kind: a run passes the checks, bars have their colour, counts agree with the samples,
programs re-execute, the same Spec gives the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.histogram"
KNOB_SETS = ({"value_labels": "on", "style": "dark"}, {"value_labels": "off", "shape": "bimodal", "size": "small"},
             {"shape": "skewed", "style": "gray", "n_categories": 12})


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


def test_bars_have_the_series_colour_and_counts_match_the_samples(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        want = tuple(int(data.series[0].color[i:i + 2], 16) for i in (1, 3, 5))
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
            x0, y0, x1, y1 = e.box
            assert tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == want, e.id
        heights = np.array([e.box[3] - e.box[1] for e in r.facts.entities])
        assert np.ptp(heights / counts) <= 1.5 / counts.min() + 1e-6  # pixels proportional to counts
        top = sorted(counts)[-2:]
        assert top[1] >= 1.1 * top[0]  # one clear mode


def test_programs_reexecute_and_counts_get_an_axis_tolerance_unless_printed(renders):
    from deltaprompts.questions import load_templates, make_question, templates_for
    from deltaprompts.errors import ProgramError

    tpls = [t for t in load_templates() if t.name.startswith("chart.histogram_")]
    assert len(tpls) >= 3
    rng = np.random.default_rng(0)
    sources = set()
    for spec, r in renders:
        labelled = bool(r.facts.extra["printed"])
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(4):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                if q.answer_type == "number":
                    sources.add(q.tolerance_source)
                    assert q.tolerance_source == ("computed" if labelled else "axis") or (
                        labelled and q.tolerance_source == "printed"), (t.name, q.tolerance_source)
    assert "axis" in sources and sources - {"axis"}


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on"})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
