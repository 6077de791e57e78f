"""Tests of the scene families (scene.shapes, scene.grid) and the scene question templates."""

from __future__ import annotations

import fnmatch
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deltaprompts.templates
from deltaprompts import engine
from deltaprompts.errors import KnobError, ProgramError, RenderError, UnknownNameError
from deltaprompts.generators.scenes import GRID_LINE, OUTLINE_SHADE, PALETTE, Grid, Shapes, areas_separated
from deltaprompts.questions import format_answer, load_template, make_question
from deltaprompts.records import Entity, Facts, Spec

TEMPLATE_DIR = Path(deltaprompts.templates.__file__).parent / "questions" / "scene"
# Knob settings that exercise overlap, outlines, every background and dense grids.
CASES = [
    (Shapes, {}),
    (Shapes, {"n_objects": 12, "occlusion": 0.6, "outline": "all", "background": "texture"}),
    (Shapes, {"n_objects": 9, "occlusion": 0.4, "outline": "none", "background": "gradient", "image_size": 256}),
    (Grid, {}),
    (Grid, {"grid": 7, "fill": 0.9, "background": "texture", "outline": "all"}),
    (Shapes, {"image_size": 768, "n_objects": 10, "occlusion": 0.5}),  # 2x supersampling above 640 px
    (Grid, {"image_size": 128, "grid": 5, "fill": 1.0, "grid_lines": False}),
]


@lru_cache(maxsize=None)
def _renders(case: int, n: int = 8, seed: int = 3) -> tuple:
    cls, kv = CASES[case]
    gen = cls()
    knobs = gen.resolve_knobs(kv)
    specs = [gen.sample(seed, i, knobs) for i in range(n)]
    return tuple((s, gen.render(s)) for s in specs)


def _all_renders():
    for case in range(len(CASES)):
        yield from _renders(case)


def _rgb(hx: str) -> np.ndarray:
    return np.array([int(hx[i:i + 2], 16) for i in (1, 3, 5)], float)


def _seg_dist(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each pixel colour to the colour segment a-b (fill to outline shade)."""
    ab = b - a
    t = np.clip(((px - a) @ ab) / (ab @ ab), 0, 1)
    return np.linalg.norm(px - (a + t[..., None] * ab), axis=-1)


def _overlaps(box, other) -> bool:
    return not (other[2] <= box[0] or other[0] >= box[2] or other[3] <= box[1] or other[1] >= box[3])


# ---------------------------------------------------------------- render contract


@pytest.mark.parametrize("case", range(len(CASES)))
def test_same_spec_same_bytes(case):
    cls, kv = CASES[case]
    gen = cls()
    knobs = gen.resolve_knobs(kv)
    a, b = gen.sample(9, 4, knobs), gen.sample(9, 4, knobs)
    assert a == b
    spec = Spec.model_validate_json(a.model_dump_json())  # a Spec read back from JSON renders the same
    r1, r2 = gen.render(a), cls().render(spec)
    assert r1.png == r2.png
    assert r1.facts == r2.facts
    assert gen.sample(9, 5, knobs).data != a.data


def test_every_object_is_legible():
    for spec, r in _all_renders():
        f = r.facts
        floor, frac = f.extra["min_visible_px"], f.extra["min_visible_fraction"]
        assert floor >= 10 and len(f.entities) >= 2
        for e in f.entities:
            assert e.attrs["visible_pixels"] >= floor, (spec.family, e)
            assert e.attrs["visible_pixels"] >= frac * e.attrs["area"] - 1e-9
            assert 0 < e.attrs["visible_fraction"] <= 1


def test_boxes_inside_image_and_consistent():
    for _, r in _all_renders():
        f = r.facts
        for i, e in enumerate(f.entities):
            x0, y0, x1, y1 = e.box
            assert 0 <= x0 < x1 <= f.width and 0 <= y0 < y1 <= f.height
            assert (x0 + x1) / 2 == e.attrs["x"] and (y0 + y1) / 2 == e.attrs["y"]
            v = f.extra["visible_boxes"][e.id]
            assert 0 <= v[0] < v[2] <= f.width and 0 <= v[1] < v[3] <= f.height
            assert x0 - 1 <= v[0] and v[2] <= x1 + 1 and y0 - 1 <= v[1] and v[3] <= y1 + 1
            assert e.id == f"obj{i}" and e.attrs["z"] == i


def test_visible_pixels_agree_with_image():
    """Count, in each object's visible box, the pixels whose colour is nearest to the object's own colour
    (fill to outline shade) among the background and the colours of the objects nearby: within 15%."""
    checked = skipped = 0
    for spec, r in _all_renders():
        f = r.facts
        img = np.asarray(Image.open(io.BytesIO(r.png)).convert("RGB"), float)
        assert img.shape == (f.height, f.width, 3)
        bg = f.extra["background"]
        backs = [_rgb(bg["color"]), _rgb(bg["color"]) - 22]  # plain or gradient start, texture ink
        if spec.data.get("grid_lines"):
            backs.append(np.array(GRID_LINE, float))
        if "color2" in bg:
            backs.append(_rgb(bg["color2"]))
        for e in f.entities:
            vb = f.extra["visible_boxes"][e.id]
            near = [o for o in f.entities if o.id != e.id and _overlaps(vb, o.box)]
            if any(o.attrs["color"] == e.attrs["color"] for o in near):
                skipped += 1  # a same-coloured neighbour's pixels cannot be told apart by colour
                continue
            px = img[vb[1]:vb[3], vb[0]:vb[2]]
            own = np.array(PALETTE[e.attrs["color"]], float)
            rivals = [np.linalg.norm(px - b, axis=-1) for b in backs]
            near_colours = [np.array(PALETTE[o.attrs["color"]], float) for o in near]
            rivals += [_seg_dist(px, c, c * OUTLINE_SHADE) for c in near_colours]
            n = int((_seg_dist(px, own, own * OUTLINE_SHADE) < np.min(rivals, 0)).sum())
            # 15%, or 10 px for the tiny objects of small images, where a few blended edge pixels swing it
            assert abs(n - e.attrs["visible_pixels"]) <= max(10, 0.15 * e.attrs["visible_pixels"]), (e, n)
            checked += 1
    assert checked > 5 * skipped


def test_image_is_antialiased_and_sized():
    spec, r = _renders(0)[0]
    img = Image.open(io.BytesIO(r.png))
    assert img.size == (spec.data["size"],) * 2 and img.mode == "RGB"
    assert not img.info.get("dpi") and not getattr(img, "text", {})  # no metadata chunks
    colours = len(np.unique(np.asarray(img).reshape(-1, 3), axis=0))
    assert colours > 3 * len(r.facts.entities)  # edge pixels blend object and background


def test_shapes_have_a_clear_largest_and_smallest():
    seps = [areas_separated([e.attrs["area"] for e in r.facts.entities]) for c in (0, 1, 2, 5) for _, r in _renders(c)]
    assert sum(seps) >= 0.9 * len(seps)


def test_grid_rows_and_columns_share_exact_centres():
    for case in (3, 4, 6):
        for _, r in _renders(case):
            ents, cell = r.facts.entities, r.facts.extra["grid"]["cell"]
            for a in ents:
                for b in ents:
                    dx = abs(a.attrs["x"] - b.attrs["x"])
                    assert dx == 0 or dx > 0.9 * cell  # same column exactly, or a whole cell apart


def test_grid_objects_name_the_cell_their_centre_lies_in():
    """row / col (1-based, from the top and from the left) agree with the pixel centre and the grid's
    origin and cell size in Facts.extra, and no two objects share a cell."""
    for case in (3, 4, 6):
        for _, r in _renders(case):
            g = r.facts.extra["grid"]
            cells = [(e.attrs["row"], e.attrs["col"]) for e in r.facts.entities]
            assert len(set(cells)) == len(cells)
            for e, (row, col) in zip(r.facts.entities, cells):
                assert 1 <= row <= g["rows"] and 1 <= col <= g["cols"]
                assert g["lo"] + (col - 1) * g["cell"] < e.attrs["x"] < g["lo"] + col * g["cell"]
                assert g["lo"] + (row - 1) * g["cell"] < e.attrs["y"] < g["lo"] + row * g["cell"]


def test_render_rejects_an_illegible_spec():
    spec, _ = _renders(0)[0]
    data = dict(spec.data)
    objs = [dict(o) for o in data["objects"]]
    objs.append(dict(objs[0], area=objs[0]["area"] * 3))  # a bigger copy on top hides objs[0] entirely
    data["objects"] = objs
    with pytest.raises(RenderError, match="legibility floor"):
        Shapes().render(spec.model_copy(update={"data": data}))


@pytest.mark.parametrize("cls,knob,value,allowed", [
    (Shapes, "occlusion", 1.5, "[0, 0.8]"), (Shapes, "n_objects", 0, "[2, 20]"),
    (Shapes, "image_size", "huge", "[128, 1024]"), (Grid, "grid", 12, "[2, 8]"),
    (Grid, "background", "stripes", "any, plain, gradient, texture"), (Shapes, "min_visible_px", 5, "[20, 500]"),
])
def test_knob_errors_name_knob_and_range(cls, knob, value, allowed):
    with pytest.raises(KnobError) as err:
        cls().resolve_knobs({knob: value})
    assert knob in str(err.value) and allowed in str(err.value)


def test_unknown_knob_is_named():
    with pytest.raises(UnknownNameError, match="occlusoin"):
        Shapes().resolve_knobs({"occlusoin": 0.2})


def test_knobs_move_the_scene():
    gen = Shapes()
    few = gen.sample(1, 0, gen.resolve_knobs({"n_objects": 3}))
    many = gen.sample(1, 0, gen.resolve_knobs({"n_objects": 18}))
    assert len(few.data["objects"]) <= 3 < 12 <= len(many.data["objects"])
    flat = gen.render(gen.sample(1, 0, gen.resolve_knobs({"occlusion": 0.0})))
    assert all(e.attrs["visible_fraction"] == 1.0 for e in flat.facts.entities)
    two = gen.render(gen.sample(1, 0, gen.resolve_knobs({"n_colors": 2, "n_shapes": 2, "n_objects": 10})))
    assert len({e.attrs["color"] for e in two.facts.entities}) <= 2
    assert len({e.attrs["shape"] for e in two.facts.entities}) <= 2


@pytest.mark.parametrize("cls", [Shapes, Grid])
def test_basic_vocabulary_stays_in_the_basic_world(cls):
    """vocabulary=basic draws only the four primary colours and three simple shapes, even when the
    knobs ask for more colours or for confusable neighbours (red/orange, square/diamond)."""
    from deltaprompts.generators.scenes import BASIC_COLORS, BASIC_SHAPES

    gen = cls()
    knobs = gen.resolve_knobs({"vocabulary": "basic", "n_colors": 10, "n_shapes": 8, "distractor_similarity": 1.0})
    ents = [e for i in range(12) for e in gen.render(gen.sample(2, i, knobs)).facts.entities]
    assert {e.attrs["color"] for e in ents} == set(BASIC_COLORS)
    assert {e.attrs["shape"] for e in ents} == set(BASIC_SHAPES)
    full = [e for i in range(12) for e in gen.render(gen.sample(2, i, gen.resolve_knobs({"n_colors": 10}))).facts.entities]
    assert {e.attrs["color"] for e in full} - set(BASIC_COLORS)


def test_facts_round_trip_json():
    _, r = _renders(1)[0]
    assert Facts.model_validate_json(r.facts.model_dump_json()) == r.facts


# ---------------------------------------------------------------- question templates


def _templates():
    return [load_template(p) for p in sorted(TEMPLATE_DIR.glob("*.yaml"))]


def test_at_least_eight_scene_families():
    tpls = _templates()
    assert len(tpls) >= 8 and all(t.domain == "scene" and len(t.phrasings) >= 3 for t in tpls)
    assert sum(t.steps >= 5 for t in tpls) >= 4  # multi-step families


@lru_cache(maxsize=None)
def _scene_facts(cls: type, n: int = 20) -> tuple[Facts, ...]:
    gen = cls()
    knobs = gen.resolve_knobs({})
    return tuple(gen.render(gen.sample(21, i, knobs)).facts for i in range(n))


@pytest.mark.parametrize("tpl", [t for t in _templates() if any(fnmatch.fnmatch(f, pat) for f in ("scene.shapes",
                                                                   "scene.grid") for pat in t.applies_to)],
                         ids=lambda t: t.name)
def test_template_yields_questions_that_reexecute(tpl):
    """The shape scenes' question families (the other perception families test their own)."""
    made = 0
    for cls in (Shapes, Grid):
        for i, facts in enumerate(_scene_facts(cls)):
            if not tpl.applies(cls.name, facts):
                continue
            for attempt in range(8):
                try:
                    q = make_question(tpl, facts, np.random.default_rng([i, attempt]), mc_fraction=0.3)
                except ProgramError:
                    continue
                value = engine.execute(q.program, facts)
                assert value == q.value
                if q.options is None:
                    assert format_answer(value, tpl.answer_type, facts) == q.answer
                else:
                    assert q.options[q.answer] == format_answer(value, tpl.answer_type, facts)
                assert "{" not in q.text and q.text.strip() == q.text
                made += 1
                break
    assert made >= 5, f"{tpl.name}: only {made} questions over 40 scenes"


def _hand_facts() -> Facts:
    """Four objects: a blue square in the middle, a red circle up-left, a green star up-right, a red
    square straight below the blue one (same x: neither left nor right of it)."""
    def ent(i, color, shape, x, y):
        return Entity(id=f"obj{i}", attrs={"color": color, "shape": shape, "size": "small", "x": x, "y": y, "z": i,
                                           "area": 400 + i, "visible_pixels": 400, "visible_fraction": 1.0},
                      box=(x - 10, y - 10, x + 10, y + 10))
    ents = [ent(0, "red", "circle", 50, 50), ent(1, "blue", "square", 100, 80), ent(2, "green", "star", 150, 20),
            ent(3, "red", "square", 100, 150)]
    return Facts(domain="scene", kind="shapes", width=200, height=200, entities=ents,
                 context={"noun": "object", "nouns": "objects", "plural": {}, "rel": {}})


@pytest.mark.parametrize("direction,count", [("left", 1), ("right", 1), ("above", 2), ("below", 1)])
def test_relate_count_by_hand(direction, count):
    tpl = load_template(TEMPLATE_DIR / "relate_count.yaml")
    prog = engine.bind(tpl.program, {"c": "blue", "s": "square", "d": direction})
    assert engine.execute(prog, _hand_facts()) == count


def test_relate_queries_by_hand():
    facts = _hand_facts()
    only = load_template(TEMPLATE_DIR / "relate_query.yaml")
    assert engine.execute(engine.bind(only.program, {"s": "square", "d": "left"}), _without_red_square(facts)) == "red"
    with pytest.raises(ProgramError, match="not_unique"):  # two squares: the referent is ambiguous
        engine.execute(engine.bind(only.program, {"s": "square", "d": "left"}), facts)
    by_shape = load_template(TEMPLATE_DIR / "relate_filter_query.yaml")
    assert engine.execute(engine.bind(by_shape.program, {"s": "star", "t": "circle", "d": "left"}), facts) == "red"
    with pytest.raises(ProgramError, match="empty"):  # no circle right of the star
        engine.execute(engine.bind(by_shape.program, {"s": "star", "t": "circle", "d": "right"}), facts)
    counted = load_template(TEMPLATE_DIR / "relate_filter_count.yaml")
    assert engine.execute(engine.bind(counted.program, {"s": "star", "c": "red", "d": "left"}), facts) == 2
    assert engine.execute(engine.bind(counted.program, {"s": "circle", "c": "red", "d": "below"}), facts) == 1


def _without_red_square(facts: Facts) -> Facts:
    """The hand Facts without the red square, so 'the square' is unique; left of it lies only the red circle."""
    return facts.model_copy(update={"entities": [e for e in facts.entities if e.id != "obj3"]})


def test_largest_and_same_by_hand():
    facts = _hand_facts()
    largest = load_template(TEMPLATE_DIR / "largest.yaml")
    assert engine.execute(largest.program, facts) == "red"  # obj3 has the largest area
    same = load_template(TEMPLATE_DIR / "same_color.yaml")
    assert engine.execute(engine.bind(same.program, {"s": "circle"}), facts) == 1
