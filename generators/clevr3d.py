"""3-D CLEVR-like scenes rendered by Blender's Cycles (scene.clevr3d); Facts read from the object-index pass."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from deltaprompts.errors import KnobError, LayoutError
from deltaprompts.generators import blender3d
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec

# CLEVR's eight colours (sRGB), shapes (a cone added), sizes (radius in Blender units) and materials.
PALETTE: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
}
SHAPES = ("sphere", "cube", "cylinder", "cone")
PLURALS = {"sphere": "spheres", "cube": "cubes", "cylinder": "cylinders", "cone": "cones"}
SIZES = {"small": 0.35, "large": 0.7}
MATERIALS = ("rubber", "metal")
REL_WORDS = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}
CAMERA = (7.36, -6.93, 4.96)  # CLEVR's camera position, jittered per scene; it looks at the origin
AREA_PX = 320 * 240  # min_pixels is given at this image area and scaled with the image's


def centre_height(shape: str, r: float) -> float:
    """Height of the object's bounding-box centre above the ground (cubes are r/sqrt(2) half-wide, as in CLEVR)."""
    return r / math.sqrt(2) if shape == "cube" else r


def _axes(cam: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The camera's right vector and its forward direction along the ground (both unit, z = 0)."""
    f = (target - cam)[:2]
    f = f / np.linalg.norm(f)
    return np.array([f[1], -f[0]]), f


def _place(rng: np.random.Generator, n: int, right: np.ndarray, fwd: np.ndarray, margin: float,
           min_dist: float) -> list[dict[str, Any]] | None:
    """n objects on the ground in [-3, 3]^2, CLEVR's rules: surfaces min_dist apart, and every pair at least
    `margin` apart along the camera's left-right and front-behind axes (so no relation is borderline)."""
    objs: list[dict[str, Any]] = []
    for _ in range(n):
        size = choice(rng, tuple(SIZES))
        r = SIZES[size]
        for _ in range(200):
            x, y = (float(v) for v in rng.uniform(-3.0, 3.0, 2))
            ok = True
            for o in objs:
                dx, dy = x - o["x"], y - o["y"]
                if math.hypot(dx, dy) - r - o["r"] < min_dist or abs(dx * right[0] + dy * right[1]) < margin \
                        or abs(dx * fwd[0] + dy * fwd[1]) < margin:
                    ok = False
                    break
            if ok:
                break
        else:
            return None
        shape = choice(rng, SHAPES)
        objs.append({"shape": shape, "color": choice(rng, tuple(PALETTE)), "material": choice(rng, MATERIALS),
                     "size": size, "r": r, "x": round(x, 4), "y": round(y, 4),
                     "z": round(centre_height(shape, r), 4), "rotation": round(float(rng.uniform(0, 360)), 2)})
    return objs


def _lights(rng: np.random.Generator, cam: np.ndarray, jitter: float) -> list[dict[str, Any]]:
    """A key sun to one side of the camera (it casts the shadows), a fill and a back area light, all jittered."""
    az = math.atan2(cam[1], cam[0])

    def at(d_az: float, elev: float, dist: float) -> list[float]:
        a, e = az + math.radians(d_az + jitter * rng.uniform(-15, 15)), math.radians(elev + jitter * rng.uniform(-8, 8))
        return [round(dist * math.cos(e) * math.cos(a), 3), round(dist * math.cos(e) * math.sin(a), 3),
                round(dist * math.sin(e), 3)]

    return [
        {"name": "key", "type": "SUN", "location": at(-55, 50, 10), "angle": 6.0,
         "energy": round(3.2 * (1 + 0.15 * jitter * rng.uniform(-1, 1)), 3)},
        {"name": "fill", "type": "AREA", "location": at(60, 35, 8), "size": 4.0,
         "energy": round(180 * (1 + 0.2 * jitter * rng.uniform(-1, 1)), 2)},
        {"name": "back", "type": "AREA", "location": at(180, 45, 8), "size": 3.0,
         "energy": round(150 * (1 + 0.2 * jitter * rng.uniform(-1, 1)), 2)},
    ]


@register
class Clevr3D(Generator):
    """CLEVR's world in 3-D: 3-10 spheres, cubes, cylinders and cones, rubber or metal, lit and shadowed.

    Facts: one entity `obj{i}` per object with attrs shape, color, size (small/large), material (rubber/metal),
    x, y, z (world position of its centre), rotation, cam_right and cam_depth (its centre along the camera's
    right vector and along the camera's forward direction on the ground: left/right and front/behind),
    image_x, image_y (the projected centre, px) and visible_pixels; `box` is the box of its visible pixels.
    Visibility is counted in Cycles' object-index pass, so occlusion is measured; a scene where an object
    shows fewer than min_pixels is refused (LayoutError) and drawn again.
    """

    name = "scene.clevr3d"
    domain = "scene"
    version = "1"
    description = "CLEVR-like 3-D scenes (spheres, cubes, cylinders, cones; rubber/metal) rendered by Blender Cycles."
    knobs = (
        Knob("width", "int", 320, "Image width in pixels.", lo=64, hi=1024, difficulty="lower is harder"),
        Knob("height", "int", 240, "Image height in pixels.", lo=48, hi=768, difficulty="lower is harder"),
        Knob("samples", "int", 16, "Cycles samples per pixel; fewer is faster and noisier.", lo=1, hi=1024,
             difficulty="lower is harder (noise)"),
        Knob("min_objects", "int", 3, "Fewest objects in a scene.", lo=1, hi=12, difficulty="higher is harder"),
        Knob("max_objects", "int", 10, "Most objects in a scene (each draws min..max).", lo=1, hi=12,
             difficulty="higher is harder"),
        Knob("min_pixels", "int", 100, "Visible pixels every object must show, at 320x240 (scaled with image "
             "area; CLEVR used 200 at 480x320); scenes below it are drawn again.", lo=1, hi=5000,
             difficulty="lower is harder (more occlusion)"),
        Knob("margin", "float", 0.4, "Least distance (Blender units) between any two objects along the camera's "
             "left-right and front-behind axes, so relations are never borderline.", lo=0.05, hi=1.0,
             difficulty="lower is harder"),
        Knob("min_dist", "float", 0.25, "Least gap between two objects' surfaces.", lo=0.0, hi=1.0,
             difficulty="lower is harder"),
        Knob("camera_jitter", "float", 0.5, "Uniform jitter of the camera position on each axis.", lo=0.0, hi=1.5,
             difficulty="higher is slightly harder"),
        Knob("light_jitter", "float", 1.0, "Jitter of the lights' directions and strengths (0 = fixed lights).",
             lo=0.0, hi=2.0, difficulty="higher is slightly harder"),
        Knob("denoise", "bool", False, "Denoise the render (OpenImageDenoise); bytes may then differ between CPUs.",
             difficulty="false is harder (noise)"),
        Knob("device", "choice", "auto", "Cycles device: a GPU when one is found (auto), or force cpu / gpu. "
             "CPU and GPU renders of one Spec differ in their noise.", choices=("auto", "cpu", "gpu"),
             difficulty="none"),
    )

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this family cannot render here (bpy missing, wrong Python), or None."""
        return blender3d.unavailable()

    def resolve_knobs(self, given: dict[str, Any]) -> dict[str, Any]:
        """All knob values, parsed; raises KnobError when min_objects exceeds max_objects."""
        kn = super().resolve_knobs(given)
        if kn["min_objects"] > kn["max_objects"]:
            raise KnobError(f"knobs of {self.name}: min_objects={kn['min_objects']} exceeds "
                            f"max_objects={kn['max_objects']}; allowed: min_objects <= max_objects")
        return kn

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        """Camera, lights and a CLEVR-rule object layout; returns the JSON render parameters.

        Raises KnobError when even min_objects objects cannot be placed under the margin rules."""
        kn = {k.name: k.default for k in self.knobs} | dict(knobs)
        w, h = int(kn["width"]), int(kn["height"])
        cam = np.array(CAMERA) + rng.uniform(-1, 1, 3) * float(kn["camera_jitter"])
        target = np.zeros(3)
        right, fwd = _axes(cam, target)
        lo, hi = int(kn["min_objects"]), int(kn["max_objects"])
        n = int(rng.integers(lo, hi + 1))
        objs = None
        for tries in range(200):
            objs = _place(rng, n, right, fwd, float(kn["margin"]), float(kn["min_dist"]))
            if objs is not None:
                break
            if tries % 20 == 19 and n > lo:
                n -= 1  # CLEVR restarts the scene; after 20 restarts, one object fewer
        if objs is None:
            raise KnobError(f"{self.name}: cannot place {lo} objects with margin={kn['margin']} and "
                            f"min_dist={kn['min_dist']} in the 6x6 floor; lower margin, min_dist or min_objects")
        return {"width": w, "height": h, "samples": int(kn["samples"]), "denoise": bool(kn["denoise"]),
                "device": kn["device"], "cycles_seed": int(rng.integers(0, 2**31 - 1)),
                "min_pixels": max(1, round(int(kn["min_pixels"]) * w * h / AREA_PX)),
                "margin": float(kn["margin"]), "ambient": round(float(rng.uniform(0.6, 0.9)), 3),
                "camera": {"location": [round(float(c), 4) for c in cam], "target": [0.0, 0.0, 0.0], "lens": 42.0},
                "lights": _lights(rng, cam, float(kn["light_jitter"])), "objects": objs}

    def render(self, spec: Spec) -> Rendered:
        """Render with Cycles; Facts from the object-index pass and Blender's camera.

        Raises LayoutError when an object shows fewer than min_pixels (or two objects come closer than the
        margin along a camera axis), RenderError when bpy is unavailable."""
        d = spec.data
        out = blender3d.render_scene(d, PALETTE)
        index, objs = out["index"], d["objects"]
        counts = np.bincount(index.ravel(), minlength=len(objs) + 1)
        loc = np.array(out["cam"]["location"])
        right = np.array(out["cam"]["right"])
        fwd = np.array(out["cam"]["forward"][:2] + [0.0])
        fwd /= np.linalg.norm(fwd)
        entities, pos = [], []
        for i, o in enumerate(objs):
            vis = int(counts[i + 1])
            if vis < d["min_pixels"]:
                raise LayoutError(f"object {i} ({o['size']} {o['color']} {o['material']} {o['shape']}) shows {vis} "
                                  f"visible pixels, fewer than min_pixels {d['min_pixels']}; the scene is drawn again")
            p = np.array([o["x"], o["y"], o["z"]]) - loc
            cr, cd = float(p @ right), float(p @ fwd)
            pos.append((cr, cd))
            ys, xs = np.nonzero(index == i + 1)
            px, py = out["pixel"][i]
            attrs = {"shape": o["shape"], "color": o["color"], "size": o["size"], "material": o["material"],
                     "x": o["x"], "y": o["y"], "z": o["z"], "rotation": o["rotation"],
                     "cam_right": round(cr, 4), "cam_depth": round(cd, 4),
                     "image_x": round(px, 2), "image_y": round(py, 2), "visible_pixels": vis}
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            entities.append(Entity(id=f"obj{i}", attrs=attrs, box=box))
        for i in range(len(pos)):
            for j in range(i):
                if min(abs(pos[i][0] - pos[j][0]), abs(pos[i][1] - pos[j][1])) < d["margin"] - 1e-6:
                    raise LayoutError(f"objects {j} and {i} lie closer than the margin {d['margin']} along a camera "
                                      "axis; the scene is drawn again")
        extra = {"camera": {**out["cam"], "lens": d["camera"]["lens"]}, "lights": d["lights"],
                 "device": out["device"], "samples": d["samples"], "min_pixels": d["min_pixels"],
                 "relation_margin": d["margin"], "palette": {k: "#%02x%02x%02x" % v for k, v in PALETTE.items()},
                 "box_kind": "box = box of the object's visible pixels in Blender's object-index pass; "
                             "visible_pixels = their count"}
        context = {"noun": "object", "nouns": "objects", "plural": PLURALS, "rel": REL_WORDS}
        facts = Facts(domain="scene", kind="clevr3d", width=d["width"], height=d["height"], entities=entities,
                      context=context, extra=extra)
        return Rendered(png=png_bytes(Image.fromarray(out["rgb"], "RGB")), facts=facts)
