"""Helpers shared by the per-kind chart tests (tests/generators/test_kind_*.py, test_chart_kinds.py).

What every family gets generically lives elsewhere: tests/test_contract.py (the same Spec gives the
same bytes and Facts; template questions re-execute and their own answers verify) and
test_chart_kinds.py (20 items of every chart kind generate and pass `check`). The kind files keep
only what is particular to their kind, built from these pieces:

- rendering: `render_spec`, `render_knob_sets`, `renders_fixture`
- pixels: `pixels`, `rgb`, `centre_colour`, `commonest_colour`, `centre_hits`, `y_pixel`
- questions: `draw_questions` (make questions from rendered Facts; each must re-execute)
- runs: `generate_run` (generate N items of a family and read the run back with its check report)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.questions import make_question, templates_for
from deltaprompts.records import Question
from deltaprompts.verifiers.run_checks import CheckReport, check_run, verify_run

Box = Sequence[float]


# --- rendering -------------------------------------------------------------------------------------

def render_spec(family: str, seed: int, index: int, knobs: dict[str, Any] | None = None):
    """Sample `family`'s Spec (seed, index) with the given knobs (the rest default) and render it:
    returns (spec, rendered)."""
    fam = FAMILIES.get(family)()
    spec = fam.sample(seed, index, fam.resolve_knobs(dict(knobs or {})))
    return spec, fam.render(spec)


def renders_redrawn(gen: Any, knobs: dict[str, Any], seed: int, n: int, attempts: int = 5) -> tuple:
    """(spec, rendered) of family indices 0..n-1, each drawn again (the next attempt) when its render
    raises LayoutError, as generate does; an index that fails every attempt is left out."""
    from deltaprompts.errors import LayoutError

    out = []
    for i in range(n):
        for attempt in range(attempts):
            spec = gen.sample(seed, i, knobs, attempt)
            try:
                out.append((spec, gen.render(spec)))
                break
            except LayoutError:
                continue
    return tuple(out)


def case_renders(gen_cls: Any, cases: Sequence[dict[str, Any]], seed: int,
                 n: int) -> tuple[Callable[[], Iterator], Callable[[int], tuple]]:
    """(all_renders, renders) for a family tested over knob `cases`: renders(case) is every (spec, rendered)
    of indices 0..n-1 of `seed` under that case, rendered once per test session; all_renders() chains
    every case's."""
    from functools import lru_cache

    @lru_cache(maxsize=None)
    def renders(case: int) -> tuple:
        gen = gen_cls()
        knobs = gen.resolve_knobs(cases[case])
        return tuple((s, gen.render(s)) for s in (gen.sample(seed, i, knobs) for i in range(n)))

    def all_renders() -> Iterator:
        for c in range(len(cases)):
            yield from renders(c)

    return all_renders, renders


def assert_same_spec_same_bytes(gen_cls: Any, given: dict[str, Any]) -> Any:
    """A Spec drawn twice is the same (another index differs), and rendering it, and its JSON round trip
    in a fresh instance, gives the same images and Facts; returns the render."""
    from deltaprompts.records import Spec

    gen = gen_cls()
    knobs = gen.resolve_knobs(given)
    a = gen.sample(9, 2, knobs)
    assert a == gen.sample(9, 2, knobs) and gen.sample(9, 3, knobs).data != a.data
    r1, r2 = gen.render(a), gen_cls().render(Spec.model_validate_json(a.model_dump_json()))
    assert r1.pngs == r2.pngs and r1.facts == r2.facts
    return r1


def render_knob_sets(family: str, knob_sets: Iterable[dict[str, Any]], seed: int = 5) -> list:
    """One (spec, rendered) pair per knob set, the i-th set drawn at index i of `seed`."""
    return [render_spec(family, seed, i, given) for i, given in enumerate(knob_sets)]


def renders_fixture(family: str, knob_sets: Iterable[dict[str, Any]], seed: int = 5):
    """A module-scoped fixture named `renders` holding `render_knob_sets(family, knob_sets, seed)`;
    use as `renders = renders_fixture(FAMILY, KNOB_SETS)` in a test module."""

    @pytest.fixture(scope="module")
    def renders():
        return render_knob_sets(family, knob_sets, seed)

    return renders


# --- pixels ----------------------------------------------------------------------------------------

def pixels(png: bytes) -> np.ndarray:
    """A PNG's pixels as an (height, width, 3) uint8 RGB array."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def rgb(hex_color: str) -> tuple[int, int, int]:
    """'#rrggbb' as an (r, g, b) tuple of ints, comparable with `tuple(img[y, x])`."""
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def centre_colour(img: np.ndarray, box: Box) -> tuple[int, ...]:
    """The colour of the pixel at the centre of `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return tuple(img[int((y0 + y1) / 2), int((x0 + x1) / 2)])


def commonest_colour(img: np.ndarray, box: Box, lead: int = 1, trail: int = 1) -> tuple[int, ...]:
    """The most frequent colour inside `box`, shrunk by `lead` pixels at its top/left and `trail` at
    its bottom/right (clear of the outline): robust to a label, a median line or another series'
    line crossing the mark."""
    x0, y0, x1, y1 = box
    patch = img[int(y0) + lead:int(y1) - trail, int(x0) + lead:int(x1) - trail].reshape(-1, 3)
    colors, counts = np.unique(patch, axis=0, return_counts=True)
    return tuple(colors[counts.argmax()])


def centre_hits(img: np.ndarray, entities: Iterable, skip: Iterable[str] = (), tol: int = 0) -> tuple[int, int]:
    """(hits, total) over `entities` not in `skip`: a hit is a centre pixel within `tol` (per channel)
    of the entity's attrs['color']. For thin marks (line vertices) whose centre pixel another line may
    cross or antialiasing may tint, so the caller asserts a share."""
    skip = set(skip)
    hits = total = 0
    for e in entities:
        if e.id in skip:
            continue
        total += 1
        got = np.array(centre_colour(img, e.box), dtype=int)
        hits += int(np.abs(got - np.array(rgb(e.attrs["color"]))).max() <= tol)
    return hits, total


def y_pixel(value: float, value_range: Sequence[float], box: Box) -> float:
    """The pixel row of `value` on a linear vertical axis spanning `value_range` over `box`."""
    lo, hi = value_range
    return box[3] - (value - lo) / (hi - lo) * (box[3] - box[1])


# --- questions -------------------------------------------------------------------------------------

def draw_questions(family: str, renders: Iterable, templates: list, *, tries: int = 4,
                   mc_fraction: float | None = None,
                   on_refusal: Callable[[Any, Any, ProgramError], None] | None = None) -> Iterator:
    """Yield (spec, rendered, template, question) for `tries` draws of every template in `templates`
    that applies to each rendered chart, one rng (seed 0) throughout. Every question drawn is checked
    to re-execute (after a JSON round trip) to its value and to leave no unfilled slot in its text; a
    draw refused with ProgramError is passed to `on_refusal(spec, template, error)` (to assert its
    reason) and skipped."""
    rng = np.random.default_rng(0)
    extra = {} if mc_fraction is None else {"mc_fraction": mc_fraction}
    for spec, r in renders:
        for t in templates_for(family, r.facts, templates):
            for _ in range(tries):
                try:
                    q = make_question(t, r.facts, rng, **extra)
                except ProgramError as e:
                    if on_refusal is not None:
                        on_refusal(spec, t, e)
                    continue
                back = Question.model_validate_json(q.model_dump_json())
                assert engine.execute(back.program, r.facts) == q.value, t.name
                assert "{" not in q.text, (t.name, q.text)
                yield spec, r, t, q


# --- runs ------------------------------------------------------------------------------------------

def generate_run(family: str, out: Path, n: int = 20, seed: int = 2, **config: Any) -> tuple[list, CheckReport]:
    """Generate `n` items of `family` (default knobs, one worker) into `out`; return the run's items
    (read back through verify_run, which raises on a run-level problem) and its `check` report."""
    cfg = GenerateConfig(families=[family], n=n, seed=seed, knobs=resolve_all_knobs([family], {}), **config)
    generate(cfg, out, workers=1)
    return verify_run(out), check_run(out)
