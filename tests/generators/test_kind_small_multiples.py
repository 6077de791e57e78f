"""The small_multiples chart kind: Facts agree with the pixels (each mark's box holds its colour, each
panel declares its own axis), programs re-execute with an axis tolerance, every template is asked.
(Generating a run and determinism are tested for every chart kind in test_chart_kinds.py and
tests/test_contract.py.)"""

from __future__ import annotations


from deltaprompts.questions import load_templates

from .kinds_common import (centre_colour, commonest_colour, draw_questions, pixels, render_knob_sets, renders_fixture,
                           rgb, y_pixel)

FAMILY = "chart.small_multiples"
KNOB_SETS = ({"panel_mark": "line", "y_axes": "shared", "reference": "target", "size": "small"},
             {"panel_mark": "bar", "y_axes": "independent", "reference": "average", "style": "dark"},
             {"panel_mark": "line", "y_axes": "independent", "reference": "none", "n_series": 6, "grid": "off"},
             {"panel_mark": "bar", "y_axes": "shared", "reference": "target", "n_series": 5, "style": "gray"})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=3)


def test_mark_pixels_have_the_panel_colour(renders):
    for spec, r in renders:
        img = pixels(r.png)
        bars = spec.data["extra"]["mark"] == "bar"
        for e in r.facts.entities:
            # a dashed reference line may cross a bar: its commonest colour
            got = commonest_colour(img, e.box) if bars else centre_colour(img, e.box)
            assert got == rgb(e.attrs["color"]), (spec.index, e.id)


def test_each_panel_reads_against_its_own_axis(renders):
    for spec, r in renders:
        ex = r.facts.extra
        assert len(ex["axes"]) == len(spec.data["series"]) >= 2
        assert not ex["text_overlaps"]
        for e in r.facts.entities:
            axis = ex["axes"][ex["entity_reads"][e.id]["value"]]
            x0, _, x1, _ = axis["box"]
            cy = (e.box[1] + e.box[3]) / 2 if spec.data["extra"]["mark"] == "line" else e.box[1]
            assert x0 <= (e.box[0] + e.box[2]) / 2 <= x1 and e.attrs["panel"] == spec.data["series"][int(e.id[1])]["name"]
            want = y_pixel(e.attrs["value"], axis["range"], axis["box"])  # the mark's value at its pixel height
            assert abs(cy - want) < 1.5, (e.id, cy, want)


def test_programs_reexecute_to_the_stored_answer(renders):
    more = render_knob_sets(FAMILY, [{"reference": ref, "size": "small"} for ref in ("target", "average") * 3], seed=5)
    tpls = [t for t in load_templates() if "small_multiples" in t.applies_to[0] or t.name.startswith("chart.reference")]
    made: dict[str, int] = {t.name: 0 for t in tpls if FAMILY in t.applies_to}
    for _, _, t, q in draw_questions(FAMILY, renders + more, tpls, tries=3, mc_fraction=0.3):
        made[t.name] += 1
        if q.answer_type == "number":
            assert q.tolerance_source == "axis"
    assert all(made.values()), made
