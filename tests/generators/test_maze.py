"""Tests of scene.maze: walls on the pixels match the passages in the Facts, marked cells, ops, determinism."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import LayoutError, ProgramError
from deltaprompts.generators.maze import MARKS, WALL, Maze, cell_id
from deltaprompts.questions import load_templates, make_question, templates_for
from tests.generators.kinds_common import assert_same_spec_same_bytes, case_renders

CASES = [{}, {"grid": 12, "loops": 0.3, "blocked": 0.5}, {"grid": 5, "loops": 0.0, "image_size": 256},
         {"grid": 16, "image_size": 600, "blocked": 1.0}]


_all, _renders = case_renders(Maze, CASES, seed=4, n=6)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_spec_same_bytes(case):
    assert_same_spec_same_bytes(Maze, CASES[case])


def test_walls_on_the_pixels_match_the_passages():
    """Between every two neighbouring cells, the middle of their shared side is wall-coloured exactly when
    the Facts give no passage there; the outer border is closed."""
    for spec, r in _all():
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(int)
        g = r.facts.extra["grid"]
        n, cell, x0, y0 = g["rows"], g["cell"], g["x0"], g["y0"]
        open_ = {frozenset(e) for e in r.facts.extra["edges"]}
        is_wall = lambda x, y: bool(np.abs(img[y, x] - WALL).max() <= 10)
        for rr in range(n):
            for c in range(n):
                if c + 1 < n:  # the side to the right
                    x, y = x0 + (c + 1) * cell, y0 + rr * cell + cell // 2
                    assert is_wall(x, y) != (frozenset((cell_id(rr, c), cell_id(rr, c + 1))) in open_), (rr, c)
                if rr + 1 < n:  # the side below
                    x, y = x0 + c * cell + cell // 2, y0 + (rr + 1) * cell
                    assert is_wall(x, y) != (frozenset((cell_id(rr, c), cell_id(rr + 1, c))) in open_), (rr, c)
        for k in range(n):
            assert is_wall(x0, y0 + k * cell + cell // 2) and is_wall(x0 + n * cell, y0 + k * cell + cell // 2)


def test_marked_cells_show_their_colour_and_letter():
    for spec, r in _all():
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(int)
        assert sorted(e.attrs["label"] for e in r.facts.entities) == ["G", "P", "Q", "S"]
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            corner = img[int(y0 + 0.2 * (y1 - y0)), int(x0 + 0.2 * (x1 - x0))]
            assert np.abs(corner - MARKS[e.attrs["label"]][1]).max() <= 3, e.id
            centre = img[int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2].reshape(-1, 3)
            assert (centre.max(1) < 80).sum() >= 10, "the letter is drawn in the cell"
            assert e.attrs["node"] == cell_id(e.attrs["row"] - 1, e.attrs["col"] - 1)
        t = {x.text: x.box for x in r.facts.texts}
        assert all(b[3] - b[1] >= 7 for b in t.values())


def test_blocked_mazes_have_no_path_and_open_ones_do():
    seen = set()
    for spec, r in _all():
        prog = engine.parse("path_exists(unique(filter[attr=kind, value=start](scene())), "
                            "unique(filter[attr=kind, value=goal](scene())))")
        ok = engine.execute(prog, r.facts)
        assert ok == (not spec.data["blocked"])
        seen.add(ok)
        if ok:
            steps = engine.execute(engine.parse(
                "shortest_path_length[by=edges](unique(filter[attr=kind, value=start](scene())), "
                "unique(filter[attr=kind, value=goal](scene())))"), r.facts)
            s, g_ = (next(e for e in r.facts.entities if e.attrs["kind"] == k) for k in ("start", "goal"))
            assert steps >= abs(s.attrs["row"] - g_.attrs["row"]) + abs(s.attrs["col"] - g_.attrs["col"])
    assert seen == {True, False}


def test_every_question_family_asks():
    templates = [t for t in load_templates() if t.name.startswith("scene.maze_")]
    assert len(templates) >= 3
    made, reasons = set(), set()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        for t in templates_for("scene.maze", r.facts, templates):
            try:
                q = make_question(t, r.facts, rng)
            except ProgramError as e:
                reasons.add(e.reason)
                continue
            assert engine.execute(q.program, r.facts) == q.value
            made.add(t.name)
    assert made == {t.name for t in templates}
    assert reasons <= {"tie", "no_path"}, reasons


def test_too_small_cells_are_refused():
    gen = Maze()
    with pytest.raises(LayoutError):
        gen.sample(0, 0, gen.resolve_knobs({"grid": 16, "image_size": 200}))
