"""Tests of scene.clock: unambiguous times, hands and numerals where the Facts say, clock ops, a checked run."""

from __future__ import annotations

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.dials import Clock, angle_gap, polar

from .kinds_common import pixels, render_knob_sets, rgb

FAMILY = "scene.clock"
KNOB_SETS = [{}, {"precision": "1", "second_hand": "yes", "ampm": "yes"}, {"numerals": "roman", "face": "dark"},
             {"numerals": "none", "minute_ticks": "no", "image_size": 192}, {"image_size": 640, "face": "modern"},
             {"hour_margin": 2, "min_hand_gap": 6, "precision": "1"}] * 3


@pytest.fixture(scope="module")
def renders():
    return render_knob_sets(FAMILY, KNOB_SETS)


def _close(a, b, tol=40) -> bool:
    return int(np.abs(np.asarray(a, int) - np.asarray(b, int)).max()) <= tol


def test_times_are_unambiguous(renders):
    for (spec, r), kv in zip(renders, KNOB_SETS):
        knobs = Clock().resolve_knobs(kv)
        d, c = spec.data, r.facts.entity("clock").attrs
        assert (c["hour"], c["minute"]) == (d["hour"], d["minute"]) and c["time"] == f"{d['hour']}:{d['minute']:02d}"
        m = d["minute"]
        assert m == 0 or knobs["hour_margin"] <= m <= 60 - knobs["hour_margin"]
        assert m % int(knobs["precision"]) == 0
        angles = [h["angle"] for h in r.facts.extra["hands"].values()]
        assert all(angle_gap(a, b) >= knobs["min_hand_gap"] for i, a in enumerate(angles) for b in angles[i + 1:])
        assert r.facts.extra["hands"]["hour"]["angle"] == pytest.approx(30 * (d["hour"] % 12) + m / 2)


def test_hands_and_face_are_where_the_facts_say(renders):
    for spec, r in renders:
        img = pixels(r.png)
        cx, cy = r.facts.extra["centre"]
        for name, h in r.facts.extra["hands"].items():
            x, y = polar(cx, cy, 0.7 * h["length"], h["angle"])
            px = np.asarray(img[int(y), int(x)], int)
            if name == "second":  # a hairline: antialiased, but nearer its colour than the face's
                face = np.asarray(rgb(r.facts.extra["colors"]["face"]), int)
                assert np.abs(px - rgb(h["color"])).sum() < np.abs(px - face).sum(), spec.data
            else:
                assert _close(px, rgb(h["color"])), (spec.data, name)
            assert h["visible_pixels"] > 0
            bx = h["box"]
            assert bx[0] - 1 <= h["tip"][0] <= bx[2] + 1 and bx[1] - 1 <= h["tip"][1] <= bx[3] + 1
        x0, y0, x1, y1 = r.facts.entity("clock").box
        face, rad = rgb(r.facts.extra["colors"]["face"]), r.facts.extra["radius"]
        assert (x1 - x0) == pytest.approx(2 * rad, abs=1.5)
        assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((cx, cy), abs=1)
        # between the minute ticks near the rim the face shows (a hand may cross one or two of these points)
        spots = [polar(cx, cy, 0.9 * rad, 3 + 30 * k) for k in range(12)]
        assert sum(_close(img[int(y), int(x)], face, 8) for x, y in spots) >= 9, spec.data


def test_numerals_are_drawn_in_their_boxes(renders):
    for spec, r in renders:
        img = pixels(r.png)
        ink = np.array(rgb(r.facts.extra["colors"]["ticks"]), int)
        nums = [t for t in r.facts.texts if t.role == "numeral:clock"]
        want = {"arabic": 12, "roman": 12, "quarters": 4, "none": 0}[spec.data["numerals"]]
        assert len(nums) == want
        for t in r.facts.texts:
            x0, y0, x1, y1 = (int(round(v)) for v in t.box)
            patch = img[y0:y1, x0:x1].reshape(-1, 3).astype(int)
            assert (np.abs(patch - ink).max(1) < 60).any(), (t.text, spec.data)
            assert y1 - y0 >= 7


def test_clock_ops():
    from deltaprompts.records import Entity, Facts

    def facts(h, m):
        return Facts(domain="scene", kind="clock", width=1, height=1,
                     entities=[Entity(id="clock", attrs={"hour": h, "minute": m})])

    prog = lambda s: engine.parse(s)  # noqa: E731
    assert engine.execute(prog("time_after[minutes=20](unique(scene()))"), facts(11, 50)) == "12:10"
    assert engine.execute(prog("time_after[minutes=90](unique(scene()))"), facts(12, 45)) == "2:15"
    assert engine.execute(prog("minutes_to_hour(unique(scene()))"), facts(3, 35)) == 25
    with pytest.raises(ProgramError) as e:
        engine.execute(prog("minutes_to_hour(unique(scene()))"), facts(3, 0))
    assert e.value.reason == "ambiguous"


def test_same_spec_same_bytes(renders):
    gen = Clock()
    spec, r = renders[1]
    again = gen.render(spec)
    assert again.png == r.png and again.facts == r.facts
    assert gen.sample(5, 1, spec.knobs) == spec
