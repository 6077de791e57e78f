"""The area kind: each point's pixel has its series' colour, programs re-execute (the crossing and
widest-gap ops among them) with a printed or axis tolerance. (Generating a run and determinism are
tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import pytest

from deltaprompts.errors import ProgramError
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.programs import OPS
from deltaprompts.questions import load_templates
from deltaprompts.records import Entity, Facts

from .kinds_common import centre_hits, draw_questions, pixels, renders_fixture

FAMILY = "chart.area"
KNOB_SETS = ({"n_series": 3, "value_labels": "on", "style": "dark"}, {"n_series": 1, "value_labels": "off"},
             {"n_series": 2, "style": "gray", "size": "small", "legend": "inside"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_points_have_their_series_colour(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        for e in r.facts.entities:
            s, c = (int(x) for x in e.id[1:].split("c"))
            assert e.attrs["value"] == data.series[s].values[c] and e.attrs["color"] == data.series[s].color
        good, total = centre_hits(pixels(r.png), r.facts.entities, skip=r.facts.extra["legend_overlap"])
        # another series' line may cross a point; a thin line's centre pixel may be antialiased
        assert good >= 0.8 * total, (good, total)


def test_programs_reexecute(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.area_") or t.name == "chart.line_crossing"]
    assert len(tpls) >= 4
    asked = set()
    for _, _, t, q in draw_questions(FAMILY, renders, tpls, tries=4):
        asked.add(t.name)
        if q.answer_type == "number":
            assert q.tolerance_source in ("printed", "axis")
    assert {"chart.area_value", "chart.area_value_series"} <= asked


def _series(name: str, values: list[float]) -> list[Entity]:
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
