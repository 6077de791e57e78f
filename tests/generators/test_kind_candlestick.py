"""The candlestick kind: candles have their direction's colour and span high to low where the axis
says, dates are consecutive trading days, the questions are well posed and re-execute. (Generating a
run and determinism are tested for every chart kind in test_chart_kinds.py and tests/test_contract.py.)"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from deltaprompts.generators.chart_spec import ChartData
from deltaprompts.generators.kinds.candlestick import CANDLE_COLORS, WICK_PX, ohlc_walk
from deltaprompts.questions import load_templates

from .kinds_common import draw_questions, pixels, renders_fixture, rgb, y_pixel

FAMILY = "chart.candlestick"
KNOB_SETS = ({"candle_colors": "green_red", "style": "dark", "n_categories": 20, "size": "small"},
             {"candle_colors": "blue_orange", "legend": "inside", "value_decimals": 2},
             {"style": "gray", "n_categories": 8, "legend": "outside", "value_decimals": 1})


renders = renders_fixture(FAMILY, KNOB_SETS, seed=5)


def test_candles_have_their_colour_and_span_high_to_low(renders):
    for spec, r in renders:
        data = ChartData.model_validate(spec.data)
        img = pixels(r.png)
        up, down = CANDLE_COLORS[data.extra["colors"]]
        axis = r.facts.extra["axes"]["y"]
        to_px = lambda v: y_pixel(v, axis["range"], axis["box"])  # noqa: E731
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
                assert tuple(img[int(y), int((e.box[0] + e.box[2]) / 2)]) == rgb(a["color"]), e.id
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


def _only_degenerate(spec, t, e):
    assert e.reason == "degenerate", (t.name, e)  # every day up (or down): nothing to count


def test_programs_reexecute_and_closes_get_an_axis_tolerance(renders):
    tpls = [t for t in load_templates() if t.name.startswith("chart.candlestick_")]
    assert len(tpls) >= 4
    seen = {(t.name, q.tolerance_source)
            for _, _, t, q in draw_questions(FAMILY, renders, tpls, tries=3, on_refusal=_only_degenerate)}
    assert ("chart.candlestick_close_lookup", "axis") in seen
    assert {n for n, _ in seen} == {t.name for t in tpls}
