"""The stacked area kind: each layer's top point has its colour, tops are running sums read against
the declared y axis (values have no axis of their own), programs re-execute. (Generating a run and
determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates
from deltaprompts.tolerances import tolerance_for

from .kinds_common import centre_hits, draw_questions, pixels, renders_fixture

FAMILY = "chart.stacked_area"
KNOB_SETS = ({"n_series": 4, "value_labels": "on", "style": "dark"}, {"n_series": 2, "value_labels": "off"},
             {"n_series": 3, "style": "gray", "size": "small", "legend": "inside", "value_labels": "off"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_layer_tops_have_their_colour_and_are_running_sums(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        assert r.facts.extra["value_axis"] is None and r.facts.extra["reads"] == {"top": "y"}
        for e in r.facts.entities:
            s, c = (int(x) for x in e.id[1:].split("c"))
            assert e.attrs["value"] == data.series[s].values[c]
            assert e.attrs["top"] == pytest.approx(sum(data.series[k].values[c] for k in range(s + 1)))
        good, total = centre_hits(pixels(r.png), r.facts.entities, skip=r.facts.extra["legend_overlap"])
        assert good >= 0.8 * total, (good, total)  # a thin line's centre pixel may be antialiased
        # one clear peak of the totals
        totals = sorted(np.sum([s.values for s in data.series], axis=0))
        assert totals[-1] - totals[-2] >= 0.04 * totals[-1] - 1e-9


def test_programs_reexecute_and_tops_read_against_the_axis_unless_printed(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.stacked_area_")]
    assert len(tpls) >= 3
    sources = set()
    for _, r, t, q in draw_questions(FAMILY, renders, tpls, tries=4):
        if q.answer_type == "number":
            sources.add(q.tolerance_source)
            assert q.tolerance_source == ("printed" if r.facts.extra["printed"] else "axis"), t.name
    assert "axis" in sources and "printed" in sources
    # a layer's own value is not read off the axis (it would be two readings)
    spec, r = renders[1]
    prog = engine.parse("query[attr=value](unique(filter[attr=category, value=$c](filter[attr=series, "
                        "value=$s](scene()))))")
    e = r.facts.entities[-1]
    bound = engine.bind(prog, {"c": e.attrs["category"], "s": e.attrs["series"]})
    with pytest.raises(ProgramError):
        tolerance_for(bound, e.attrs["value"], "number", r.facts)
