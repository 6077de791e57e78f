"""Every chart kind and every perception family but the shape scenes (tested in test_scenes.py, and the
3-D scenes at small sizes in test_clevr3d.py):
20 items generate (fixed seed, one worker) with no crash and pass `check` with no failure at all;
every stored program re-executes to the stored answer; a run asks more than one question family
(more where a family's test asks); and the Specs the kind tests draw with non-default knobs render
to the same bytes twice (tests/test_contract.py does so for default knobs)."""

from __future__ import annotations

import pytest

from deltaprompts import engine
from deltaprompts.generators import FAMILIES

from .kinds_common import generate_run, render_spec

RUN_FAMILIES = [n for n in FAMILIES.names() if n.startswith("chart.") or
                (n.startswith("scene.") and n not in ("scene.shapes", "scene.grid", "scene.clevr3d"))]
#: question families a 20-item run must ask, where more than two
MIN_QUESTION_FAMILIES = {"scene.clock": 3, "scene.graph": 3}

# knobs that change what is drawn (printed values, several series, a reference line)
SAME_BYTES_KNOBS = {
    "chart.area": {"value_labels": "on", "n_series": 2},
    "chart.stacked_area": {"value_labels": "on", "n_series": 3},
    "chart.dot_plot": {"reference": "target", "n_series": 2},
    "chart.small_multiples": {"reference": "target"},
    **{f: {"value_labels": "on"} for f in ("chart.box", "chart.bubble", "chart.error_bars", "chart.heatmap",
                                           "chart.histogram", "chart.radar", "chart.waterfall")},
}


@pytest.fixture(scope="module", params=RUN_FAMILIES)
def run(request, tmp_path_factory):
    """(family, items, check report) of one 20-item run per family, shared by the tests below."""
    family = request.param
    items, report = generate_run(family, tmp_path_factory.mktemp(family.replace(".", "_")) / "run", n=20, seed=2)
    return family, items, report


def test_20_items_generate_and_pass_check(run):
    family, items, report = run
    assert len(items) == report.items == 20 and not report.problems, (family, report.problems)
    assert not report.failed and report.ill_posed == 0, (family, report.failed)
    assert {i.family for i in items} == {family}


def test_stored_programs_reexecute_and_questions_vary(run):
    family, items, _ = run
    for item in items:
        assert engine.execute(item.question.program, item.facts) == item.question.value, (family, item.id)
        assert "{" not in item.question.text, (family, item.id)
        if item.question.question_family == "scene.gauge_read" and item.question.answer_type == "number":
            assert item.question.tolerance == 0.0  # the needle sits on a minor tick: an exact reading
    assert len({i.question.question_family for i in items}) >= MIN_QUESTION_FAMILIES.get(family, 2), family


@pytest.mark.parametrize("family", sorted(SAME_BYTES_KNOBS))
def test_same_spec_same_bytes_with_knobs(family):
    (a, ra), (b, rb) = (render_spec(family, 3, 11, SAME_BYTES_KNOBS[family]) for _ in range(2))
    assert a == b and ra.png == rb.png and ra.facts == rb.facts
