"""Post-render realism (the `augment` knob): photo, scan and screen styles over a render's pixels, every box mapped.

`apply(spec, rendered)` runs after a family's render, for every family. Each image of the render
gets one geometric map (a 3x3 homography in pixel coordinates, origin at the top-left corner of the
image) and a chain of pixel effects, all drawn from the item's own random stream
(`rng.item_rng(seed, family, index, "augment", spec key, image, draw)`): the same Spec gives the same
bytes. Document pages each get their own draw; the images of a pair or a frame sequence (one
camera) share image 0's. Every Entity and TextSpan box goes through its image's map: `quad` holds the four mapped
corners and `box` their bounding box. A draw that would push a box that was inside the image out of
it is redrawn; the last draw moves no pixel, so nothing is ever cropped. Boxes in `Facts.extra`
(keys ending in `_box`, and EXTRA_BOXES) are mapped to their bounding boxes; `extra["augment"]`
records the style and each image's map, for any other coordinate a consumer reads there.

Pixel work uses OpenCV (the `augment` extra): `pip install 'deltaprompts[augment]'`.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from PIL import Image

from deltaprompts.errors import UserError
from deltaprompts.generators.base import Rendered, png_bytes
from deltaprompts.knobs import AUGMENT_STYLES
from deltaprompts.quads import Matrix, bounds, box_corners, inside, map_box
from deltaprompts.records import Box, Facts, Spec
from deltaprompts.rng import item_rng

STYLES = AUGMENT_STYLES
MAX_DRAWS = 4
"""Draws of a geometric map per image; the last one is the identity (no box can leave the image)."""
EXTRA_BOXES = ("visible_boxes", "whiskers", "bodies", "frame")
"""Keys of Facts.extra holding a box, or a dict of boxes, besides those whose name ends in `_box`."""


def style_of(spec: Spec) -> str:
    """The augment style a Spec asks for (`none` when its knobs do not name one)."""
    return str(spec.knobs.get("augment", "none"))


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise UserError("--knob augment needs OpenCV: pip install 'deltaprompts[augment]'") from None
    return cv2


def apply(spec: Spec, rendered: Rendered) -> Rendered:
    """The render `rendered` of `spec` in the spec's augment style: new PNG bytes and Facts whose
    boxes follow each image's map; `rendered` itself when the style is `none`.

    Raises UserError for an unknown style or when OpenCV is not installed."""
    style = style_of(spec)
    if style == "none":
        return rendered
    if style not in STYLES:
        raise UserError(f"knob 'augment': {style!r} is not valid; allowed: one of {', '.join(STYLES)}")
    cv2 = _cv2()
    facts = rendered.facts
    pngs = rendered.pngs
    sizes = list(facts.image_sizes) or [(facts.width, facts.height)]
    sizes += [Image.open(io.BytesIO(png)).size for png in pngs[len(sizes):]]
    # pages are separate sheets, each photographed or fed on its own; an image pair or a frame sequence
    # is one camera: its images share one draw, so a difference between them is the content's alone
    shared = facts.domain != "document" and len(set(sizes[:len(pngs)])) == 1
    draws: dict[int, int] = {}
    out, maps = [], []
    for n, png in enumerate(pngs):
        key = 0 if shared else n
        w, h = sizes[n]
        if key not in draws:
            boxes = [b for m in (range(len(pngs)) if shared else [n]) for b in _boxes_on(facts, m)
                     if inside(box_corners(b), w, h)]
            draws[key] = next(d for d in range(MAX_DRAWS) if d == MAX_DRAWS - 1 or all(
                inside(map_box(_draw_map(spec, style, key, d, w, h)[1], b), w, h) for b in boxes))
        rng, matrix = _draw_map(spec, style, key, draws[key], w, h)
        img = _PIXELS[style](cv2, rng, _decode(png), matrix, facts.domain)
        out.append(png_bytes(Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")))
        maps.append(matrix)
    return Rendered(png=out[0], facts=map_facts(facts, maps, style), more_png=tuple(out[1:]))


def _draw_map(spec: Spec, style: str, key: int, draw: int, w: int,
              h: int) -> tuple[np.random.Generator, list[list[float]]]:
    """Draw `draw` of image (group) `key`: its random stream, advanced past the map, and the map. The
    last draw is the identity, so no box can leave the image."""
    rng = item_rng(spec.seed, spec.family, spec.index, "augment", spec.key, key, draw)
    return rng, _geometry(style, rng, w, h, strength=1.0 if draw < MAX_DRAWS - 1 else 0.0)


# ------------------------------------------------------------------ boxes


def _boxes_on(facts: Facts, n: int) -> list[Box]:
    out = [t.box for t in facts.texts if t.image == n] + [e.box for e in facts.entities if e.image == n and e.box]
    return out + (list(_extra_boxes(facts.extra)) if n == 0 else [])


def _is_box(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(x, (int, float)) for x in v)


def _extra_boxes(extra: dict[str, Any]) -> list[Box]:
    out = []
    for key, v in extra.items():
        if (key.endswith("_box") or key in EXTRA_BOXES) and _is_box(v):
            out.append(tuple(v))
        elif key in EXTRA_BOXES and isinstance(v, dict):
            out += [tuple(b) for b in v.values() if _is_box(b)]
    return out  # type: ignore[return-value]


def _mapped_box(matrix: Matrix, box: Any) -> list[float]:
    x0, y0, x1, y1 = bounds(map_box(matrix, tuple(box)))
    return [round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)]


def map_facts(facts: Facts, maps: list[Matrix], style: str) -> Facts:
    """`facts` with every box mapped by the map of its image (`maps[box.image]`): Entity and TextSpan
    get `quad` (the mapped corners) and `box` (their bounds); extra's boxes (image 0) their bounds."""
    data = facts.model_dump()
    for rec in [*data["texts"], *data["entities"]]:
        if rec.get("box") is not None and rec.get("image", 0) < len(maps):
            quad = map_box(maps[rec.get("image", 0)], tuple(rec["box"]))
            rec["quad"], rec["box"] = quad, bounds(quad)
    extra = dict(data["extra"])
    for key, v in extra.items():
        if (key.endswith("_box") or key in EXTRA_BOXES) and _is_box(v):
            extra[key] = _mapped_box(maps[0], v)
        elif key in EXTRA_BOXES and isinstance(v, dict):
            extra[key] = {k: _mapped_box(maps[0], b) if _is_box(b) else b for k, b in v.items()}
    extra["augment"] = {"style": style, "maps": [[[round(float(x), 9) for x in row] for row in m] for m in maps]}
    data["extra"] = extra
    return Facts.model_validate(data)


# ------------------------------------------------------------------ geometry


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 map sending the four points `src` to `dst` (float64, h[2][2] = 1)."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        b += [u, v]
    return np.append(np.linalg.solve(np.array(a, float), np.array(b, float)), 1.0).reshape(3, 3)


def _geometry(style: str, rng: np.random.Generator, w: int, h: int, strength: float) -> list[list[float]]:
    """The style's map of an image of w x h pixels; `strength` 0 gives the identity."""
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    if style == "photo":  # a page photographed at a slant: each corner moves inward independently
        inset = rng.uniform(0.005, 0.035, size=(4, 2)) * [w, h] * strength
        dst = corners + inset * [[1, 1], [-1, 1], [-1, -1], [1, -1]]
    elif style == "scan":  # a page fed slightly askew: a rotation, scaled to fit, with a small shift
        angle = math.radians(rng.uniform(0.4, 2.0) * rng.choice([-1.0, 1.0]) * strength)
        c, s = math.cos(angle), math.sin(angle)
        scale = min(w / (w * c + h * abs(s)), h / (w * abs(s) + h * c))
        centre = np.array([w / 2, h / 2])
        slack = (1 - scale) * np.array([w, h]) / 2
        shift = rng.uniform(-0.8, 0.8, 2) * slack
        rot = np.array([[c, -s], [s, c]]) * scale
        dst = (corners - centre) @ rot.T + centre + shift
    else:  # screen: rescaled and moire'd in place; no pixel moves
        rng.uniform(size=2)  # keep the stream's shape independent of the style's geometry
        dst = corners
    return _homography(corners, dst).tolist()


def _warp(cv2: Any, img: np.ndarray, matrix: Matrix, border: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The image under `matrix` (pixel-corner coordinates) and the warped page mask (1 on the page)."""
    h, w = img.shape[:2]
    # OpenCV indexes pixel centres: move to corner coordinates, map, and back
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    to_idx = np.linalg.inv(shift) @ np.array(matrix) @ shift
    out = cv2.warpPerspective(img, to_idx, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), to_idx, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, mask[..., None]


# ------------------------------------------------------------------ pixel effects


def _decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return np.asarray(img.convert("RGB"), dtype=np.float32)


def _low_freq(cv2: Any, rng: np.random.Generator, w: int, h: int, cell: int) -> np.ndarray:
    """Smooth noise in [-1, 1] varying over about `cell` pixels."""
    grid = rng.uniform(-1, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _blur(cv2: Any, img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.05 else img


def _motion(cv2: Any, img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """A straight camera shake of `length` pixels at `angle` radians."""
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(k, (round(c * 16 - dx * 16), round(c * 16 - dy * 16)), (round(c * 16 + dx * 16), round(c * 16 + dy * 16)),
             1.0, 1, cv2.LINE_AA, 4)
    return cv2.filter2D(img, -1, k / k.sum()) if k.sum() > 0 else img


def _jpeg(cv2: Any, img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG compression artefacts: encoded at `quality` and decoded again (RGB float)."""
    bgr = np.clip(np.rint(img), 0, 255).astype(np.uint8)[..., ::-1]
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)


def _photo(cv2: Any, rng: np.random.Generator, img: np.ndarray, matrix: Matrix, domain: str) -> np.ndarray:
    h, w = img.shape[:2]
    # paper texture: fibres and uneven whiteness, on the page before it is photographed
    paper = 1 - 0.025 * (1 + _low_freq(cv2, rng, w, h, 48)) - rng.normal(0, 0.01, (h, w)).astype(np.float32)
    img = img * paper[..., None]
    page, mask = _warp(cv2, img, matrix, (0, 0, 0))
    table = np.array(rng.choice([[96, 78, 60], [62, 64, 70], [150, 140, 125], [40, 42, 46]]), np.float32)
    surface = table * (1 + 0.12 * _low_freq(cv2, rng, w, h, 24))[..., None]
    img = page + surface * (1 - mask)
    # lighting: a gradient across the frame, a vignette, a colour cast
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    span = abs(w * math.cos(a)) + abs(h * math.sin(a)) + 1e-9
    ramp = ((xx - w / 2) * math.cos(a) + (yy - h / 2) * math.sin(a)) / span
    vignette = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    light = 1 - rng.uniform(0.08, 0.22) * (ramp + 0.5) - rng.uniform(0.04, 0.12) * vignette * 2
    img = img * light[..., None] * np.array([1 + rng.uniform(0, 0.05), 1, 1 - rng.uniform(0, 0.06)], np.float32)
    if rng.uniform() < 0.75:  # the shadow of the phone or a hand, across one corner
        cx, cy = rng.choice([0, w]), rng.choice([0, h])
        reach = rng.uniform(0.25, 0.6) * (w + h) / 2
        dist = ((xx - cx) * math.copysign(1, w / 2 - cx) + (yy - cy) * math.copysign(1, h / 2 - cy)) / math.sqrt(2)
        soft = max(4.0, 0.04 * min(w, h))
        shade = 1 / (1 + np.exp((dist - reach) / soft))
        img = img * (1 - rng.uniform(0.15, 0.3) * shade)[..., None]
    img = _blur(cv2, img, rng.uniform(0.1, 0.45))  # defocus
    if rng.uniform() < 0.3:  # a shaking hand
        img = _motion(cv2, img, rng.uniform(1.0, 2.0), rng.uniform(0, math.pi))
    img = img + rng.normal(0, rng.uniform(1.5, 4.0), img.shape).astype(np.float32)  # sensor noise
    return _jpeg(cv2, img, int(rng.integers(65, 93)))


def _scan(cv2: Any, rng: np.random.Generator, img: np.ndarray, matrix: Matrix, domain: str) -> np.ndarray:
    h, w = img.shape[:2]
    # bleed-through: the other side of the sheet, mirrored and blurred, shows faintly through the paper
    back = _blur(cv2, img[:, ::-1].mean(axis=2), 1.5) / 255.0
    img = img * (1 - rng.uniform(0.06, 0.14) * (1 - back))[..., None]
    lid = float(rng.uniform(236, 252))
    img, mask = _warp(cv2, img, matrix, (lid, lid, lid))
    img = _blur(cv2, img, rng.uniform(0.3, 0.6))  # the scanner's optics
    if domain == "document" and rng.uniform() < 0.5:  # a black-and-white scan: colour would carry meaning elsewhere
        g = img.mean(axis=2)
        paper = float(np.percentile(g, 90))  # the sheet's white; ink is what is clearly darker (thin grey text too)
        img = np.repeat(np.where(g > paper - rng.uniform(55, 75), 255.0, 0.0).astype(np.float32)[..., None], 3, axis=2)
    else:  # a grey or colour scan: washed-out colour, more contrast, sensor grain
        gray = img.mean(axis=2, keepdims=True)
        img = gray + (img - gray) * rng.uniform(0.75, 0.95)
        img = (img - 128) * rng.uniform(1.05, 1.2) + 128 + rng.uniform(0, 12)
        img = img + rng.normal(0, rng.uniform(3, 8), img.shape[:2]).astype(np.float32)[..., None]
    dust = rng.uniform(size=(h, w)) < rng.uniform(0.0001, 0.0005)
    img[dust] = rng.uniform(0, 90)
    return img


def _screen(cv2: Any, rng: np.random.Generator, img: np.ndarray, matrix: Matrix, domain: str) -> np.ndarray:
    h, w = img.shape[:2]
    # a screenshot shared at another size: scaled down, then back up by a viewer
    f = rng.uniform(0.6, 0.85)
    small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    up = [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST][int(rng.integers(0, 3))]
    img = cv2.resize(small, (w, h), interpolation=up)
    # moire: the beat of the screen's pixel grid against the camera's, broad bent fringes offset per colour
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, period = rng.uniform(0, math.pi), rng.uniform(18, 60)
    bend = _low_freq(cv2, rng, w, h, 96) * rng.uniform(3, 10)
    wave = 2 * math.pi * ((xx * math.cos(a) + yy * math.sin(a)) / period + bend / period)
    amp = rng.uniform(0.025, 0.05)
    img = img * np.stack([1 + amp * np.cos(wave + phase) for phase in rng.uniform(0, 2 * math.pi, 3)], axis=2)
    img = (img - 128) * rng.uniform(0.92, 1.02) + 128 + rng.uniform(-6, 6)  # the display's own gamma
    return img


_PIXELS = {"photo": _photo, "scan": _scan, "screen": _screen}

