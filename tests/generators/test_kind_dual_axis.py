"""The dual_axis kind: a run passes the checks, bars and line points have their colour and sit where
their own axis says, each axis is coloured as its series, a line reading is scored against the
right-hand axis, programs re-execute, the same Spec gives the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_mpl import build_figure
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.tolerances import axis_error
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.dual_axis"
KNOB_SETS = ({"style": "dark", "line_span": "full"}, {"size": "small", "n_categories": 12, "line_span": "upper"},
             {"value_decimals": 1, "style": "gray"}, {"style": "minimal", "n_categories": 4, "palette": "bold"})


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


def test_marks_have_their_colour_and_sit_on_their_own_axis(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        n = len(data.categories)
        assert len(r.facts.entities) == 2 * n and r.facts.extra["legend_box"] is not None
        assert r.facts.extra["legend_overlap"] == []
        right, left = r.facts.extra["axes"]["right"], r.facts.extra["value_axis"]
        box = right["box"]
        reads = r.facts.extra["entity_reads"]
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            want = _rgb(e.attrs["color"])
            if e.attrs["axis"] == "left":
                assert e.id not in reads and e.attrs["measure"] == data.series[0].name
                patch = img[int(y0) + 1:int(y1) - 1, int(x0) + 1:int(x1) - 1].reshape(-1, 3)
                colors, counts = np.unique(patch, axis=0, return_counts=True)  # the line may cross a bar
                assert tuple(colors[counts.argmax()]) == want, e.id
                lo, hi = left["range"]
                assert y0 == pytest.approx(box[3] - (e.attrs["value"] - lo) / (hi - lo) * (box[3] - box[1]), abs=1.0)
            else:
                assert reads[e.id] == {"value": "right"} and e.attrs["measure"] == data.series[1].name
                assert tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == want, e.id
                lo, hi = right["range"]
                cy = box[3] - (e.attrs["value"] - lo) / (hi - lo) * (box[3] - box[1])
                assert (y0 + y1) / 2 == pytest.approx(cy, abs=1.0)
        assert len(right["ticks"]) >= 2
        texts = r.facts.extra["right_axis_texts"]
        assert all(t["box"][2] <= r.facts.width + 0.5 for t in texts)  # the right-hand axis is inside the image
        d = build_figure(data)  # each axis's labels take its series' colour
        assert to_hex(d.ax.yaxis.label.get_color()) == data.series[0].color
        assert {to_hex(t.get_color()) for t in d.ax.get_yticklabels()} == {data.series[0].color}
        assert to_hex(d.right_axis.yaxis.label.get_color()) == data.series[1].color
        d.fig.clear()


def test_programs_reexecute_and_line_readings_use_the_right_axis(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.dual_axis_")]
    assert len(tpls) >= 4
    rng = np.random.default_rng(0)
    seen = set()
    for spec, r in renders:
        right_err = axis_error(r.facts, r.facts.extra["axes"]["right"])
        left_err = axis_error(r.facts)
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(3):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError:
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                assert "{" not in q.text
                seen.add(t.name)
                if t.name == "chart.dual_axis_right_lookup":
                    assert q.tolerance_source == "axis" and q.abs_tol == pytest.approx(max(right_err, 0.005), rel=1e-3)
                if t.name == "chart.dual_axis_bar_lookup":
                    assert q.tolerance_source == "axis" and q.abs_tol == pytest.approx(max(left_err, 0.005), rel=1e-3)
    assert seen == {t.name for t in tpls}


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
