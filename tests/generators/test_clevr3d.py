"""scene.clevr3d: Facts against the rendered pixels and index pass, relations against positions, occlusion
measured, byte-identical renders across processes, the redraw of hidden objects, and a small CLI run."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import LayoutError, ProgramError, UserError
from deltaprompts.generators import blender3d
from deltaprompts.generators.clevr3d import PALETTE, Clevr3D, centre_height
from deltaprompts.programs import OPS
from deltaprompts.records import Spec

NO_BPY = blender3d.unavailable()
needs_bpy = pytest.mark.skipif(bool(NO_BPY), reason=f"scene.clevr3d needs bpy: {NO_BPY}")
SMALL = {"width": "160", "height": "120", "samples": "4", "max_objects": "6"}


@pytest.fixture(scope="module")
def fam():
    return Clevr3D()


@pytest.fixture(scope="module")
def scene(fam):
    """(spec, rendered, raw pass output) of one small scene of 6 objects."""
    kn = fam.resolve_knobs(SMALL | {"min_objects": "6"})
    for index in range(10):
        spec = fam.sample(5, index, kn)
        try:
            return spec, fam.render(spec), blender3d.render_scene(spec.data, PALETTE)
        except LayoutError:
            continue
    raise AssertionError("no legible scene in 10 draws")


def _spec(fam, objects, **data):
    """A hand-made Spec: the camera unjittered, no relation margin, the given objects."""
    spec = fam.sample(0, 0, fam.resolve_knobs(SMALL | {"camera_jitter": "0", "light_jitter": "0"}))
    d = spec.data | {"margin": 0.0, "min_pixels": 1} | data
    d["objects"] = [dict({"material": "rubber", "rotation": 30.0}, **o,
                         z=centre_height(o["shape"], o["r"])) for o in objects]
    return Spec(family=spec.family, version=spec.version, seed=0, index=0, knobs=spec.knobs, data=d)


def _along(spec, dist):
    """World (x, y) at `dist` along the camera's ground-forward direction from the origin."""
    cam = np.array(spec.data["camera"]["location"][:2])
    f = -cam / np.linalg.norm(cam)
    return [round(float(v), 4) for v in f * dist]


def test_unavailable_family_is_listed_and_refused(monkeypatch):
    from deltaprompts.catalog import catalog
    from deltaprompts.generate import select_families

    monkeypatch.setattr(Clevr3D, "unavailable", classmethod(lambda cls: "bpy is not installed: pip install 'x[3d]'"))
    row = next(f for f in catalog()["families"] if f["name"] == "scene.clevr3d")
    assert "pip install" in row["unavailable"]
    with pytest.raises(UserError, match="scene.clevr3d is unavailable here: bpy is not installed"):
        select_families(["scene.clevr3d"])
    assert "scene.clevr3d" not in select_families(domains=["scene"])


@needs_bpy
def test_facts_match_the_index_pass_and_the_pixels(scene):
    spec, rendered, raw = scene
    img = np.asarray(Image.open(io.BytesIO(rendered.png)).convert("RGB")).astype(float)
    assert img.shape == (120, 160, 3) and np.array_equal(img, raw["rgb"])
    index = raw["index"]
    assert set(np.unique(index)) <= set(range(len(spec.data["objects"]) + 1))
    chroma = {n: np.array(c, float) / sum(c) for n, c in PALETTE.items() if n != "gray"}
    for i, e in enumerate(rendered.facts.entities):
        mask = index == i + 1
        ys, xs = np.nonzero(mask)
        assert e.attrs["visible_pixels"] == int(mask.sum()) >= spec.data["min_pixels"]
        assert e.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert 0 <= e.box[0] < e.box[2] <= 160 and 0 <= e.box[1] < e.box[3] <= 120
        rgb = np.median(img[mask], axis=0)
        if e.attrs["material"] == "rubber":  # matte: the object's own colour shows under its mask
            if e.attrs["color"] == "gray":
                assert rgb.max() - rgb.min() < 25, (e.id, rgb)
            else:
                near = min(chroma, key=lambda n: np.abs(rgb / rgb.sum() - chroma[n]).sum())
                assert near == e.attrs["color"], (e.id, rgb, near)
    ground = img[index == 0]
    assert np.median(ground.max(1) - ground.min(1)) < 10  # the floor is gray


@needs_bpy
def test_positions_projection_and_relations_agree(scene):
    spec, rendered, _ = scene
    d = spec.data
    cam, w, h = np.array(d["camera"]["location"]), d["width"], d["height"]
    f3 = -cam / np.linalg.norm(cam)  # the camera looks at the origin
    right = np.cross(f3, [0, 0, 1])
    right /= np.linalg.norm(right)
    up = np.cross(right, f3)
    fpx = d["camera"]["lens"] / 36.0 * w  # Blender's 36 mm sensor spans the wider side
    fground = np.array([f3[0], f3[1], 0]) / np.linalg.norm(f3[:2])
    ents = rendered.facts.entities
    for e in ents:
        p = np.array([e.attrs["x"], e.attrs["y"], e.attrs["z"]]) - cam
        assert e.attrs["image_x"] == pytest.approx(w / 2 + fpx * (p @ right) / (p @ f3), abs=0.3)
        assert e.attrs["image_y"] == pytest.approx(h / 2 - fpx * (p @ up) / (p @ f3), abs=0.3)
        assert e.attrs["cam_right"] == pytest.approx(p @ right, abs=1e-3)
        assert e.attrs["cam_depth"] == pytest.approx(p @ fground, abs=1e-3)
    relate = OPS.get("relate3d").fn
    for e in ents:
        for direction, axis, sign in (("left", right, -1), ("right", right, 1), ("front", fground, -1),
                                      ("behind", fground, 1)):
            got = {o.id for o in relate(rendered.facts, {"direction": direction}, e)}
            pe = np.array([e.attrs["x"], e.attrs["y"], 0.0])
            want = {o.id for o in ents if o.id != e.id and
                    sign * (np.array([o.attrs["x"], o.attrs["y"], 0.0]) - pe) @ axis > 0}
            assert got == want, (e.id, direction)


@needs_bpy
def test_relation_within_margin_is_ambiguous(scene):
    _, rendered, _ = scene
    facts = rendered.facts.model_copy(update={"extra": dict(rendered.facts.extra, relation_margin=100.0)})
    prog = engine.parse("count(relate3d[direction=left](unique(filter[attr=visible_pixels, value=%d](scene()))))"
                        % rendered.facts.entities[0].attrs["visible_pixels"])
    with pytest.raises(ProgramError, match="ambiguous"):
        engine.execute(prog, facts)


@needs_bpy
def test_occluded_object_shows_less_than_alone(fam):
    probe = _spec(fam, [])
    front = {"shape": "cube", "color": "blue", "size": "large", "r": 0.7, "x": 0.0, "y": 0.0}
    back = {"shape": "sphere", "color": "red", "size": "small", "r": 0.35}
    back |= dict(zip("xy", _along(probe, 1.6)))
    back_alone = fam.render(_spec(fam, [back])).facts.entities[0].attrs["visible_pixels"]
    both = fam.render(_spec(fam, [front, back])).facts.entities
    assert 0 < both[1].attrs["visible_pixels"] < 0.9 * back_alone
    assert both[0].attrs["cam_depth"] < both[1].attrs["cam_depth"]  # the cube is in front


@needs_bpy
def test_hidden_object_is_refused_and_redrawn(fam, tmp_path):
    probe = _spec(fam, [])
    front = {"shape": "cube", "color": "blue", "size": "large", "r": 0.7, "x": 0.0, "y": 0.0}
    back = {"shape": "sphere", "color": "red", "size": "small", "r": 0.35}
    back |= dict(zip("xy", _along(probe, 1.3)))
    hidden = _spec(fam, [front, back], min_pixels=30)
    with pytest.raises(LayoutError, match=r"object 1 \(small red rubber sphere\) shows \d+ visible pixels"):
        fam.render(hidden)


@needs_bpy
def test_same_spec_same_png_in_this_and_a_fresh_process(fam, scene):
    spec, rendered, _ = scene
    again = fam.render(Spec.model_validate_json(spec.model_dump_json()))
    assert again.png == rendered.png and again.facts == rendered.facts
    code = ("import sys, hashlib; from deltaprompts.records import Spec; "
            "from deltaprompts.generators.clevr3d import Clevr3D; "
            "print(hashlib.sha256(Clevr3D().render(Spec.model_validate_json(sys.stdin.read())).png).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], input=spec.model_dump_json(), capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == hashlib.sha256(rendered.png).hexdigest()
    # a generate worker limits Cycles to its share of the cores: the bytes do not depend on the thread count
    one = subprocess.run([sys.executable, "-c", code], input=spec.model_dump_json(), capture_output=True, text=True,
                         timeout=120, check=True, env={**os.environ, "DELTAPROMPTS_RENDER_THREADS": "1"})
    assert one.stdout.strip() == hashlib.sha256(rendered.png).hexdigest()


@needs_bpy
def test_cli_run_passes_check(tmp_path):
    out = tmp_path / "run"
    knobs = ["--knob", "width=128", "--knob", "height=96", "--knob", "samples=4", "--knob", "max_objects=5",
             "--knob", "min_pixels=250"]
    gen = subprocess.run([sys.executable, "-m", "deltaprompts.cli", "generate", "--family", "scene.clevr3d",
                          "--n", "6", "--seed", "3", "--questions-per-image", "2", "--workers", "1", *knobs,
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr[-2000:]
    items = [json.loads(line) for f in sorted((out / "items").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(items) == 6
    floor = round(250 * 128 * 96 / (320 * 240))
    for it in items:
        assert (out / it["image"]["path"]).exists()
        assert all(e["attrs"]["visible_pixels"] >= floor for e in it["facts"]["entities"])
        assert it["image"]["width"] == 128 and it["image"]["height"] == 96
    stats = [json.loads(f.read_text()) for f in (out / "items").glob("*.stats.json")]
    assert sum(st["rejections"].get("render_error", 0) for st in stats) >= 1  # hidden objects: scenes redrawn
    check = subprocess.run([sys.executable, "-m", "deltaprompts.cli", "check", str(out)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert "0 ill-posed item(s)" in check.stdout


def test_knobs_are_checked(fam):
    from deltaprompts.errors import KnobError

    with pytest.raises(KnobError, match="min_objects=6 exceeds max_objects=4"):
        fam.resolve_knobs({"min_objects": "6", "max_objects": "4"})
    kn = fam.resolve_knobs(SMALL)
    spec = fam.sample(1, 2, kn)
    assert spec == fam.sample(1, 2, kn) and 3 <= len(spec.data["objects"]) <= 6
    assert spec.data["min_pixels"] == round(100 * 160 * 120 / (320 * 240))
    objs = spec.data["objects"]
    cam = np.array(spec.data["camera"]["location"][:2])
    f = -cam / np.linalg.norm(cam)
    r = np.array([f[1], -f[0]])
    for i, a in enumerate(objs):  # CLEVR's placement rules hold in the Spec
        for b in objs[:i]:
            dv = np.array([a["x"] - b["x"], a["y"] - b["y"]])
            assert math.hypot(*dv) - a["r"] - b["r"] >= 0.25 - 1e-9
            assert abs(dv @ r) >= 0.4 - 1e-3 and abs(dv @ f) >= 0.4 - 1e-3


def test_where_slots_name_existing_objects_and_exclude_skips_the_family():
    from deltaprompts.errors import TemplateError
    from deltaprompts.questions import fill_slots, load_template, load_templates
    from deltaprompts.records import Entity, Facts
    from deltaprompts.rng import item_rng

    ents = [Entity(id=f"o{i}", attrs={"shape": s, "color": c}) for i, (s, c) in
            enumerate([("cube", "red"), ("cube", "blue"), ("sphere", "green"), ("cone", "gray")])]
    facts = Facts(domain="scene", kind="clevr3d", width=10, height=10, entities=ents)
    tpl = next(t for t in load_templates() if t.name == "scene.clevr3d_query_material")
    pairs = {(v["s"], v["c"]) for k in range(60) for v in [fill_slots(tpl, facts, item_rng(0, "w", k))]}
    assert pairs == {(e.attrs["shape"], e.attrs["color"]) for e in ents}  # every drawn reference exists
    bad = ("name: x\ndomain: scene\nanswer_type: count\nslots:\n  c: {attr: color, where: {shape: s}}\n"
           "  s: {attr: shape}\nprogram: 'count(filter[attr=color, value=$c](filter[attr=shape, value=$s](scene())))'\n"
           "phrasings: ['How many?']\n")
    with pytest.raises(TemplateError, match="slot 'c': `where` needs attr and names earlier slots"):
        load_template("bad.yaml", bad)
    relate = next(t for t in load_templates() if t.name == "scene.relate_query")
    assert relate.applies("scene.shapes", facts)  # the 2-D relate families keep their own scenes
    assert not relate.applies("scene.clevr3d", facts)
