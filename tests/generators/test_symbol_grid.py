"""Tests of scene.symbol_grid: one odd symbol, a continuable pattern, Facts against pixels, a checked run."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.scenes import PALETTE
from deltaprompts.generators.symbol_grid import PROPERTIES, SymbolGrid
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Spec

CASES = [{"mode": "odd"}, {"mode": "pattern"}, {"mode": "odd", "grid": 9, "subtle": True, "image_size": 320},
         {"mode": "pattern", "pattern_length": 5, "image_size": 300}] + \
        [{"mode": "odd", "difference": p} for p in PROPERTIES]


@lru_cache(maxsize=None)
def _renders(case: int, n: int = 6) -> tuple:
    gen = SymbolGrid()
    knobs = gen.resolve_knobs(CASES[case])
    return tuple((s, gen.render(s)) for s in (gen.sample(5, i, knobs) for i in range(n)))


def _all():
    for c in range(len(CASES)):
        yield from _renders(c)


def test_same_spec_same_bytes():
    gen = SymbolGrid()
    knobs = gen.resolve_knobs({})
    a = gen.sample(9, 2, knobs)
    assert a == gen.sample(9, 2, knobs)
    r1, r2 = gen.render(a), SymbolGrid().render(Spec.model_validate_json(a.model_dump_json()))
    assert r1.png == r2.png and r1.facts == r2.facts


def test_colour_at_each_symbol_centre():
    for spec, r in _all():
        px = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(float)
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            # the centroid of the box region is inside every (convex or star) shape: test a small window
            cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
            win = px[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3)
            want = np.array(PALETTE[e.attrs["color"]], float)
            assert np.linalg.norm(win - want, axis=1).min() < 20, (spec.index, e.id, win[4])


def test_odd_grid_has_exactly_one_odd_symbol_of_the_asked_property():
    for case, kv in enumerate(CASES):
        if kv.get("mode") != "odd" or "difference" not in kv:
            continue
        for spec, r in _renders(case):
            odd = engine.execute(engine.parse("odd_one[attrs='shape|color|size|rotation'](scene())"), r.facts)
            assert (odd.attrs["row"] - 1) * spec.data["cols"] + odd.attrs["col"] - 1 == spec.data["odd_at"]
            prop = engine.execute(engine.parse("odd_attr[attrs='shape|color|size|rotation'](scene())"), r.facts)
            assert prop == kv["difference"]


def test_pattern_answer_is_the_next_element():
    for spec, r in _renders(1) + _renders(3):
        q = engine.parse("query[attr=option](continue_pattern[order=position, attrs='shape|color']("
                         "filter[attr=kind, value=sequence](scene()), filter[attr=kind, value=option](scene())))")
        letter = engine.execute(q, r.facts)
        seq, opts = spec.data["seq"], spec.data["options"]
        assert len({tuple(o) for o in opts}) == 4
        p = next(k for k in range(1, len(seq)) if all(seq[i] == seq[i - k] for i in range(k, len(seq))))
        assert opts["ABCD".index(letter)] == seq[len(seq) - p]
        assert {t.text for t in r.facts.texts} == {"A", "B", "C", "D", "?"}


def test_questions_execute():
    templates = load_templates()
    made = set()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        for tpl in templates_for("scene.symbol_grid", r.facts, templates):
            try:
                q = make_question(tpl, r.facts, rng)
            except ProgramError:
                continue
            assert engine.execute(q.program, r.facts) == q.value
            made.add(tpl.name)
    assert {"scene.symbol_grid_odd_row", "scene.symbol_grid_odd_col", "scene.symbol_grid_odd_property",
            "scene.symbol_grid_pattern_next"} <= made
