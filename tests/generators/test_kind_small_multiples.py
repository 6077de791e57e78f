"""The small_multiples chart kind: items generate and pass the checks, Facts agree with the pixels
(each mark's box holds its colour, each panel declares its own axis), programs re-execute, and the
same Spec gives the same bytes."""

from __future__ import annotations

import io

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

FAMILY = "chart.small_multiples"
KNOB_SETS = ({"panel_mark": "line", "y_axes": "shared", "reference": "target", "size": "small"},
             {"panel_mark": "bar", "y_axes": "independent", "reference": "average", "style": "dark"},
             {"panel_mark": "line", "y_axes": "independent", "reference": "none", "n_series": 6, "grid": "off"},
             {"panel_mark": "bar", "y_axes": "shared", "reference": "target", "n_series": 5, "style": "gray"})


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


def test_mark_pixels_have_the_panel_colour(renders):
    for spec, r in renders:
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        bars = spec.data["extra"]["mark"] == "bar"
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            if bars:  # a dashed reference line may cross a bar: its commonest colour
                patch = img[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1].reshape(-1, 3)
                colors, counts = np.unique(patch, axis=0, return_counts=True)
                got = tuple(colors[counts.argmax()])
            else:
                got = tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)])
            assert got == _rgb(e.attrs["color"]), (spec.index, e.id)


def test_each_panel_reads_against_its_own_axis(renders):
    for spec, r in renders:
        ex = r.facts.extra
        assert len(ex["axes"]) == len(spec.data["series"]) >= 2
        assert not ex["text_overlaps"]
        for e in r.facts.entities:
            axis = ex["axes"][ex["entity_reads"][e.id]["value"]]
            x0, y0, x1, y1 = axis["box"]
            lo, hi = axis["range"]
            cy = (e.box[1] + e.box[3]) / 2 if spec.data["extra"]["mark"] == "line" else e.box[1]
            assert x0 <= (e.box[0] + e.box[2]) / 2 <= x1 and e.attrs["panel"] == spec.data["series"][int(e.id[1])]["name"]
            want = y1 - (e.attrs["value"] - lo) / (hi - lo) * (y1 - y0)  # the mark's value at its pixel height
            assert abs(cy - want) < 1.5, (e.id, cy, want)


def test_programs_reexecute_to_the_stored_answer(renders):
    fam = FAMILIES.get(FAMILY)()
    renders = renders + [(None, fam.render(fam.sample(5, i, fam.resolve_knobs({"reference": ref, "size": "small"}))))
                         for i, ref in enumerate(("target", "average") * 3)]
    tpls = [t for t in load_templates() if "small_multiples" in t.applies_to[0] or t.name.startswith("chart.reference")]
    rng = np.random.default_rng(0)
    made: dict[str, int] = {t.name: 0 for t in tpls if FAMILY in t.applies_to}
    for _, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(3):
                try:
                    q = make_question(t, r.facts, rng, mc_fraction=0.3)
                except ProgramError:
                    continue
                made[t.name] += 1
                back = Question.model_validate_json(q.model_dump_json())
                assert engine.execute(back.program, r.facts) == q.value
                assert "{" not in q.text
                if q.answer_type == "number":
                    assert q.tolerance_source == "axis"
    assert all(made.values()), made


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"reference": "target"})
    a, b = fam.sample(4, 9, knobs), fam.sample(4, 9, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
