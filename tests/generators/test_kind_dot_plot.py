"""The dot_plot chart kind: Facts agree with the pixels (each dot has its series' colour and sits at
its value), a log axis refuses value lookups but not comparisons, programs re-execute. (Generating a
run and determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import math


from deltaprompts.questions import load_templates

from .kinds_common import centre_colour, draw_questions, pixels, renders_fixture, rgb

FAMILY = "chart.dot_plot"
KNOB_SETS = ({"n_series": 2, "scale": "log", "reference": "target", "size": "small"},
             {"n_series": 1, "scale": "linear", "reference": "average", "style": "dark"},
             {"n_series": 2, "scale": "linear", "reference": "none", "grid": "off", "style": "gray"},
             {"n_series": 1, "scale": "log", "reference": "average", "n_categories": 10},
             {"n_series": 2, "scale": "linear", "reference": "target", "style": "minimal"},
             {"n_series": 1, "scale": "linear", "reference": "target", "size": "wide"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=3)


def _is_log(spec) -> bool:
    return spec.data["extra"]["scale"] == "log"


def test_dot_pixels_have_the_series_colour(renders):
    for spec, r in renders:
        img = pixels(r.png)
        assert not r.facts.extra["text_overlaps"] and not r.facts.extra["legend_overlap"]
        for e in r.facts.entities:
            assert centre_colour(img, e.box) == rgb(e.attrs["color"]), (spec.index, e.id)


def test_dots_sit_at_their_values(renders):
    for spec, r in renders:
        axis = r.facts.extra["value_axis"]
        box = r.facts.extra["axes_box"]
        lo, hi = axis["range"]
        log = _is_log(spec)
        assert (axis.get("scale") == "log") == log and (axis["ticks"] == []) == log
        if log:
            assert math.log10(hi / lo) > 1.5
        for e in r.facts.entities:
            cx = (e.box[0] + e.box[2]) / 2
            f = (math.log(e.attrs["value"] / lo) / math.log(hi / lo)) if log else (e.attrs["value"] - lo) / (hi - lo)
            assert abs(cx - (box[0] + f * (box[2] - box[0]))) < 1.5, (spec.index, e.id)


def _log_refuses_lookups(spec, t, e):
    if t.answer_type == "number" and _is_log(spec):
        assert e.reason == "unreadable_value"


def test_programs_reexecute_and_log_refuses_lookups(renders):
    tpls = [t for t in load_templates() if FAMILY in t.applies_to]
    made = {t.name: 0 for t in tpls}
    for spec, _, t, _ in draw_questions(FAMILY, renders, tpls, tries=3, mc_fraction=0.3,
                                        on_refusal=_log_refuses_lookups):
        assert not (t.answer_type == "number" and _is_log(spec))
        made[t.name] += 1
    assert all(made.values()), made
