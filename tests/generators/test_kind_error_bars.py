"""The error_bars kind: marks and whiskers sit where the Facts say, the interval questions re-execute
(overlap yes and no, upper bounds read against the axis), nearly touching intervals and a widest that
does not stand out are ambiguous. (Generating a run and determinism are tested for every chart kind in
test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates
from deltaprompts.records import Entity
from deltaprompts.tolerances import axis_error

from .kinds_common import draw_questions, pixels, renders_fixture, rgb, y_pixel

FAMILY = "chart.error_bars"
KNOB_SETS = ({"marks": "bars", "n_series": 1, "value_labels": "on", "style": "dark"},
             {"marks": "points", "n_series": 3, "legend": "inside", "size": "small"},
             {"marks": "bars", "n_series": 2, "value_decimals": 1, "style": "gray", "value_labels": "off"},
             {"marks": "points", "n_series": 1, "style": "minimal", "value_labels": "on"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_marks_have_their_colour_and_whiskers_span_the_interval(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        bars = data.extra["marks"] == "bars"
        assert r.facts.extra["marks"] == data.extra["marks"]
        assert len(r.facts.entities) == len(data.series) * len(data.categories)
        axis = r.facts.extra["axes"]["y"]
        to_px = lambda v: y_pixel(v, axis["range"], axis["box"])  # noqa: E731
        hidden = set(r.facts.extra["legend_overlap"])
        for e in r.facts.entities:
            a = e.attrs
            assert a["lo"] < a["value"] < a["hi"] and a["width"] == pytest.approx(a["hi"] - a["lo"])
            assert a["value"] - a["lo"] == pytest.approx(a["hi"] - a["value"])  # symmetric
            w = r.facts.extra["whiskers"][e.id]
            pad = 1.3 * data.style.dpi / 72 / 2
            assert w[1] + pad == pytest.approx(to_px(a["hi"]), abs=1.0)
            assert w[3] - pad == pytest.approx(to_px(a["lo"]), abs=1.0)
            b = r.facts.extra["bodies"][e.id]
            assert e.box[0] <= min(b[0], w[0]) + 0.01 and e.box[1] <= min(b[1], w[1]) + 0.01  # the union of both
            if e.id in hidden:
                continue
            if bars:  # beside the whisker, just above the baseline
                x, y = b[0] + 0.15 * (b[2] - b[0]), b[3] - 3
                assert b[1] == pytest.approx(to_px(a["value"]), abs=1.0)
            else:
                x, y = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            assert tuple(img[int(y), int(x)]) == rgb(a["color"]), (spec.index, e.id)
        assert r.facts.extra["reads"] == {"lo": "y", "hi": "y"}


def test_widest_interval_stands_out_in_every_series(renders):
    for _, r in renders:
        for ser in {e.attrs["series"] for e in r.facts.entities}:
            widths = sorted(e.attrs["width"] for e in r.facts.entities if e.attrs["series"] == ser)
            assert widths[-1] >= 1.3 * widths[-2] - 1e-9, widths


def _ambiguous_or_unfillable(spec, t, e):
    assert e.reason in ("ambiguous", "no_slot_value"), (t.name, e)


def test_programs_reexecute_and_readings_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.error_bars_")]
    assert len(tpls) >= 4
    seen, overlap = set(), set()
    for _, _, t, q in draw_questions(FAMILY, renders, tpls, tries=4, on_refusal=_ambiguous_or_unfillable):
        seen.add((t.name, q.tolerance_source))
        if "overlap" in t.name:
            overlap.add(q.value)
    assert ("chart.error_bars_upper", "axis") in seen and ("chart.error_bars_upper_series", "axis") in seen
    assert {n for n, _ in seen} == {t.name for t in tpls}
    assert overlap == {True, False}


def _assert_outcome(prog, facts, want):
    """`prog` on `facts` gives `want` (of its type), or is refused as ambiguous when want is None."""
    if want is None:
        with pytest.raises(ProgramError) as raised:
            engine.execute(prog, facts)
        assert raised.value.reason == "ambiguous"
    else:
        got = engine.execute(prog, facts)
        assert got == want and type(got) is type(want), (got, want)


def test_nearly_touching_intervals_are_ambiguous(renders):
    facts = renders[0][1].facts
    err = axis_error(facts, facts.extra["axes"]["y"])  # one end read against the axis
    a = Entity(id="a", attrs={"lo": 100.0, "hi": 100.0 + 10 * err})
    top = a.attrs["hi"]
    prog = engine.parse("intervals_overlap[lo=lo, hi=hi](unique(filter[attr=id, value=a](scene())), "
                        "unique(filter[attr=id, value=b](scene())))")
    for b_lo, want in ((top + 0.5 * err, None), (top - 0.5 * err, None), (top + 1.5 * err, False),
                       (top - 1.5 * err, True)):
        b = Entity(id="b", attrs={"lo": b_lo, "hi": b_lo + 10 * err})
        for e in (a, b):
            e.attrs["id"] = e.id
        _assert_outcome(prog, facts.model_copy(update={"entities": [a, b]}), want)


def test_widest_must_stand_out(renders):
    facts = renders[0][1].facts
    prog = engine.parse("query[attr=id](argmax_clear[attr=width, ratio=1.2](scene()))")
    for widths, want in (((10.0, 13.0, 4.0), "b"), ((10.0, 11.0, 4.0), None)):
        ents = [Entity(id=k, attrs={"id": k, "width": w}) for k, w in zip("abc", widths)]
        _assert_outcome(prog, facts.model_copy(update={"entities": ents}), want)
