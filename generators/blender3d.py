"""Blender (bpy, Cycles) side of scene.clevr3d: build a scene from its Spec, render it, read the passes back."""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deltaprompts.errors import RenderError

INSTALL_HINT = "pip install 'deltaprompts[3d]' (bpy 5.0.1, Blender as a Python module; Python 3.11 only)"
_BPY: Any = None
_DEVICE: dict[str, str] = {}


def unavailable() -> str | None:
    """Why bpy cannot be used here (None when it can); found without importing it."""
    if sys.version_info[:2] != (3, 11):
        here = f"{sys.version_info[0]}.{sys.version_info[1]}"
        return f"bpy 5.0.1 is built for Python 3.11, this is {here}; {INSTALL_HINT}"
    try:
        found = importlib.util.find_spec("bpy") is not None
    except (ImportError, ValueError):  # a broken or blocked install
        found = False
    if not found:
        return f"bpy is not installed: {INSTALL_HINT}"
    return None


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send this process's fds 1 and 2 to /dev/null for a while: Blender prints render logs (and bpy's
    numpy-1 extension module a warning at import) straight to them, which would garble CLI output."""
    for f in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            f.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def load_bpy() -> Any:
    """Import bpy once per process (quietly); raises RenderError with the install hint when it cannot."""
    global _BPY
    if _BPY is None:
        why = unavailable()
        if why:
            raise RenderError(f"scene.clevr3d is unavailable: {why}")
        try:
            with quiet():
                import bpy
        except ImportError as e:
            raise RenderError(f"scene.clevr3d is unavailable: importing bpy failed ({e}); {INSTALL_HINT}") from None
        _BPY = bpy
    return _BPY


# ---------------------------------------------------------------- reading an uncompressed (multi-part) EXR

def _cstr(b: bytes, pos: int) -> tuple[str, int]:
    end = b.index(b"\0", pos)
    return b[pos:end].decode("latin-1"), end + 1


def read_exr(path: Path | str) -> dict[str, np.ndarray]:
    """The channels of an uncompressed scanline OpenEXR file (single- or multi-part), as float32 arrays
    (height, width), keyed by channel name ("ViewLayer.Object Index.X"). Raises RenderError otherwise."""
    b = Path(path).read_bytes()
    if b[:4] != b"\x76\x2f\x31\x01":
        raise RenderError(f"{path} is not an OpenEXR file")
    flags = struct.unpack_from("<I", b, 4)[0]
    multipart, pos = bool(flags & 0x1000), 8
    headers: list[dict[str, tuple[str, bytes]]] = []
    while True:
        head: dict[str, tuple[str, bytes]] = {}
        while b[pos] != 0:
            name, pos = _cstr(b, pos)
            kind, pos = _cstr(b, pos)
            size = struct.unpack_from("<i", b, pos)[0]
            head[name] = (kind, b[pos + 4:pos + 4 + size])
            pos += 4 + size
        pos += 1
        if not head:  # a multi-part file ends its headers with an empty one
            break
        headers.append(head)
        if not multipart:
            break
    parts = []
    for head in headers:
        if head["compression"][1][0] != 0:
            raise RenderError(f"{path}: compressed EXR (codec {head['compression'][1][0]}); "
                              "write it with exr_codec NONE")
        chans, raw, p = [], head["channels"][1], 0
        while raw[p] != 0:
            name, p = _cstr(raw, p)
            chans.append((name, struct.unpack_from("<i", raw, p)[0]))
            p += 16
        x0, y0, x1, y1 = struct.unpack("<4i", head["dataWindow"][1])
        parts.append((chans, x1 - x0 + 1, y1 - y0 + 1, y0))
    for _, _, h, _ in parts:  # the offset tables, one entry per scanline (uncompressed: one line a chunk)
        pos += 8 * h
    out: dict[str, np.ndarray] = {}
    for chans, w, h, _ in parts:
        for name, kind in chans:
            out[name] = np.zeros((h, w), np.float32)
    dtypes = {0: np.uint32, 1: np.float16, 2: np.float32}
    for _ in range(sum(h for _, _, h, _ in parts)):
        part = 0
        if multipart:
            part = struct.unpack_from("<i", b, pos)[0]
            pos += 4
        chans, w, _, y0 = parts[part]
        y, size = struct.unpack_from("<ii", b, pos)
        pos += 8
        line = pos
        for name, kind in chans:
            dt = np.dtype(dtypes[kind])
            out[name][y - y0] = np.frombuffer(b, dt, w, line).astype(np.float32)
            line += w * dt.itemsize
        pos += size
    return out


# ---------------------------------------------------------------- building and rendering a scene

def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _material(bpy: Any, name: str, rgb: tuple[float, float, float], metal: float, rough: float) -> Any:
    mat = bpy.data.materials.new(name)  # Blender 5 gives a new material its node tree (use_nodes is deprecated)
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*(_srgb_to_linear(c) for c in rgb), 1.0)
    bsdf.inputs["Metallic"].default_value = metal
    bsdf.inputs["Roughness"].default_value = rough
    return mat


def _reset(bpy: Any) -> None:
    """Remove every object and data-block a previous scene made (cheaper than reloading factory settings)."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.cameras,
                 bpy.data.worlds, bpy.data.images):
        for block in list(coll):
            if block.name != "Render Result":
                coll.remove(block)


def _mesh(bpy: Any, shape: str, r: float) -> Any:
    """One primitive of `shape` standing on the ground at the origin (moved later), flat caps, smooth sides."""
    ops = bpy.ops.mesh
    if shape == "sphere":
        ops.primitive_uv_sphere_add(segments=48, ring_count=24, radius=r, location=(0, 0, r))
    elif shape == "cube":
        ops.primitive_cube_add(size=2 * r / math.sqrt(2), location=(0, 0, r / math.sqrt(2)))
    elif shape == "cylinder":
        ops.primitive_cylinder_add(vertices=48, radius=r, depth=2 * r, location=(0, 0, r))
    else:  # cone
        ops.primitive_cone_add(vertices=48, radius1=r, radius2=0.0, depth=2 * r, location=(0, 0, r))
    obj = bpy.context.object
    if shape != "cube":
        mesh = obj.data
        for poly in mesh.polygons:
            poly.use_smooth = shape == "sphere" or abs(poly.normal.z) < 0.999
        caps = {v for poly in mesh.polygons if not poly.use_smooth for v in poly.vertices}
        for e in mesh.edges:  # keep the rim sharp: flat caps must not bend the side normals
            e.use_edge_sharp = e.vertices[0] in caps and e.vertices[1] in caps
    return obj


def _device(bpy: Any, want: str) -> str:
    """Set Cycles' compute device once per process: a GPU for "gpu"/"auto" when one is found, else the CPU."""
    if want not in _DEVICE:
        found = "CPU"
        if want in ("gpu", "auto"):
            prefs = bpy.context.preferences.addons["cycles"].preferences
            for kind in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
                with contextlib.suppress(TypeError, ValueError):
                    prefs.compute_device_type = kind
                    prefs.get_devices()
                    gpus = [d for d in prefs.devices if d.type == kind]
                    if gpus:
                        for d in prefs.devices:
                            d.use = d.type == kind
                        found = kind
                        break
            if found == "CPU" and want == "gpu":
                raise RenderError("device=gpu: Cycles finds no GPU here (tried OptiX, CUDA, HIP, oneAPI, Metal); "
                                  "use device=cpu or auto")
        _DEVICE[want] = found
    return _DEVICE[want]


def render_scene(d: dict[str, Any], palette: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """Render one scene (the Spec data of scene.clevr3d) in this process's Blender.

    Returns {"rgb": HxWx3 uint8, "index": HxW int object-index pass (0 = ground/background, i+1 = object i),
    "cam": {"location", "right", "forward", "matrix"} from Blender's camera, "pixel": per object the image
    position of its centre (world_to_camera_view), "device"}. Raises RenderError when Blender fails."""
    bpy = load_bpy()
    import mathutils
    from bpy_extras.object_utils import world_to_camera_view

    w, h = d["width"], d["height"]
    with quiet():
        _reset(bpy)
        sc = bpy.context.scene
        sc.render.engine = "CYCLES"
        device = _device(bpy, d["device"])
        sc.cycles.device = "CPU" if device == "CPU" else "GPU"
        cy = sc.cycles
        cy.samples, cy.seed, cy.use_animated_seed = d["samples"], d["cycles_seed"], False
        cy.use_adaptive_sampling, cy.use_denoising = False, bool(d["denoise"])
        cy.max_bounces, cy.diffuse_bounces, cy.glossy_bounces, cy.transparent_max_bounces = 4, 2, 2, 2
        cy.transmission_bounces, cy.volume_bounces = 0, 0
        cy.caustics_reflective = cy.caustics_refractive = False
        cy.sample_clamp_indirect = 5.0
        sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = w, h, 100
        threads = int(os.environ.get("DELTAPROMPTS_RENDER_THREADS", "0") or 0)  # set per worker by generate
        sc.render.threads_mode, sc.render.threads = ("FIXED", threads) if threads > 0 else ("AUTO", 1)
        sc.render.dither_intensity = 0.0
        sc.render.film_transparent = False
        sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
        sc.view_settings.exposure, sc.view_settings.gamma = 0.0, 1.0
        vl = sc.view_layers[0]
        vl.use_pass_object_index = True
        world = bpy.data.worlds.new("world")
        bg = world.node_tree.nodes["Background"]
        bg.inputs["Color"].default_value = (0.18, 0.18, 0.18, 1.0)
        bg.inputs["Strength"].default_value = d["ambient"]
        sc.world = world
        bpy.ops.mesh.primitive_plane_add(size=60, location=(0, 0, 0))
        ground = bpy.context.object
        ground.data.materials.append(_material(bpy, "ground", (0.55, 0.55, 0.55), 0.0, 0.9))
        mats = {}
        for i, o in enumerate(d["objects"]):
            key = (o["color"], o["material"])
            if key not in mats:
                metal = o["material"] == "metal"
                rgb = tuple(c / 255 for c in palette[o["color"]])
                mats[key] = _material(bpy, f"{key[0]}-{key[1]}", rgb, 1.0 if metal else 0.0, 0.25 if metal else 0.85)
            obj = _mesh(bpy, o["shape"], o["r"])
            obj.location.x, obj.location.y = o["x"], o["y"]
            obj.rotation_euler.z = math.radians(o["rotation"])
            obj.pass_index = i + 1
            obj.data.materials.append(mats[key])
        cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
        sc.collection.objects.link(cam)
        cam.data.lens = d["camera"]["lens"]
        cam.location = d["camera"]["location"]
        look = mathutils.Vector(d["camera"]["target"]) - cam.location
        cam.rotation_euler = look.to_track_quat("-Z", "Y").to_euler()
        sc.camera = cam
        for li in d["lights"]:
            light = bpy.data.lights.new(li["name"], li["type"])
            light.energy = li["energy"]
            if li["type"] == "SUN":
                light.angle = math.radians(li["angle"])
            else:
                light.size = li["size"]
            lo = bpy.data.objects.new(li["name"], light)
            sc.collection.objects.link(lo)
            lo.location = li["location"]
            lo.rotation_euler = (mathutils.Vector((0, 0, 0)) - lo.location).to_track_quat("-Z", "Y").to_euler()
        bpy.context.view_layer.update()
        with tempfile.TemporaryDirectory(prefix="clevr3d-") as tmp:
            s = sc.render.image_settings
            s.media_type, s.file_format = "MULTI_LAYER_IMAGE", "OPEN_EXR_MULTILAYER"
            s.exr_codec, s.color_depth = "NONE", "32"
            sc.render.filepath = str(Path(tmp) / "passes.exr")
            bpy.ops.render.render(write_still=True)
            s.media_type, s.file_format, s.color_mode, s.color_depth = "IMAGE", "PNG", "RGB", "8"
            bpy.data.images["Render Result"].save_render(filepath=str(Path(tmp) / "rgb.png"))
            chans = read_exr(Path(tmp) / "passes.exr")
            with Image.open(Path(tmp) / "rgb.png") as im:
                rgb = np.asarray(im.convert("RGB")).copy()
    index_key = next((k for k in chans if k.endswith("Object Index.X") or k.endswith("IndexOB.X")), None)
    if index_key is None:
        raise RenderError(f"Blender wrote no object-index pass (channels: {sorted(chans)})")
    index = np.rint(chans[index_key]).astype(np.int32)
    m = cam.matrix_world
    pixel = []
    for o in d["objects"]:
        v = world_to_camera_view(sc, cam, mathutils.Vector((o["x"], o["y"], o["z"])))
        pixel.append((float(v.x) * w, (1.0 - float(v.y)) * h))
    right = [float(m[k][0]) for k in range(3)]
    forward = [-float(m[k][2]) for k in range(3)]
    return {"rgb": rgb, "index": index, "pixel": pixel, "device": device,
            "cam": {"location": [float(c) for c in cam.location], "right": right, "forward": forward}}
