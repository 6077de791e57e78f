"""The waterfall chart kind: items generate and pass the checks, Facts agree with the pixels,
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

FAMILY = "chart.waterfall"


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


def test_bar_pixels_and_running_totals():
    for i, given in enumerate(({"value_labels": "on"}, {"value_labels": "off", "colors": "blue_orange"})):
        spec, r = _render(i, **given)
        img = _pixels(r.png)
        hidden = set(r.facts.extra["legend_overlap"])
        ents = {e.id: e for e in r.facts.entities}
        steps = spec.data["series"][0]["values"]
        assert len(ents) == len(steps) + 2
        total = ents["start"].attrs["value"]
        for c, v in enumerate(steps):
            e = ents[f"s0c{c}"]
            assert e.attrs["start"] == total and e.attrs["value"] == v == e.attrs["step"]
            total = round(total + v, spec.data["style"]["value_decimals"])
            assert e.attrs["end"] == total and e.attrs["type"] == ("increase" if v > 0 else "decrease")
        assert ents["end"].attrs["value"] == total
        assert any(v > 0 for v in steps) and any(v < 0 for v in steps)
        for e in r.facts.entities:
            if e.id in hidden:
                continue
            x0, y0, x1, y1 = e.box
            assert tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)]) == _rgb(e.attrs["color"]), e.id
        # a step's value is two readings: no single-reading value axis; start/end read on the y axis
        assert r.facts.extra["value_axis"] is None and r.facts.extra["reads"] == {"start": "y", "end": "y"}
