"""The `augment` knob: pixel styles, the box transform against OpenCV's own warp, determinism, checks, CLI."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deltaprompts import augment
from deltaprompts.cli import app
from deltaprompts.errors import UserError
from deltaprompts.generators.base import FAMILIES, Rendered, png_bytes
from deltaprompts.quads import area, bounds, box_corners, map_box, quad_height
from deltaprompts.records import Entity, Facts, Spec, TextSpan
from deltaprompts.rng import item_rng
from deltaprompts.store import RunStore
from deltaprompts.verifiers.checks import check_item, depends_on

cv2 = pytest.importorskip("cv2")
runner = CliRunner()
STYLES = ("photo", "scan", "screen")


def _gray(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def _fill(shape, quad, scale=16) -> np.ndarray:
    """A mask of the pixels whose centres lie inside `quad` (pixel-corner coordinates)."""
    mask = np.zeros(shape, np.uint8)
    pts = np.array([[(x - 0.5) * scale, (y - 0.5) * scale] for x, y in quad], np.int64).round().astype(np.int32)
    cv2.fillConvexPoly(mask, pts, 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _ink(gray: np.ndarray) -> np.ndarray:
    """How much darker each pixel is than its neighbourhood (text strokes on any background, lit or
    shaded): a mass that blur spreads but keeps."""
    bg = cv2.medianBlur(np.clip(gray, 0, 255).astype(np.uint8), 31).astype(np.float32)
    return np.clip((bg - gray) / np.maximum(bg, 1) - 0.08, 0, None)  # relative: a shadow dims ink and paper alike


# ------------------------------------------------------------------ the knob


def test_every_family_takes_augment_and_none_is_not_stored():
    for name in FAMILIES.names():
        fam = FAMILIES.get(name)()
        assert [k.name for k in fam.knobs].count("augment") == 1, name
        assert "augment" not in fam.resolve_knobs({}), name  # items made without it stay byte-identical
        assert "augment" not in fam.resolve_knobs({"augment": "none"}), name
        assert fam.resolve_knobs({"augment": "scan"})["augment"] == "scan"


def test_bad_style_is_one_clear_line(tmp_path):
    res = runner.invoke(app, ["generate", "--family", "chart.bar", "--knob", "augment=blurry", "--n", "2",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert res.output.strip() == "error: knob 'augment': 'blurry' is not valid; allowed: one of none, photo, scan, screen"
    assert not (tmp_path / "r").exists()


def test_none_returns_the_render_itself():
    fam = FAMILIES.get("scene.shapes")()
    spec = fam.sample(0, 0, fam.resolve_knobs({}))
    rendered = fam.render(spec)
    assert augment.apply(spec, rendered) is rendered


def test_without_opencv_the_error_says_what_to_install(monkeypatch):
    fam = FAMILIES.get("scene.shapes")()
    spec = fam.sample(0, 0, fam.resolve_knobs({"augment": "photo"}))
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)
    with pytest.raises(UserError, match=r"pip install 'deltaprompts\[augment\]'"):
        augment.apply(spec, fam.render(spec))


# ------------------------------------------------------------------ the box transform


@pytest.mark.parametrize("style", ["photo", "scan"])
def test_mapped_quads_match_opencvs_warp_of_each_box(style):
    """Warp a mask of each box with OpenCV (the pixels' own transform); the quad the box maps to must
    hold the warped mask's ink, and the two must agree up to the pixels along the edge."""
    w, h = 400, 300
    for draw in range(6):
        rng = item_rng(0, "test", draw)
        matrix = augment._geometry(style, rng, w, h, strength=1.0)
        assert matrix != np.eye(3).tolist()
        for _ in range(8):
            x0, y0 = rng.uniform(5, w - 80), rng.uniform(5, h - 60)
            box = (round(x0, 2), round(y0, 2), round(x0 + rng.uniform(20, 75), 2), round(y0 + rng.uniform(12, 55), 2))
            src = _fill((h, w), box_corners(box)).astype(np.float32)
            warped, _ = augment._warp(cv2, np.repeat(src[..., None], 3, axis=2), matrix, (0, 0, 0))
            ink = warped[..., 0] > 0.5
            quad = map_box(matrix, box)
            grown = cv2.dilate(_fill((h, w), quad).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            assert ink.any() and not (ink & ~grown).any(), f"{style}: warped ink outside the quad of {box}"
            inner = _fill((h, w), quad)
            iou = (ink & inner).sum() / (ink | inner).sum()
            assert iou > 0.85, f"{style}: quad and warped mask disagree (IoU {iou:.2f}) for {box}"


def test_quad_is_the_mapped_box_and_box_its_bounds():
    texts = [TextSpan(text="A", box=(10, 10, 60, 30), role="title")]
    ents = [Entity(id="e", attrs={}, box=(100, 100, 150, 160)), Entity(id="none", attrs={})]
    facts = Facts(domain="chart", kind="bar", width=200, height=200, texts=texts, entities=ents,
                  extra={"legend_box": [20, 150, 80, 190], "axes_box": None})
    m = augment._geometry("scan", item_rng(1, "t", 0), 200, 200, 1.0)
    out = augment.map_facts(facts, [m], "scan")
    assert out.texts[0].quad == map_box(m, (10, 10, 60, 30))
    assert out.texts[0].box == bounds(out.texts[0].quad)
    assert out.entities[1].box is None and out.entities[1].quad is None
    assert out.extra["legend_box"] == [round(v, 2) for v in bounds(map_box(m, (20, 150, 80, 190)))]
    assert out.extra["axes_box"] is None and out.extra["augment"]["maps"][0][0][:2] == [round(x, 9) for x in m[0][:2]]
    assert Facts.model_validate_json(out.model_dump_json()) == out


@pytest.mark.parametrize("domain", ["document", "scene"])
def test_each_image_of_a_multi_image_render_gets_its_own_map(domain):
    """Pages get a map each; a pair or frames (a scene: one camera) share one. Boxes follow their image's."""
    page = png_bytes(Image.new("RGB", (300, 400), "white"))
    facts = Facts(domain=domain, kind="pages", width=300, height=400, image_sizes=[(300, 400), (300, 400)],
                  texts=[TextSpan(text="p1", box=(20, 20, 120, 40), role="a"),
                         TextSpan(text="p2", box=(20, 20, 120, 40), role="b", image=1)])
    spec = Spec(family=f"{domain}.test", version="1", seed=0, index=0, knobs={"augment": "scan"}, data={})
    out = augment.apply(spec, Rendered(png=page, facts=facts, more_png=(page,)))
    maps = out.facts.extra["augment"]["maps"]
    assert len(out.pngs) == 2 and len(maps) == 2
    assert (maps[0] == maps[1]) == (domain == "scene") and (out.pngs[0] == out.pngs[1]) == (domain == "scene")
    for t in out.facts.texts:
        assert t.quad == map_box(maps[t.image], (20, 20, 120, 40))


def test_no_box_is_pushed_out_of_the_image():
    """A box hugging the border is inside after the warp (a draw that would crop it is redrawn)."""
    texts = [TextSpan(text=str(i), box=b, role="x") for i, b in
             enumerate([(0, 0, 40, 12), (260, 0, 300, 12), (0, 188, 40, 200), (260, 188, 300, 200)])]
    facts = Facts(domain="chart", kind="bar", width=300, height=200, texts=texts)
    for style in STYLES:
        for index in range(5):
            spec = Spec(family="chart.test", version="1", seed=0, index=index, knobs={"augment": style}, data={})
            out = augment.apply(spec, Rendered(png=png_bytes(Image.new("RGB", (300, 200), "white")), facts=facts))
            for t in out.facts.texts:
                assert all(-0.5 <= x <= 300.5 and -0.5 <= y <= 200.5 for x, y in t.quad), (style, t)


# ------------------------------------------------------------------ real renders


def _aug(name, style, index):
    fam = FAMILIES.get(name)()
    clean_spec = fam.sample(0, index, fam.resolve_knobs({}))
    spec = clean_spec.model_copy(update={"knobs": {**clean_spec.knobs, "augment": style}})
    clean = fam.render(clean_spec)
    return clean, augment.apply(spec, clean), spec


def _match(ink0: np.ndarray, ink1: np.ndarray, box, quad) -> float:
    """Normalised correlation, over the quad (grown 2 px), of the augmented image's ink with the clean
    render's ink carried from `box` onto `quad`: near 1 where the quad lies on its text."""
    carry = augment._homography(np.array(box_corners(box), float), np.array(quad, float)).tolist()
    pred = augment._warp(cv2, np.repeat(ink0[..., None], 3, axis=2), carry, (0, 0, 0))[0][..., 0]
    region = cv2.dilate(_fill(ink1.shape, quad).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    a, b = pred[region] - pred[region].mean(), ink1[region] - ink1[region].mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / d if d > 0 else 0.0


@pytest.mark.parametrize("name", ["document.invoice", "chart.bar"])
@pytest.mark.parametrize("style", STYLES)
def test_quads_still_cover_their_text(name, style):
    """Each text's ink on the augmented image lies in its quad: the quad holds at least half the ink
    (relative darkness) the clean box holds, scaled by area, and the ink there matches the clean text
    carried onto the quad (correlation >= 0.4); the same quad moved by a third of the text's height
    sideways and 0.4 down matches no more (the measure can fail)."""
    for index in range(2):
        clean, aug, _ = _aug(name, style, index)
        g0, g1 = _gray(clean.png), _gray(aug.png)
        ink0, ink1 = _ink(g0), _ink(g1)
        checked = 0
        for c, a in zip(clean.facts.texts, aug.facts.texts):
            x0, y0, x1, y1 = c.box
            if y1 - y0 < 10 or not (0 <= x0 and x1 <= g0.shape[1] and 0 <= y0 and y1 + 2 * (y1 - y0) <= g0.shape[0]):
                continue
            want = ink0[_fill(g0.shape, box_corners(c.box))].sum()
            if want < 8:
                continue
            grown = cv2.dilate(_fill(g1.shape, a.quad).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            found = ink1[grown].sum()
            assert found >= 0.5 * want * area(a.quad) / ((x1 - x0) * (y1 - y0)), \
                f"{name} {style}: {a.text!r} has ink {found:.1f} in its quad, the clean box {want:.1f}"
            match = _match(ink0, ink1, c.box, a.quad)
            assert match >= 0.4, f"{name} {style}: {a.text!r} is not where its quad is (correlation {match:.2f})"
            h = y1 - y0
            off = _match(ink0, ink1, c.box, tuple((x + h * 0.3, y + h * 0.4) for x, y in a.quad))
            assert off < 0.4, f"{name} {style}: a moved quad of {a.text!r} still matches ({off:.2f})"
            checked += 1
        assert checked >= 5


def test_same_spec_same_bytes_and_another_item_differs():
    for name, style in [("document.invoice", "photo"), ("chart.line", "scan"), ("scene.clock", "screen")]:
        _, a, spec = _aug(name, style, 0)
        fam = FAMILIES.get(name)()
        b = augment.apply(Spec.model_validate_json(spec.model_dump_json()), fam.render(spec))
        assert a.png == b.png and a.facts == b.facts and a.png.startswith(b"\x89PNG") and b"tEXt" not in a.png
        _, c, _ = _aug(name, style, 1)
        assert c.png != a.png


def test_text_height_is_read_from_the_quad(tmp_path):
    """legible_text measures a warped text by its quad, not by its (taller) bounding box."""
    out = tmp_path / "r"
    res = runner.invoke(app, ["generate", "--family", "document.invoice", "--knob", "augment=photo", "--n", "6",
                              "--seed", "2", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    item = next(it for it in RunStore(out).iter_items() if depends_on(it)[1])
    assert check_item(item) == [] and all(t.quad for t in item.facts.texts)
    needed = {(t.text, t.box) for t in depends_on(item)[1]}
    # the same boxes, but quads only 3 px tall: a line squashed by the warp is too small to read
    squashed = [t.model_copy(update={"quad": (t.quad[0], t.quad[1], (t.quad[1][0], t.quad[1][1] + 3),
                                              (t.quad[0][0], t.quad[0][1] + 3))}) if (t.text, t.box) in needed else t
                for t in item.facts.texts]
    assert quad_height(next(t for t in squashed if (t.text, t.box) in needed).quad) == pytest.approx(3, abs=0.01)
    bad = item.model_copy(update={"facts": item.facts.model_copy(update={"texts": squashed})})
    assert check_item(bad, names=["legible_text"]) == ["text_too_small"]


# ------------------------------------------------------------------ generate + check


@pytest.mark.parametrize("knobs", [["--knob", "augment=scan"],
                                   ["--knob", "document.invoice:augment=photo", "--knob", "chart.bar:augment=screen",
                                    "--knob", "scene.shapes:augment=photo"]])
def test_augmented_runs_of_every_domain_pass_check(tmp_path, knobs):
    out = tmp_path / "r"
    res = runner.invoke(app, ["generate", "--family", "document.invoice,chart.bar,scene.shapes", *knobs,
                              "--n", "6", "--seed", "4", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    items = list(RunStore(out).iter_items())
    assert {it.facts.domain for it in items} == {"document", "chart", "scene"}
    for it in items:
        assert it.spec.knobs["augment"] in ("scan", "photo", "screen")
        assert it.facts.extra["augment"]["style"] == it.spec.knobs["augment"]
        assert all(t.quad for t in it.facts.texts) and all(e.quad for e in it.facts.entities if e.box)
        size = Image.open(out / it.image.path).size
        assert size == (it.facts.width, it.facts.height)
    res = runner.invoke(app, ["check", str(out)])
    assert res.exit_code == 0, res.output
    assert "0 ill-posed item(s)" in res.output
    assert json.loads((out / "manifest.json").read_text())["config"]["knobs"]["chart.bar"]["augment"] in ("scan", "screen")
