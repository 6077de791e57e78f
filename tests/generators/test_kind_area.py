"""The area kind: a run passes the checks, each point's pixel has its series' colour, programs
re-execute (the crossing and widest-gap ops among them), the same Spec gives the same bytes."""

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
from deltaprompts.programs import OPS
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Entity, Facts
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.area"
KNOB_SETS = ({"n_series": 3, "value_labels": "on", "style": "dark"}, {"n_series": 1, "value_labels": "off"},
             {"n_series": 2, "style": "gray", "size": "small", "legend": "inside"})


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


def test_points_have_their_series_colour(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        hidden = set(r.facts.extra["legend_overlap"])
        good = total = 0
        for e in r.facts.entities:
            if e.id in hidden:
                continue
            s, c = (int(x) for x in e.id[1:].split("c"))
            assert e.attrs["value"] == data.series[s].values[c] and e.attrs["color"] == data.series[s].color
            x0, y0, x1, y1 = e.box
            want = tuple(int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5))
            total += 1
            good += tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == want
        # another series' line may cross a point; a thin line's centre pixel may be antialiased
        assert good >= 0.8 * total, (good, total)


def test_programs_reexecute(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.area_") or t.name == "chart.line_crossing"]
    assert len(tpls) >= 4
    rng = np.random.default_rng(0)
    asked = set()
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(4):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                asked.add(t.name)
                assert engine.execute(q.program, r.facts) == q.value
                if q.answer_type == "number":
                    assert q.tolerance_source in ("printed", "axis")
    assert {"chart.area_value", "chart.area_value_series"} <= asked


def _series(name: str, values: list[float], y0: float = 0.0) -> list[Entity]:
    return [Entity(id=f"{name}{c}", attrs={"series": name, "category": f"m{c}", "value": v},
                   box=(10.0 * c, 100 - v, 10.0 * c + 4, 104 - v)) for c, v in enumerate(values)]


def test_crossing_op_finds_the_one_swap_and_refuses_the_rest():
    cross = OPS.get("crossing").fn
    facts = Facts(domain="chart", kind="line", width=100, height=100)
    a, b = _series("A", [10, 20, 30, 40]), _series("B", [35, 30, 25, 20])
    assert cross(facts, {"attr": "value"}, a, b) == "m1"
    assert cross(facts, {"attr": "value"}, b, a) == "m1"
    for bad in ([20, 10, 40, 30], [35, 20.1, 10, 5], [50, 60, 70, 80]):  # twice, too close, never
        with pytest.raises(ProgramError) as e:
            cross(facts, {"attr": "value"}, a, _series("B", bad))
        assert e.value.reason == "ambiguous"


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on", "n_series": 2})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
