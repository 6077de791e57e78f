"""The radar chart kind: items generate and pass the checks, Facts agree with the pixels,
programs re-execute to their answers, and one Spec renders to the same bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from deltaprompts import engine
from deltaprompts.generate import GenerateConfig, generate
from deltaprompts.generators.base import FAMILIES
from deltaprompts.verifiers.checks import CheckConfig
from deltaprompts.verifiers.run_checks import check_run, verify_run

FAMILY = "chart.radar"


def _render(index: int, **given):
    fam = FAMILIES.get(FAMILY)()
    spec = fam.sample(4, index, fam.resolve_knobs(given))
    return spec, fam.render(spec)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def test_items_generate_check_and_reexecute(tmp_path):
    fam = FAMILIES.get(FAMILY)()
    cfg = GenerateConfig(families=[FAMILY], n=20, seed=1, knobs={FAMILY: fam.resolve_knobs({})})
    generate(cfg, tmp_path / "run")
    items = verify_run(tmp_path / "run")
    assert len(items) == 20
    report = check_run(tmp_path / "run", CheckConfig())
    assert report.ill_posed == 0 and not report.problems
    assert len({i.question.question_family for i in items}) >= 2
    for item in items:  # (c) the stored program re-executes to the stored answer
        assert engine.execute(item.question.program, item.facts) == item.question.value


def test_same_spec_same_bytes():
    (a, ra), (b, rb) = _render(3, value_labels="on"), _render(3, value_labels="on")
    assert a == b and ra.png == rb.png and ra.facts == rb.facts


def test_vertex_pixels_have_the_series_colour():
    good = total = 0
    for i, given in enumerate(({"n_series": 1}, {"n_series": 3, "value_labels": "on"})):
        spec, r = _render(i, **given)
        img = _pixels(r.png)
        colors = {s["name"]: s["color"] for s in spec.data["series"]}
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            assert e.attrs["color"] == colors[e.attrs["series"]]
            total += 1
            good += tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == _rgb(e.attrs["color"])
        assert r.facts.extra["value_axis"] is None  # no radial tolerance is declared
    assert good >= 0.85 * total  # another series' line may cross a vertex


def test_vertices_lie_on_their_axis_at_their_value():
    spec, r = _render(5, n_series=2)
    boxes = {e.id: e.box for e in r.facts.entities}
    cx = np.mean([(b[0] + b[2]) / 2 for b in boxes.values()])
    n = len(spec.data["categories"])
    for e in r.facts.entities:  # the first axis points up: its vertices are above the centre, on one vertical
        if e.attrs["category"] == spec.data["categories"][0]:
            assert abs((e.box[0] + e.box[2]) / 2 - (boxes["s0c0"][0] + boxes["s0c0"][2]) / 2) < 1.0
    assert n >= 4 and cx > 0
