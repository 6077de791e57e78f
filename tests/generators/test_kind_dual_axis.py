"""The dual_axis kind: bars and line points have their colour and sit where their own axis says,
each axis is coloured as its series, a line reading is scored against the right-hand axis, programs
re-execute. (Generating a run and determinism are tested for every chart kind in test_chart_kinds.py
and tests/test_contract.py.)"""

from __future__ import annotations

import pytest
from matplotlib.colors import to_hex

from deltaprompts.generators.chart_mpl import build_figure
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates
from deltaprompts.tolerances import axis_error

from .kinds_common import centre_colour, commonest_colour, draw_questions, pixels, renders_fixture, rgb, y_pixel

FAMILY = "chart.dual_axis"
KNOB_SETS = ({"style": "dark", "line_span": "full"}, {"size": "small", "n_categories": 12, "line_span": "upper"},
             {"value_decimals": 1, "style": "gray"}, {"style": "minimal", "n_categories": 4, "palette": "bold"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_marks_have_their_colour_and_sit_on_their_own_axis(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        n = len(data.categories)
        assert len(r.facts.entities) == 2 * n and r.facts.extra["legend_box"] is not None
        assert r.facts.extra["legend_overlap"] == []
        right, left = r.facts.extra["axes"]["right"], r.facts.extra["value_axis"]
        box = right["box"]
        reads = r.facts.extra["entity_reads"]
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            want = rgb(e.attrs["color"])
            if e.attrs["axis"] == "left":
                assert e.id not in reads and e.attrs["measure"] == data.series[0].name
                assert commonest_colour(img, e.box) == want, e.id  # the line may cross a bar
                assert y0 == pytest.approx(y_pixel(e.attrs["value"], left["range"], box), abs=1.0)
            else:
                assert reads[e.id] == {"value": "right"} and e.attrs["measure"] == data.series[1].name
                assert centre_colour(img, e.box) == want, e.id
                assert (y0 + y1) / 2 == pytest.approx(y_pixel(e.attrs["value"], right["range"], box), abs=1.0)
        assert len(right["ticks"]) >= 2
        texts = [t for t in r.facts.texts if t.role in ("y2_tick", "y2_label")]
        assert len(texts) >= 3 and {t.role for t in texts} == {"y2_tick", "y2_label"}
        assert all(t.box[2] <= r.facts.width + 0.5 for t in texts)  # the right-hand axis is inside the image
        d = build_figure(data)  # each axis's labels take its series' colour
        assert to_hex(d.ax.yaxis.label.get_color()) == data.series[0].color
        assert {to_hex(t.get_color()) for t in d.ax.get_yticklabels()} == {data.series[0].color}
        assert to_hex(d.extras["right_axis"].yaxis.label.get_color()) == data.series[1].color
        d.fig.clear()


def test_programs_reexecute_and_line_readings_use_the_right_axis(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.dual_axis_")]
    assert len(tpls) >= 4
    seen = set()
    for _, r, t, q in draw_questions(FAMILY, renders, tpls, tries=3):
        seen.add(t.name)
        if t.name == "chart.dual_axis_right_lookup":
            right_err = axis_error(r.facts, r.facts.extra["axes"]["right"])
            assert q.tolerance_source == "axis" and q.abs_tol == pytest.approx(max(right_err, 0.005), rel=1e-3)
        if t.name == "chart.dual_axis_bar_lookup":
            left_err = axis_error(r.facts)
            assert q.tolerance_source == "axis" and q.abs_tol == pytest.approx(max(left_err, 0.005), rel=1e-3)
    assert seen == {t.name for t in tpls}
