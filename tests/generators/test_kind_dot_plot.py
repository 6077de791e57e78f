"""The dot_plot chart kind: items generate and pass the checks, Facts agree with the pixels, a log
axis refuses value lookups but not comparisons, programs re-execute, same Spec same bytes."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Question
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.dot_plot"
KNOB_SETS = ({"n_series": 2, "scale": "log", "reference": "target", "size": "small"},
             {"n_series": 1, "scale": "linear", "reference": "average", "style": "dark"},
             {"n_series": 2, "scale": "linear", "reference": "none", "grid": "off", "style": "gray"},
             {"n_series": 1, "scale": "log", "reference": "average", "n_categories": 10},
             {"n_series": 2, "scale": "linear", "reference": "target", "style": "minimal"},
             {"n_series": 1, "scale": "linear", "reference": "target", "size": "wide"})


@pytest.fixture(scope="module")
def renders():
    fam = FAMILIES.get(FAMILY)()
    out = []
    for i, given in enumerate(KNOB_SETS):
        spec = fam.sample(3, i, fam.resolve_knobs(given))
        out.append((spec, fam.render(spec)))
    return out


def _rgb(hex_color: str) -> tuple[int, ...]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def test_items_generate_and_pass_the_checks(tmp_path):
    out = tmp_path / "run"
    generate(GenerateConfig(families=[FAMILY], n=20, seed=2, knobs=resolve_all_knobs([FAMILY], {})), out)
    report = check_run(out)
    assert report.items == 20 and not report.problems
    assert not {k: v for k, v in report.failed.items() if k != "balance"}, report.failed


def test_dot_pixels_have_the_series_colour(renders):
    for spec, r in renders:
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        assert not r.facts.extra["text_overlaps"] and not r.facts.extra["legend_overlap"]
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            assert tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == _rgb(e.attrs["color"]), (spec.index, e.id)


def test_dots_sit_at_their_values(renders):
    for spec, r in renders:
        axis = r.facts.extra["value_axis"]
        box = r.facts.extra["axes_box"]
        lo, hi = axis["range"]
        log = spec.data["extra"]["scale"] == "log"
        assert (axis.get("scale") == "log") == log and (axis["ticks"] == []) == log
        if log:
            assert math.log10(hi / lo) > 1.5
        for e in r.facts.entities:
            cx = (e.box[0] + e.box[2]) / 2
            f = (math.log(e.attrs["value"] / lo) / math.log(hi / lo)) if log else (e.attrs["value"] - lo) / (hi - lo)
            assert abs(cx - (box[0] + f * (box[2] - box[0]))) < 1.5, (spec.index, e.id)


def test_programs_reexecute_and_log_refuses_lookups(renders):
    tpls = [t for t in load_templates() if FAMILY in t.applies_to]
    rng = np.random.default_rng(0)
    made = {t.name: 0 for t in tpls}
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(3):
                try:
                    q = make_question(t, r.facts, rng, mc_fraction=0.3)
                except ProgramError as e:
                    if t.answer_type == "number" and spec.data["extra"]["scale"] == "log":
                        assert e.reason == "unreadable_value"
                    continue
                assert not (t.answer_type == "number" and spec.data["extra"]["scale"] == "log")
                made[t.name] += 1
                back = Question.model_validate_json(q.model_dump_json())
                assert engine.execute(back.program, r.facts) == q.value
                assert "{" not in q.text
    assert all(made.values()), made


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"reference": "target", "n_series": 2})
    a, b = fam.sample(4, 9, knobs), fam.sample(4, 9, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
