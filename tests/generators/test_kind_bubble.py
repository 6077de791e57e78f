"""The bubble kind: a run passes the checks, bubbles have their colour and an area proportional to
their size, sizes are comparable by eye, programs re-execute, the same Spec gives the same bytes."""

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
from deltaprompts.generators.kinds.bubble import MIN_SIZE_RATIO
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.bubble"
KNOB_SETS = ({"value_labels": "on", "style": "dark"}, {"value_labels": "off", "n_categories": 10, "size": "small"},
             {"value_decimals": 1, "style": "gray", "value_labels": "on", "size_legend": "bottom"})


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
    assert report.ill_posed <= 4, report.failed
    assert not report.failed.get("answer") and not report.failed.get("own_answer"), report.failed


def test_bubbles_have_their_colour_and_an_area_proportional_to_size(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        ents = r.facts.entities
        assert len(ents) == len(data.categories) and {"x", "size", "value"} <= set(ents[0].attrs)
        for e in ents:
            x0, y0, x1, y1 = e.box
            cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4
            patch = img[int(cy - h):int(cy + h), int(cx - h):int(cx + h)].reshape(-1, 3)
            colors, counts = np.unique(patch, axis=0, return_counts=True)  # a size label may sit at the centre
            want = tuple(int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5))
            assert tuple(colors[counts.argmax()]) == want, e.id
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
    rng = np.random.default_rng(0)
    seen = set()
    for spec, r in renders:
        printed = r.facts.extra["printed"]
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(4):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                seen.add(t.name)
                if t.name == "chart.bubble_size_lookup":
                    e = next(e for e in r.facts.entities if e.attrs["category"] == q.program.args[0].args[0].params["value"])
                    assert e.id in printed and q.tolerance_source == "printed"
    assert {"chart.bubble_largest", "chart.bubble_compare", "chart.bubble_size_lookup", "chart.scatter_x_lookup"} <= seen


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on"})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
