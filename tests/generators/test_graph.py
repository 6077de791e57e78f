"""Tests of scene.graph: legible layouts, Facts that match the pixels, graph ops and questions, determinism."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import ProgramError
from deltaprompts.generators.graphs import EDGE_INK, NODE_FILL, Graph, legibility_problem, node_shapes
from deltaprompts.questions import load_templates, make_question, templates_for
from deltaprompts.records import Entity, Facts, Spec

CASES = [
    {},
    {"weighted": "yes", "directed": "yes", "labels": "cities", "layout": "spring"},
    {"weighted": "yes", "directed": "no", "layout": "circular", "n_nodes": 10, "image_size": 512},
    {"weighted": "no", "directed": "yes", "layout": "shell", "n_nodes": 9},
]


@lru_cache(maxsize=None)
def _renders(case: int, n: int = 6) -> tuple:
    gen = Graph()
    knobs = gen.resolve_knobs(CASES[case])
    return tuple((s, gen.render(s)) for s in (gen.sample(5, i, knobs) for i in range(n)))


def _all():
    for c in range(len(CASES)):
        yield from _renders(c)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_spec_same_bytes(case):
    gen = Graph()
    knobs = gen.resolve_knobs(CASES[case])
    a = gen.sample(9, 2, knobs)
    assert a == gen.sample(9, 2, knobs) and gen.sample(9, 3, knobs).data != a.data
    r1, r2 = gen.render(a), Graph().render(Spec.model_validate_json(a.model_dump_json()))
    assert r1.png == r2.png and r1.facts == r2.facts


def test_layouts_are_legible_and_facts_consistent():
    for spec, r in _all():
        assert legibility_problem(spec.data) is None
        f = r.facts
        labels = [e.attrs["label"] for e in f.entities]
        assert len(set(labels)) == len(labels)
        deg = {e.id: 0 for e in f.entities}
        for u, v, *w in f.extra["edges"]:
            deg[u] += 1
            deg[v] += 1
            assert bool(w) == f.extra["weighted"]
        assert deg == {e.id: e.attrs["degree"] for e in f.entities}
        pairs = [frozenset(e[:2]) for e in f.extra["edges"]]
        assert len(set(pairs)) == len(pairs), "at most one edge per pair of nodes"
        label_texts = [t for t in f.texts if t.role == "label"]
        for i, a in enumerate(label_texts):  # node labels never overlap, and lie inside their node
            for b in label_texts[:i]:
                assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]
            assert a.box[3] - a.box[1] >= 7


def test_pixels_match_the_facts():
    """Each node box is filled with the node colour above its label, and each edge is drawn in ink a
    quarter of the way along its visible segment (away from labels and arrowheads)."""
    for spec, r in _all():
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB")).astype(int)
        for e in r.facts.entities:
            x0, y0, x1, y1 = e.box
            # between the top border and the label, on the centre line: node fill
            px = img[int(y0 + 0.22 * (y1 - y0)), int((x0 + x1) / 2)]
            assert np.abs(px - NODE_FILL).max() <= 12, (e.id, px)
        for a, b in r.facts.extra["edge_segments"]:
            p = np.array(a) + 0.25 * (np.array(b) - np.array(a))
            win = img[int(p[1]) - 1:int(p[1]) + 2, int(p[0]) - 1:int(p[0]) + 2].reshape(-1, 3)
            # an anti-aliased line 1.6 px wide: some pixel near the path is most of the way to the ink colour
            assert (np.abs(win - EDGE_INK).max(1) / (255 - np.array(EDGE_INK)).max()).min() <= 0.45, (spec.index, a, b)
        w = r.facts.extra["printed_weights"]
        assert len(w) == (len(r.facts.extra["edges"]) if r.facts.extra["weighted"] else 0)
        assert sorted(w.values()) == sorted(t.text for t in r.facts.texts if t.role == "weight")


def _facts(edges, directed=False, weighted=False, n=5):
    ents = [Entity(id=f"n{i}", attrs={"label": "ABCDEFG"[i], "degree": 0}, box=(0, 0, 1, 1)) for i in range(n)]
    return Facts(domain="scene", kind="graph", width=10, height=10, entities=ents,
                 extra={"edges": edges, "directed": directed, "weighted": weighted})


def _run(program: str, facts: Facts):
    return engine.execute(engine.parse(program), facts)


def _ref(label: str) -> str:
    return f"unique(filter[attr=label, value={label}](scene()))"


def test_graph_ops():
    f = _facts([["n0", "n1", 4], ["n1", "n2", 1], ["n0", "n2", 9], ["n3", "n4", 2]], weighted=True)
    assert _run(f"path_exists({_ref('A')}, {_ref('C')})", f) is True
    assert _run(f"path_exists({_ref('A')}, {_ref('D')})", f) is False
    assert _run(f"shortest_path_length[by=edges]({_ref('A')}, {_ref('C')})", f) == 1
    assert _run(f"shortest_path_length[by=weight]({_ref('A')}, {_ref('C')})", f) == 5
    assert {e.id for e in _run(f"reachable({_ref('A')})", f)} == {"n1", "n2"}
    with pytest.raises(ProgramError) as e:
        _run(f"shortest_path_length[by=edges]({_ref('A')}, {_ref('E')})", f)
    assert e.value.reason == "no_path"
    cand = f"union(filter[attr=label, value=B](scene()), filter[attr=label, value=C](scene()))"
    assert _run(f"closest[by=weight]({cand}, {_ref('A')})", f).id == "n1"
    with pytest.raises(ProgramError) as e:  # B and C are both one edge from A
        _run(f"closest[by=edges]({cand}, {_ref('A')})", f)
    assert e.value.reason == "tie"
    d = _facts([["n0", "n1"], ["n1", "n2"]], directed=True)
    assert _run(f"path_exists({_ref('A')}, {_ref('C')})", d) is True
    assert _run(f"path_exists({_ref('C')}, {_ref('A')})", d) is False
    assert _run(f"count(reachable({_ref('B')}))", d) == 1
    with pytest.raises(ProgramError):  # no weights to add up
        _run(f"shortest_path_length[by=weight]({_ref('A')}, {_ref('B')})", d)


def test_every_question_family_asks_and_ties_are_refused():
    templates = [t for t in load_templates() if t.name.startswith("scene.graph_")]
    assert len(templates) >= 3
    made, reasons = set(), set()
    rng = np.random.default_rng(0)
    for spec, r in _all():
        for t in templates_for("scene.graph", r.facts, templates):
            try:
                q = make_question(t, r.facts, rng)
            except ProgramError as e:
                reasons.add(e.reason)
                continue
            assert "{" not in q.text and engine.execute(q.program, r.facts) == q.value
            if t.name == "scene.graph_most_connected":  # the winner leads strictly
                degs = sorted((e.attrs["degree"] for e in r.facts.entities), reverse=True)
                assert degs[0] > degs[1]
            made.add(t.name)
    assert made == {t.name for t in templates}, made
    assert reasons <= {"tie", "no_path", "degenerate"}, reasons


def test_node_shapes_fit_their_labels():
    spec, r = _renders(1)[0]  # city names: boxes widen to hold the name
    for box, t in zip(node_shapes(spec.data), [t for t in r.facts.texts if t.role == "label"]):
        assert box[0] < t.box[0] and t.box[2] < box[2] and box[1] < t.box[1] and t.box[3] < box[3]
