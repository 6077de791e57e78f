"""The stacked area kind: a run passes the checks, each layer's top point has its colour, tops are
running sums read against the declared y axis (values have no axis of their own), programs
re-execute, the same Spec gives the same bytes."""

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
from deltaprompts.tolerances import tolerance_for
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.stacked_area"
KNOB_SETS = ({"n_series": 4, "value_labels": "on", "style": "dark"}, {"n_series": 2, "value_labels": "off"},
             {"n_series": 3, "style": "gray", "size": "small", "legend": "inside", "value_labels": "off"})


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


def test_layer_tops_have_their_colour_and_are_running_sums(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        hidden = set(r.facts.extra["legend_overlap"])
        assert r.facts.extra["value_axis"] is None and r.facts.extra["reads"] == {"top": "y"}
        good = total = 0
        for e in r.facts.entities:
            s, c = (int(x) for x in e.id[1:].split("c"))
            assert e.attrs["value"] == data.series[s].values[c]
            assert e.attrs["top"] == pytest.approx(sum(data.series[k].values[c] for k in range(s + 1)))
            if e.id in hidden:
                continue
            x0, y0, x1, y1 = e.box
            want = tuple(int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5))
            total += 1
            good += tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == want
        assert good >= 0.8 * total, (good, total)  # a thin line's centre pixel may be antialiased
        # one clear peak of the totals
        totals = sorted(np.sum([s.values for s in data.series], axis=0))
        assert totals[-1] - totals[-2] >= 0.04 * totals[-1] - 1e-9


def test_programs_reexecute_and_tops_read_against_the_axis_unless_printed(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.stacked_area_")]
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
                    assert q.tolerance_source == ("printed" if labelled else "axis"), t.name
    assert "axis" in sources and "printed" in sources
    # a layer's own value is not read off the axis (it would be two readings)
    spec, r = renders[1]
    prog = engine.parse("query[attr=value](unique(filter[attr=category, value=$c](filter[attr=series, "
                        "value=$s](scene()))))")
    e = r.facts.entities[-1]
    bound = engine.bind(prog, {"c": e.attrs["category"], "s": e.attrs["series"]})
    with pytest.raises(ProgramError):
        tolerance_for(bound, e.attrs["value"], "number", r.facts)


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on", "n_series": 3})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
