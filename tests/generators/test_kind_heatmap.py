"""The heatmap chart kind: items generate and pass the checks, Facts agree with the pixels,
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

FAMILY = "chart.heatmap"


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


def test_cell_pixels_have_the_cell_colour():
    from deltaprompts.generators.kinds.heatmap import cell_color
    from deltaprompts.generators.chart_spec import ChartData

    for i, labels in enumerate(("on", "off")):
        spec, r = _render(i, value_labels=labels)
        data = ChartData.model_validate(spec.data)
        img = _pixels(r.png)
        assert len(r.facts.entities) == len(data.series) * len(data.categories)
        assert r.facts.extra["value_axis"] is None  # values are printed or compared by colour only
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            patch = img[int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2].reshape(-1, 3)
            colors, counts = np.unique(patch, axis=0, return_counts=True)  # a label sits at the centre
            assert tuple(colors[counts.argmax()]) == _rgb(e.attrs["color"]), e.id
            assert e.attrs["color"] == cell_color(data, e.attrs["value"])
        if labels == "off":
            assert r.facts.extra["printed"] == {}
