"""The candlestick kind: a run passes the checks, candles have their direction's colour and span
high to low where the axis says, dates are consecutive trading days, the questions are well posed
and re-execute, the same Spec gives the same bytes."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.candlestick import CANDLE_COLORS, WICK_PX, ohlc_walk
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.verifiers.run_checks import check_run

FAMILY = "chart.candlestick"
KNOB_SETS = ({"candle_colors": "green_red", "style": "dark", "n_categories": 20, "size": "small"},
             {"candle_colors": "blue_orange", "legend": "inside", "value_decimals": 2},
             {"style": "gray", "n_categories": 8, "legend": "outside", "value_decimals": 1})


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


def test_candles_have_their_colour_and_span_high_to_low(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"))
        up, down = CANDLE_COLORS[data.extra["colors"]]
        axis = r.facts.extra["axes"]["y"]
        lo, hi = axis["range"]
        box = axis["box"]
        to_px = lambda v: box[3] - (v - lo) / (hi - lo) * (box[3] - box[1])  # noqa: E731
        pad = WICK_PX * data.style.dpi / 72 / 2
        hidden = set(r.facts.extra["legend_overlap"])
        for e in r.facts.entities:
            a = e.attrs
            assert a["low"] <= min(a["open"], a["close"]) < max(a["open"], a["close"]) <= a["high"]
            assert a["value"] == a["close"] and a["range"] == pytest.approx(a["high"] - a["low"])
            assert a["color"] == (up if a["direction"] == "up" else down)
            assert (a["close"] > a["open"]) == (a["direction"] == "up")
            assert e.box[1] + pad == pytest.approx(to_px(a["high"]), abs=1.0)
            assert e.box[3] - pad == pytest.approx(to_px(a["low"]), abs=1.0)
            if e.id not in hidden:
                y = to_px((a["open"] + a["close"]) / 2)
                assert tuple(img[int(y), int((e.box[0] + e.box[2]) / 2)]) == _rgb(a["color"]), e.id
        days = [dt.date.fromisoformat(e.attrs["date"]) for e in r.facts.entities]
        assert all(d.weekday() < 5 for d in days) and days == sorted(days)
        assert all((b - a).days == 1 or (a.weekday() == 4 and (b - a).days == 3) for a, b in zip(days, days[1:]))
        assert [e.attrs["category"] for e in r.facts.entities] == [f"{d:%b} {d.day}" for d in days]
        assert set(r.facts.extra["reads"]) == {"open", "high", "low", "close"}


def test_the_walk_keeps_questions_well_posed():
    for seed in range(30):
        o, h, low, c = ohlc_walk(np.random.default_rng(seed), 12, 40, 300, seed % 3)
        span = h.max() - low.min()
        ranges, closes = np.sort(h - low), np.sort(c)
        assert ranges[-1] >= 1.25 * ranges[-2] and closes[-1] - closes[-2] >= 0.03 * span
        assert np.min(np.abs(c - o)) >= 0.025 * span and (low > 0).all()


def test_programs_reexecute_and_closes_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.candlestick_")]
    assert len(tpls) >= 4
    rng = np.random.default_rng(0)
    seen = set()
    for spec, r in renders:
        for t in templates_for(FAMILY, r.facts, tpls):
            for _ in range(3):
                try:
                    q = make_question(t, r.facts, rng)
                except ProgramError as e:
                    assert e.reason == "degenerate", (t.name, e)  # every day up (or down): nothing to count
                    continue
                assert engine.execute(q.program, r.facts) == q.value
                assert "{" not in q.text
                seen.add((t.name, q.tolerance_source))
    assert ("chart.candlestick_close_lookup", "axis") in seen
    assert {n for n, _ in seen} == {t.name for t in tpls}


def test_same_spec_same_bytes():
    fam = FAMILIES.get(FAMILY)()
    knobs = fam.resolve_knobs({})
    a, b = fam.sample(3, 11, knobs), fam.sample(3, 11, knobs)
    assert a == b
    ra, rb = fam.render(a), fam.render(b)
    assert ra.png == rb.png and ra.facts == rb.facts
