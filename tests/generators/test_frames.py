"""Tests of scene.frames: each object is drawn per frame where its trajectory says, wall contacts and
headings are what the pixels show, the frame labels, determinism, the motion ops and the questions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.frames import Frames, heading_of
from deltaprompts.generators.scenes import OUTLINE_SHADE, PALETTE
from deltaprompts.programs import OPS
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Entity, Facts, Node
from tests.generators.kinds_common import assert_same_spec_same_bytes, case_renders, pixels

CASES = [{}, {"n_frames": 3, "n_objects": 8, "max_moving": 5, "turns": 0.6, "image_size": 320},
         {"n_frames": 5, "vocabulary": "basic", "appear": 1.0, "background": "gradient", "outline": "all",
          "image_size": 200}]


_all, _renders = case_renders(Frames, CASES, seed=5, n=10)


def _pixels(png: bytes) -> np.ndarray:
    return pixels(png).astype(int)


def _tracks(facts: Facts) -> dict[str, Entity]:
    return {e.id: e for e in facts.entities if e.attrs["kind"] == "track"}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_spec_same_bytes(case):
    assert_same_spec_same_bytes(Frames, CASES[case])


def test_each_object_is_drawn_where_its_trajectory_puts_it():
    """In every frame, an object's box (centred on the trajectory's position for that frame) holds its colour
    and none of its colour lies in a 3 px ring around the box; frames without the object have no entity."""
    for spec, r in _all():
        n = spec.data["n_frames"]
        assert 3 <= n <= 8 and len(r.pngs) == n and r.facts.image_sizes == [(r.facts.width, r.facts.height)] * n
        imgs = [_pixels(p) for p in r.pngs]
        for o in spec.data["objects"]:
            shown = {e.attrs["frame"]: e for e in r.facts.entities
                     if e.attrs["kind"] == "in_frame" and e.attrs["object"] == o["id"]}
            assert set(shown) == {k + 1 for k, p in enumerate(o["track"]) if p is not None}
            fill = np.array(PALETTE[o["color"]])
            for k, e in shown.items():
                assert e.image == k - 1 and [e.attrs["x"], e.attrs["y"]] == o["track"][k - 1]
                x0, y0, x1, y1 = e.box
                assert (x0 + x1) / 2 == e.attrs["x"] and (y0 + y1) / 2 == e.attrs["y"]
                ax0, ay0, ax1, ay1 = r.facts.extra["arena"]  # the wall's grey is left out: an outline may match it
                img = imgs[k - 1]
                stroke = (fill * OUTLINE_SHADE).astype(int)
                own = (np.abs(img - fill).max(2) <= 30) | (np.abs(img - stroke).max(2) <= 30)
                own[:ay0], own[ay1:], own[:, :ax0], own[:, ax1:] = False, False, False, False
                near = np.zeros_like(own)
                near[max(0, int(y0) - 3):int(y1) + 4, max(0, int(x0) - 3):int(x1) + 4] = True
                inside = np.zeros_like(own)
                inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
                assert (own & inside).sum() >= 0.5 * e.attrs["area"], (spec.index, e.id)
                assert not (own & near & ~inside).any(), (spec.index, e.id)  # nothing of it outside its box


def test_wall_contacts_and_headings_follow_the_drawn_positions():
    """A track's wall_frame is the first frame whose object box meets the arena's inner edge, where the
    object's colour is found beside the wall; before it the object keeps clear of every wall; its
    direction is the sign of its drawn steps."""
    seen = Counter()
    for spec, r in _all():
        ax0, ay0, ax1, ay1 = r.facts.extra["arena"]
        imgs = [_pixels(p) for p in r.pngs]
        for oid, t in _tracks(r.facts).items():
            frames = sorted((e for e in r.facts.entities
                             if e.attrs.get("object") == oid and e.attrs["kind"] == "in_frame"),
                            key=lambda e: e.attrs["frame"])
            seen[t.attrs["direction"]] += 1
            gaps = [min(e.box[0] - ax0, e.box[1] - ay0, ax1 - e.box[2], ay1 - e.box[3]) for e in frames]
            assert all(g == 0 or g >= 6 for g in gaps), "off the wall means clearly off it"
            touching = [e.attrs["frame"] for e, g in zip(frames, gaps) if g == 0]
            assert t.attrs["wall_frame"] == (touching[0] if touching else 0)
            if touching:
                seen["wall"] += 1
                e = frames[[f.attrs["frame"] for f in frames].index(touching[0])]
                fill = np.array(PALETTE[e.attrs["obj_color"]])
                band = imgs[e.image][max(ay0 - 1, int(e.box[1]) - 1):int(e.box[3]) + 1,
                                     max(ax0 - 1, int(e.box[0]) - 1):int(e.box[2]) + 1]
                near = np.abs(band - fill).max(2) <= 60
                near |= np.abs(band - (fill * OUTLINE_SHADE).astype(int)).max(2) <= 60
                rows, cols = np.nonzero(near)
                edge = min(int(e.box[0]) - 1 + cols.min() - ax0, ax1 - (int(e.box[0]) - 1 + cols.max() + 1),
                           int(e.box[1]) - 1 + rows.min() - ay0, ay1 - (int(e.box[1]) - 1 + rows.max() + 1))
                assert edge <= 1, (spec.index, oid, edge)
            xs = [e.attrs["x"] for e in frames]
            ys = [e.attrs["y"] for e in frames]
            d = t.attrs["direction"]
            if d in ("left", "right"):
                assert all((b - a) * (1 if d == "right" else -1) >= 0 for a, b in zip(xs, xs[1:])) and len(set(ys)) == 1
            if d in ("up", "down"):
                assert all((b - a) * (1 if d == "down" else -1) >= 0 for a, b in zip(ys, ys[1:])) and len(set(xs)) == 1
            if d == "none":
                assert len(set(xs)) == len(set(ys)) == 1 and not t.attrs["moves"] and t.attrs["wall_frame"] == 0
    assert {"left", "right", "up", "down", "none", "turning", "diagonal", "wall"} <= set(seen), seen


def test_frame_labels_are_drawn_on_their_frames():
    for spec, r in _renders(0):
        assert [t.text for t in r.facts.texts] == [f"Frame {k + 1}" for k in range(spec.data["n_frames"])]
        for t in r.facts.texts:
            x0, y0, x1, y1 = (int(round(v)) for v in t.box)
            crop = _pixels(r.pngs[t.image])[y0:y1, x0:x1]
            assert (crop.max(2) < 120).sum() >= 20 and y1 - y0 >= 7


def test_heading_of_classifies_steps():
    assert heading_of([[0, 0], [10, 1], [20, 1], None]) == "right"
    assert heading_of([[5, 5], [5, 5]]) == "none"
    assert heading_of([[0, 0], [0, -10], [-10, -10]]) == "turning"
    assert heading_of([[0, 0], [10, 8]]) == "diagonal"


def _track(oid: str, direction: str, distance: float, displacement: float, wall: int = 0, dx: float = 0.0,
           dy: float = 0.0) -> Entity:
    return Entity(id=oid, attrs={"kind": "track", "name": oid, "direction": direction, "distance": distance,
                                 "displacement": displacement, "wall_frame": wall, "moves": distance > 0,
                                 "dx": dx, "dy": dy})


def test_motion_ops_refuse_what_the_frames_do_not_show():
    facts = Facts(domain="scene", kind="frames", width=10, height=10,
                  entities=[_track("a", "right", 100, 100), _track("b", "left", 80, 80), _track("c", "none", 0, 0),
                            _track("d", "turning", 40, 30, 3, dx=20.0, dy=-20.0)])
    ents = {e.id: e for e in facts.entities}
    run = lambda name, args, **p: engine.execute(Node(op=name, args=args, params=p), facts)
    every = Node(op="scene")
    assert OPS.get("axis_direction").fn(facts, {}, ents["a"]) == "right"
    with pytest.raises(ProgramError, match="not along one axis"):
        OPS.get("axis_direction").fn(facts, {}, ents["d"])
    with pytest.raises(ProgramError) as e:
        OPS.get("axis_direction").fn(facts, {}, ents["c"])
    assert e.value.reason == "static"
    with pytest.raises(ProgramError) as e:
        run("heading", [every], direction="right")  # d turns, partly rightward: whether it counts is unclear
    assert e.value.reason == "ambiguous"
    assert [x.id for x in run("heading", [every], direction="left")] == ["b"]  # d has no leftward part
    assert run("heading", [every], direction="down") == []
    three = [ents[k] for k in "abc"]
    assert OPS.get("heading").fn(facts, {"direction": "left"}, three) == [ents["b"]]
    with pytest.raises(ProgramError) as e:
        OPS.get("farthest").fn(facts, {}, three)  # 100 is not 1.3 x 80
    assert e.value.reason == "tie"
    ents["b"].attrs.update(distance=60.0, displacement=60.0)
    assert OPS.get("farthest").fn(facts, {}, three) is ents["a"]
    assert OPS.get("event_frame").fn(facts, {"attr": "wall_frame"}, ents["d"]) == 3
    with pytest.raises(ProgramError):
        OPS.get("event_frame").fn(facts, {"attr": "wall_frame"}, ents["a"])


def test_every_question_family_asks_and_reexecutes():
    templates = [t for t in load_templates() if t.name.startswith("scene.frames_")]
    assert len(templates) >= 5
    made, reasons, answers = set(), set(), Counter()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        usable = templates_for("scene.frames", r.facts, load_templates())
        assert {t.name for t in usable} <= {t.name for t in templates}, "single-image scene families stay out"
        for t in usable * 2:
            try:
                q = make_question(t, r.facts, rng)
            except ProgramError as e:
                reasons.add(e.reason)
                continue
            assert engine.execute(q.program, r.facts) == q.value
            assert "frame" in q.text.lower(), q.text  # phrasings say the images are frames
            made.add(t.name)
            answers[(t.name, q.answer)] += 1
    assert made == {t.name for t in templates}
    assert reasons <= {"empty", "not_unique", "static", "ambiguous", "bad_param", "tie", "degenerate"}, reasons
    assert {a for (n, a) in answers if n == "scene.frames_direction"} == {"left", "right", "up", "down"}
