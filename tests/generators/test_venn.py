"""Tests of scene.venn: texts inside their regions, Facts against the pixels, questions, a checked run."""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.venn import COLORS, LETTERS, Venn, box_in_region
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Spec

from tests.generators.kinds_common import renders_redrawn

CASES = [{}, {"content": "counts"}, {"n_sets": "2", "outside": False}, {"n_sets": "3", "n_items": 18, "font_px": 12},
         {"content": "counts", "n_sets": "2", "image_size": 360}]


@lru_cache(maxsize=None)
def _renders(case: int, n: int = 6) -> tuple:
    gen = Venn()
    knobs = gen.resolve_knobs(CASES[case])
    return renders_redrawn(gen, knobs, 4, n)


def _all():
    for c in range(len(CASES)):
        yield from _renders(c)


def _pixels(r) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(float)


def test_same_spec_same_bytes():
    gen = Venn()
    knobs = gen.resolve_knobs({"content": "any"})
    a = gen.sample(9, 2, knobs)
    assert a == gen.sample(9, 2, knobs)
    r1, r2 = gen.render(a), Venn().render(Spec.model_validate_json(a.model_dump_json()))
    assert r1.png == r2.png and r1.facts == r2.facts


def test_texts_lie_inside_their_regions_and_counts_add_up():
    for spec, r in _all():
        f = r.facts
        circ, fr = f.extra["circles"], f.extra["frame"]
        ents = {e.id: e for e in f.entities}
        regions = [e for e in f.entities if e.attrs["kind"] == "region"]
        for e in f.entities:
            if e.attrs["kind"] == "item":
                key = "".join(L for L in LETTERS if e.attrs.get(f"in_{L}"))
                assert box_in_region(e.box, key, circ, fr, 2.0), (e.id, e.box, key)
        for t in f.texts:
            if t.role.startswith("cell:"):
                rid = t.role.split(":")[1]
                key = "".join(L for L in LETTERS if ents[rid].attrs.get(f"in_{L}"))
                assert box_in_region(t.box, key, circ, fr, 2.0)
                assert int(t.text) == ents[rid].attrs["count"]
        items = [e for e in f.entities if e.attrs["kind"] == "item"]
        if f.extra["content"] == "names":
            assert sum(e.attrs["count"] for e in regions) == len(items)
        for s in (e for e in f.entities if e.attrs["kind"] == "set"):
            L = s.attrs["letter"]
            assert s.attrs["items"] == sum(e.attrs["count"] for e in regions if e.attrs[f"in_{L}"])
        for a in f.texts:  # no two texts overlap
            for b in f.texts:
                if a is not b:
                    assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] \
                        or b.box[3] <= a.box[1], (a.text, b.text)


def test_facts_agree_with_pixels():
    for spec, r in _all():
        px = _pixels(r)
        for (cx, cy, rad), col in zip(r.facts.extra["circles"], COLORS):
            # the outline, in the circle's dark shade, at four points of the circle
            for ang in (0.3, 1.9, 3.4, 5.0):
                x, y = cx + rad * math.cos(ang), cy + rad * math.sin(ang)
                if 0 <= x < r.facts.width and 0 <= y < r.facts.height:
                    p = px[int(y), int(x)]
                    assert np.linalg.norm(p - np.array(col) * 0.75) < 90, (spec.index, p)
        for t in r.facts.texts:  # dark ink inside every text box
            x0, y0, x1, y1 = (int(round(v)) for v in t.box)
            assert px[y0:y1, x0:x1].min() < 120, t.text


def test_questions_execute_and_refuse_ties():
    templates = [t for t in load_templates() if t.name.startswith("scene.venn_")]
    assert len(templates) >= 3
    made = set()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        for tpl in templates_for("scene.venn", r.facts, templates):
            try:
                q = make_question(tpl, r.facts, rng)
            except ProgramError as e:
                assert e.reason in ("tie", "empty", "no_slot_value"), (tpl.name, e)
                continue
            assert engine.execute(q.program, r.facts) == q.value
            made.add(tpl.name)
    assert {"scene.venn_both", "scene.venn_only", "scene.venn_exactly_one", "scene.venn_none",
            "scene.venn_member"} <= made


def test_no_generic_scene_template_applies():
    """Venn entities carry no colour/shape: the CLEVR-style templates must not ask about circles."""
    _, r = _renders(0)[0]
    names = {t.name for t in templates_for("scene.venn", r.facts, load_templates())}
    assert names and all(n.startswith("scene.venn_") for n in names)
