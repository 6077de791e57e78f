"""Tests of scene.geometry: drawn to scale, labels clear of lines and of each other, Facts against the pixels,
questions, a checked run."""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.geometry import SHAPES, Geometry, seg_box_dist
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Spec

from tests.generators.kinds_common import renders_redrawn

CASES = [{"shape": s} for s in SHAPES] + [{"rotate": False, "font_px": 20}, {"image_size": 320, "font_px": 12}]


@lru_cache(maxsize=None)
def _renders(case: int, n: int = 4) -> tuple:
    gen = Geometry()
    knobs = gen.resolve_knobs(CASES[case])
    return renders_redrawn(gen, knobs, 3, n)


def _all():
    for c in range(len(CASES)):
        yield from _renders(c)


def test_same_spec_same_bytes():
    gen = Geometry()
    a = gen.sample(9, 2, gen.resolve_knobs({}))
    assert a == gen.sample(9, 2, gen.resolve_knobs({}))
    r1, r2 = gen.render(a), Geometry().render(Spec.model_validate_json(a.model_dump_json()))
    assert r1.png == r2.png and r1.facts == r2.facts


def test_drawn_to_scale():
    """Pixel side lengths are one scale times the stated lengths; pixel angles are the stated angles."""
    for spec, r in _all():
        f = r.facts
        V = f.extra["vertices"]
        sides = [e for e in f.entities if e.attrs["kind"] == "side"]
        scales = [math.dist(V[e.attrs["name"][0]], V[e.attrs["name"][1]]) / e.attrs["length"] for e in sides]
        assert max(scales) / min(scales) < 1.01, (spec.data["shape"], scales)
        labels = spec.data["labels"]
        n = len(labels)
        total = 0.0
        for i, L in enumerate(labels):
            v, u, w = V[L], V[labels[i - 1]], V[labels[(i + 1) % n]]
            a = math.degrees(math.acos(((u[0] - v[0]) * (w[0] - v[0]) + (u[1] - v[1]) * (w[1] - v[1]))
                                       / (math.dist(u, v) * math.dist(w, v))))
            assert abs(a - f.entity(f"angle_{L}").attrs["degrees"]) < 0.5
            total += f.entity(f"angle_{L}").attrs["degrees"]
        assert abs(total - (n - 2) * 180) < 1e-6


def test_texts_clear_of_lines_and_each_other():
    for spec, r in _all():
        f = r.facts
        V = f.extra["vertices"]
        labels = spec.data["labels"]
        for t in f.texts:
            for i in range(len(labels)):
                p, q = V[labels[i]], V[labels[(i + 1) % len(labels)]]
                assert seg_box_dist(p, q, t.box) >= 3.0, (t.text, labels[i])
            assert 0 <= t.box[0] and t.box[2] <= f.width and 0 <= t.box[1] and t.box[3] <= f.height
        for a in f.texts:
            for b in f.texts:
                if a is not b:
                    assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] \
                        or b.box[3] <= a.box[1], (a.text, b.text)


def test_printed_values_match_facts():
    for spec, r in _all():
        f = r.facts
        for t in f.texts:
            if t.role.startswith("cell:"):
                _, eid, attr = t.role.split(":")
                assert float(t.text.split()[0].rstrip("°")) == f.entity(eid).attrs[attr]
                assert f.entity(eid).attrs["printed"]
        printed = {t.role.split(":")[1] for t in f.texts if t.role.startswith("cell:")}
        for e in f.entities:
            if e.attrs["kind"] in ("side", "angle"):
                assert (e.id in printed) == e.attrs["printed"]


def test_facts_agree_with_pixels():
    for spec, r in _all():
        px = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(float)
        V = r.facts.extra["vertices"]
        labels = spec.data["labels"]
        for i, L in enumerate(labels):  # dark outline at each vertex and at each side's midpoint
            x, y = V[L]
            assert px[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].min() < 110, L
            q = V[labels[(i + 1) % len(labels)]]
            mx, my = (x + q[0]) / 2, (y + q[1]) / 2
            assert px[int(my) - 1:int(my) + 2, int(mx) - 1:int(mx) + 2].min() < 110, (L, "side")
        for t in r.facts.texts:  # ink inside every text box
            x0, y0, x1, y1 = (int(round(v)) for v in t.box)
            assert px[y0:y1, x0:x1].min() < 160, t.text


def test_questions_execute():
    templates = [t for t in load_templates() if t.name.startswith("scene.geometry_")]
    assert len(templates) >= 4
    made = set()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        for tpl in templates_for("scene.geometry", r.facts, load_templates()):
            assert tpl.name.startswith("scene.geometry_"), tpl.name
            try:
                q = make_question(tpl, r.facts, rng)
            except ProgramError as e:
                assert e.reason in ("ambiguous", "unreadable_value"), (tpl.name, e)
                continue
            assert engine.execute(q.program, r.facts) == q.value
            made.add(tpl.name)
    assert {t.name for t in templates} == made


def test_answers_use_printed_values():
    gen = Geometry()
    spec = next(s for s, _ in _renders(0) if s.data["mode"] == "angles")
    r = gen.render(spec)
    tpl = next(t for t in load_templates() if t.name == "scene.geometry_third_angle")
    q = make_question(tpl, r.facts, np.random.default_rng(1))
    missing = next(e for e in r.facts.entities if "missing_angle" in e.attrs)
    assert q.value == missing.attrs["degrees"] and q.tolerance_source == "computed"
