"""The error_bars kind: a run passes the checks, marks and whiskers sit where the Facts say, the
interval questions re-execute (overlap yes and no, upper bounds read against the axis), the same
Spec gives the same bytes."""

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
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.error_bars"
KNOB_SETS = ({"marks": "bars", "n_series": 1, "value_labels": "on", "style": "dark"},
             {"marks": "points", "n_series": 3, "legend": "inside", "size": "small"},
             {"marks": "bars", "n_series": 2, "value_decimals": 1, "style": "gray", "value_labels": "off"},
             {"marks": "points", "n_series": 1, "style": "minimal", "value_labels": "on"})


@pytest.fixture(scope="module")
def renders():
    fam = FAMILIES.get(FAMILY)()
    out = []
    for i, given in enumerate(KNOB_SETS):
        spec = fam.sample(5, i, fam.resolve_knobs(given))
        out.append((spec, fam.render(spec)))
    return out


def _rgb(hex_color: str) -> tuple[int, ...]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def test_a_run_of_20_items_passes_the_checks(tmp_path):
    cfg = GenerateConfig(families=[FAMILY], n=20, seed=2, questions_per_image=2,
                         knobs=resolve_all_knobs([FAMILY], {}), balance_ratio=None)
    generate(cfg, tmp_path / "run")
    report = check_run(tmp_path / "run")
    assert report.items == 20 and not report.problems
    assert report.ill_posed <= 2, report.failed
    assert not report.failed.get("answer") and not report.failed.get("own_answer"), report.failed


def test_marks_have_their_colour_and_whiskers_span_the_interval(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        bars = data.extra["marks"] == "bars"
        assert r.facts.extra["marks"] == data.extra["marks"]
        assert len(r.facts.entities) == len(data.series) * len(data.categories)
        axis = r.facts.extra["axes"]["y"]
        lo, hi = axis["range"]
        box = axis["box"]
        to_px = lambda v: box[3] - (v - lo) / (hi - lo) * (box[3] - box[1])  # noqa: E731
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
            assert tuple(img[int(y), int(x)]) == _rgb(a["color"]), (spec.index, e.id)
        assert r.facts.extra["reads"] == {"lo": "y", "hi": "y"}


def test_widest_interval_stands_out_in_every_series(renders):
    for _, r in renders:
        for ser in {e.attrs["series"] for e in r.facts.entities}:
            widths = sorted(e.attrs["width"] for e in r.facts.entities if e.attrs["series"] == ser)
            assert widths[-1] >= 1.3 * widths[-2] - 1e-9, widths


def test_programs_reexecute_and_readings_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.error_bars_")]
    assert len(tpls) >= 4
    rng = np.random.default_rng(0)
    seen, overlap = set(), set()
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(4):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError as e:
                    assert e.reason in ("ambiguous", "no_slot_value"), (t.name, e)
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                assert "{" not in q.text
                seen.add((t.name, q.tolerance_source))
                if "overlap" in t.name:
                    overlap.add(q.value)
    assert ("chart.error_bars_upper", "axis") in seen and ("chart.error_bars_upper_series", "axis") in seen
    assert {n for n, _ in seen} == {t.name for t in tpls}
    assert overlap == {True, False}


def test_nearly_touching_intervals_are_ambiguous(renders):
    from deltaprompts.records import Entity
    from deltaprompts.tolerances import axis_error

    facts = renders[0][1].facts
    err = axis_error(facts, facts.extra["axes"]["y"])  # one end read against the axis
    a = Entity(id="a", attrs={"lo": 100.0, "hi": 100.0 + 10 * err})
    top = a.attrs["hi"]
    for b_lo, want in ((top + 0.5 * err, "ambiguous"), (top - 0.5 * err, "ambiguous"), (top + 1.5 * err, False),
                       (top - 1.5 * err, True)):
        b = Entity(id="b", attrs={"lo": b_lo, "hi": b_lo + 10 * err})
        prog = engine.parse("intervals_overlap[lo=lo, hi=hi](unique(filter[attr=id, value=a](scene())), "
                            "unique(filter[attr=id, value=b](scene())))")
        for e in (a, b):
            e.attrs["id"] = e.id
        f = facts.model_copy(update={"entities": [a, b]})
        if want == "ambiguous":
            with pytest.raises(ProgramError) as raised:
                engine.execute(prog, f)
            assert raised.value.reason == "ambiguous"
        else:
            assert engine.execute(prog, f) is want


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({"value_labels": "on"})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts


def test_widest_must_stand_out(renders):
    from deltaprompts.records import Entity

    facts = renders[0][1].facts
    prog = engine.parse("query[attr=id](argmax_clear[attr=width, ratio=1.2](scene()))")
    for widths, want in (((10.0, 13.0, 4.0), "b"), ((10.0, 11.0, 4.0), None)):
        ents = [Entity(id=k, attrs={"id": k, "width": w}) for k, w in zip("abc", widths)]
        f = facts.model_copy(update={"entities": ents})
        if want is None:
            with pytest.raises(ProgramError) as raised:
                engine.execute(prog, f)
            assert raised.value.reason == "ambiguous"
        else:
            assert engine.execute(prog, f) == want
