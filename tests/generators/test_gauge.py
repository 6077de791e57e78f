"""Tests of scene.gauge: needle on a minor tick, zones and needle where the Facts say, a checked run."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprompts.generators.dials import SWEEP, ZONE_COLORS, Gauge, polar

from .kinds_common import pixels, render_knob_sets, rgb

FAMILY = "scene.gauge"
KNOB_SETS = [{}, {"zones": "yes"}, {"style": "arc", "zones": "yes"}, {"style": "round", "face": "dark"},
             {"image_size": 192, "min_tick_px": 5.0}, {"image_size": 640, "zones": "yes", "face": "light"}] * 3


@pytest.fixture(scope="module")
def renders():
    return render_knob_sets(FAMILY, KNOB_SETS)


def _close(a, b, tol=40) -> bool:
    return int(np.abs(np.asarray(a, int) - np.asarray(b, int)).max()) <= tol


def test_needle_sits_on_a_minor_tick_clear_of_bounds(renders):
    for (spec, r), kv in zip(renders, KNOB_SETS):
        d, g = spec.data, r.facts.entity("gauge").attrs
        steps = (g["value"] - g["lo"]) / g["minor"]
        assert abs(steps - round(steps)) < 1e-9 and g["lo"] < g["value"] < g["hi"]
        assert g["value"] not in d["zones"] and g["value"] != g["threshold"]
        assert r.facts.extra["minor_px"] >= Gauge().resolve_knobs(kv)["min_tick_px"]
        sweep = SWEEP[d["style"]]
        want = -sweep / 2 + sweep * (g["value"] - g["lo"]) / (g["hi"] - g["lo"])
        assert r.facts.extra["needle"]["angle"] == pytest.approx(want, abs=1e-3)
        assert g["above_threshold"] == (g["value"] > g["threshold"])


def test_needle_and_zone_are_where_the_facts_say(renders):
    zoned = 0
    for spec, r in renders:
        img = pixels(r.png)
        n = r.facts.extra["needle"]
        cx, cy = n["pivot"]
        rad = r.facts.extra["radius"]
        x, y = polar(cx, cy, 0.5 * rad, n["angle"])
        assert _close(img[int(y), int(x)], rgb(n["color"])), spec.data
        bx, (x, y) = n["box"], n["tip"]  # the needle's measured pixels reach its tip
        assert bx[0] - 1.5 <= x <= bx[2] + 1.5 and bx[1] - 1.5 <= y <= bx[3] + 1.5
        attrs = r.facts.entity("gauge").attrs
        if "zone" in attrs:
            zoned += 1
            # just beside the tick the needle points at, the ring shows the zone's colour
            for off in (1.2, -1.2):
                x, y = polar(cx, cy, 0.915 * rad, n["angle"] + off)
                assert _close(img[int(y), int(x)], rgb(ZONE_COLORS[attrs["zone"]]), 50), (spec.data, off)
        labels = [t for t in r.facts.texts if t.role == "tick:gauge"]
        assert len(labels) == round((attrs["hi"] - attrs["lo"]) / attrs["major"]) + 1
        for t in r.facts.texts:
            assert t.box[3] - t.box[1] >= 7
    assert zoned >= 6


def test_same_spec_same_bytes(renders):
    gen = Gauge()
    spec, r = renders[2]
    again = gen.render(spec)
    assert again.png == r.png and again.facts == r.facts
    assert gen.sample(5, 2, spec.knobs) == spec
