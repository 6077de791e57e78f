"""Tests of scene.pair: the two images differ exactly inside the changed objects' boxes, every box holds its
object's colour on the image it names, the edits match the Facts, determinism, and the questions."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import KnobError, ProgramError
from deltaprompts.generators.pairs import Pair
from deltaprompts.generators.scenes import OUTLINE_SHADE, PALETTE
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Node
from tests.generators.kinds_common import assert_same_spec_same_bytes, case_renders, pixels

CASES = [{}, {"n_objects": 9, "max_edits": 1, "image_size": 256, "outline": "all"},
         {"vocabulary": "basic", "n_objects": 4, "rotate": False, "background": "texture", "image_size": 200}]


_all, _renders = case_renders(Pair, CASES, seed=3, n=12)


def _pixels(png: bytes) -> np.ndarray:
    return pixels(png).astype(int)


def _window(box, size: int) -> tuple[slice, slice]:
    """The whole pixels a box touches."""
    x0, y0, x1, y1 = box
    return (slice(max(0, math.floor(y0)), min(size, math.ceil(y1))),
            slice(max(0, math.floor(x0)), min(size, math.ceil(x1))))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_spec_same_bytes(case):
    assert len(assert_same_spec_same_bytes(Pair, CASES[case]).pngs) == 2


def test_every_box_holds_its_colour_on_its_own_image():
    for spec, r in _all():
        imgs = [_pixels(p) for p in r.pngs]
        size = r.facts.width
        assert r.facts.image_sizes == [(size, size), (size, size)]
        assert all(im.shape == (size, size, 3) for im in imgs)
        for e in r.facts.entities:
            assert e.image == e.attrs["image_no"] - 1
            fill = np.array(PALETTE[e.attrs["obj_color"]])
            rows, cols = _window(e.box, size)
            crop = imgs[e.image][rows, cols].reshape(-1, 3)
            own = (np.abs(crop - fill).max(1) <= 3).sum()
            own += (np.abs(crop - (fill * OUTLINE_SHADE).astype(int)).max(1) <= 3).sum()  # an outline's stroke
            assert own >= 0.4 * e.attrs["area"], (spec.index, e.id)
            assert e.attrs["visible_pixels"] == e.attrs["area"] >= 100


def test_the_images_differ_exactly_inside_the_changed_objects():
    """Pixels differ between the two images inside the boxes of changed objects only, and every changed
    object's box (on either image) holds differing pixels; unchanged objects' boxes are identical."""
    for spec, r in _all():
        a, b = (_pixels(p) for p in r.pngs)
        size = r.facts.width
        diff = np.abs(a - b).max(2) > 0
        changed = np.zeros_like(diff)
        areas: dict[str, list[int]] = {}
        kind = {e["object"]: e["kind"] for e in spec.data["edits"]}
        for e in r.facts.entities:
            rows, cols = _window(e.box, size)
            if e.attrs["change"] != "none":
                changed[rows, cols] = True
                areas.setdefault(e.attrs["object"], []).append(e.attrs["area"])
            else:
                assert not diff[rows, cols].any(), (spec.index, e.id)
        for obj, a_ in areas.items():  # a resized object differs where the larger shape leaves the smaller
            mine = np.zeros_like(diff)
            for e in r.facts.entities:
                if e.attrs["object"] == obj:
                    mine[_window(e.box, size)] = True
            want = abs(a_[0] - a_[1]) if kind[obj] == "resized" else max(a_)
            assert (diff & mine).sum() >= 0.3 * want, (spec.index, obj)
        assert not (diff & ~changed).any(), spec.index


def test_facts_follow_the_edits():
    kinds = Counter()
    for spec, r in _all():
        edits = spec.data["edits"]
        assert 1 <= len(edits) <= 3 and r.facts.fields["n_differences"] == len(edits)
        assert len({e["object"] for e in edits}) == len(edits), "each edit on its own object"
        assert not ({"recolored"} <= {e["kind"] for e in edits} and {e["kind"] for e in edits} & {"removed", "added"})
        by_img = {k: {e.attrs["object"]: e for e in r.facts.entities if e.image == k} for k in (0, 1)}
        for k in (0, 1):
            names = [e.attrs["name"] for e in by_img[k].values()]
            assert len(names) == len(set(names)), "(colour, shape) names are unique within an image"
        for ed in edits:
            kinds[ed["kind"]] += 1
            one, two = by_img[0].get(ed["object"]), by_img[1].get(ed["object"])
            if ed["kind"] == "removed":
                assert one and not two and one.attrs["change"] == "removed"
            elif ed["kind"] == "added":
                assert two and not one and two.attrs["change"] == "added"
            elif ed["kind"] == "recolored":
                assert one.attrs["obj_color"] != two.attrs["obj_color"] and one.box == two.box
            elif ed["kind"] == "moved":
                assert one.attrs["obj_color"] == two.attrs["obj_color"]
                reach = max(one.box[2] - one.box[0], one.box[3] - one.box[1])
                assert math.hypot(two.attrs["x"] - one.attrs["x"], two.attrs["y"] - one.attrs["y"]) >= 1.2 * reach
            else:
                assert {one.attrs["obj_size"], two.attrs["obj_size"]} == {"small", "large"}
                big, small = sorted((one, two), key=lambda e: -e.attrs["area"])
                assert big.attrs["area"] >= 1.5 * small.attrs["area"]
        untouched = set(by_img[0]) & set(by_img[1]) - {e["object"] for e in edits}
        assert all(by_img[0][o].box == by_img[1][o].box and by_img[0][o].attrs["change"] == "none" for o in untouched)
    assert set(kinds) == {"removed", "added", "recolored", "moved", "resized"}


def test_every_question_family_asks_and_reexecutes():
    templates = [t for t in load_templates() if t.name.startswith("scene.pair_")]
    assert len(templates) >= 4
    made, reasons, answers = set(), set(), Counter()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        usable = templates_for("scene.pair", r.facts, load_templates())
        assert {t.name for t in usable} <= {t.name for t in templates}, "single-image scene families stay out"
        for t in usable:
            try:
                q = make_question(t, r.facts, rng)
            except ProgramError as e:
                reasons.add(e.reason)
                continue
            assert engine.execute(q.program, r.facts) == q.value
            assert "image" in q.text, q.text  # phrasings name the images
            made.add(t.name)
            answers[(t.name, q.answer)] += 1
    assert made == {t.name for t in templates}
    assert reasons <= {"empty", "not_unique", "ambiguous"}, reasons
    assert {a for (n, a) in answers if n == "scene.pair_which_image"} == {"1", "2"}
    assert {a for (n, a) in answers if n == "scene.pair_in_both"} == {"Yes", "No"}


def test_which_image_and_in_both_read_the_images():
    spec, r = next((s, r) for s, r in _renders(0) if any(e["kind"] != "moved" for e in s.data["edits"]))
    scene = Node(op="scene")
    seen = Counter()
    for e in r.facts.entities:
        same = Node(op="filter", args=[scene], params={"attr": "described", "value": e.attrs["described"]})
        named = Node(op="filter", args=[scene], params={"attr": "name", "value": e.attrs["name"]})
        both = engine.execute(Node(op="in_every_image", args=[named]), r.facts)
        assert both == (len({x.image for x in r.facts.entities if x.attrs["name"] == e.attrs["name"]}) == 2)
        if len({x.image for x in engine.execute(same, r.facts)}) == 1:
            assert engine.execute(Node(op="only_image", args=[same]), r.facts) == e.image + 1
            seen["one"] += 1
        else:
            with pytest.raises(ProgramError, match="images"):
                engine.execute(Node(op="only_image", args=[same]), r.facts)
            seen["both"] += 1
    assert seen["one"] and seen["both"]


def test_bad_knobs_are_refused():
    with pytest.raises(KnobError, match="max_edits"):
        Pair().resolve_knobs({"max_edits": "4"})
