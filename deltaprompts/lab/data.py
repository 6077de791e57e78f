"""Lab data: runs of our own families at low resolution, restricted to questions a tiny VLM can see."""

from __future__ import annotations

import functools
import hashlib
import shutil
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.store import RunStore

FAMILIES = ("scene.shapes", "scene.grid", "chart.bar")

# Small, clean renders: few big objects of few colours and shapes, plain backgrounds, no occlusion or
# rotation; bar charts with four bars and no value labels. The model sees them resized to 64-96 px.
KNOBS: dict[str, str] = {
    "scene.shapes:image_size": "128", "scene.shapes:n_objects": "4", "scene.shapes:occlusion": "0.0",
    "scene.shapes:rotate": "false", "scene.shapes:n_colors": "3", "scene.shapes:n_shapes": "3",
    "scene.shapes:distractor_similarity": "0.0", "scene.shapes:background": "plain", "scene.shapes:outline": "none",
    "scene.grid:image_size": "128", "scene.grid:grid": "3", "scene.grid:fill": "0.6", "scene.grid:n_colors": "3",
    "scene.grid:n_shapes": "3", "scene.grid:distractor_similarity": "0.0", "scene.grid:background": "plain",
    "scene.grid:outline": "none",
    "chart.bar:n_categories": "4", "chart.bar:value_labels": "off", "chart.bar:size": "small",
    "chart.bar:style": "plain", "chart.bar:renderer": "matplotlib",
}

# Lab-only question templates: `templates/lab/questions/` of the package, outside the folder a plain
# `deltaprompts generate` loads (`templates/questions/`); lab runs pass it as a template dir.
# chart/: questions answerable without reading any text (where the tallest / shortest / second-tallest
# bar stands). scene/: "captions", the colours / shapes of all objects in reading order, a dense
# curriculum signal for training only (not in QUESTION_FAMILIES; grid objects are drawn row by row,
# so z order is reading order).
CAPTION_FAMILIES = ("scene.caption_colors", "scene.caption_shapes", "scene.caption_colors_grid",
                    "scene.caption_shapes_grid")

# The question families of the lab (answers are short: a count, yes/no, a colour or a shape word).
QUESTION_FAMILIES = (
    "scene.count_shape", "scene.count_color", "scene.query_color", "scene.query_shape", "scene.exists",
    "scene.compare_color_counts", "scene.largest_color",
    "chart.bars_beside_max", "chart.bars_beside_min", "chart.bars_beside_second",
)


def template_dir() -> Path:
    """The folder of the lab's question templates (shipped in the package, not loaded by default)."""
    return Path(str(resources.files("deltaprompts.templates"))) / "lab" / "questions"


def templates_digest() -> str:
    """A short hash of the lab templates' paths and contents: a run made with other templates is not reused."""
    root = template_dir()
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.yaml")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return f"lab-templates-{h.hexdigest()[:12]}"


def _check_families(question_families: Sequence[str]) -> None:
    bad = [q for q in question_families if q not in QUESTION_FAMILIES + CAPTION_FAMILIES]
    if bad:
        raise UserError(f"question families {bad} are not lab families; allowed: "
                        f"{', '.join(QUESTION_FAMILIES + CAPTION_FAMILIES)}")


def make_run(out: Path | str, n: int, seed: int, *, question_families: Sequence[str] = QUESTION_FAMILIES,
             families: Sequence[str] = FAMILIES, questions_per_image: int = 8, overwrite: bool = False,
             reuse: bool = False, workers: int = 1) -> dict[str, Any]:
    """Write a run directory at `out` with about `n` items of the lab families and question families.

    Generates with the project's generate stage (the lab knobs and templates), asking
    `questions_per_image` questions per image, then keeps only the items of `question_families`
    (at most n). With `reuse`, a complete run already at `out` made with the same request is kept
    as it is. Returns the manifest. Raises UserError for unknown question families or a non-empty
    `out` (not reused) without `overwrite`.
    """
    from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs

    _check_families(question_families)
    out = Path(out)
    keep = set(question_families)
    request = {"question_families": sorted(keep), "requested": n, "families": list(families), "seed": seed,
               "questions_per_image": questions_per_image, "templates": templates_digest()}
    if reuse and RunStore(out).is_run():
        old = RunStore(out).read_manifest()
        if {k: old.get("lab", {}).get(k) for k in request} == request:
            return old
    if out.exists() and any(out.iterdir()) and not (overwrite or reuse):
        raise UserError(f"output directory {out} is not empty: choose a new one, or pass overwrite")
    fams = list(families)
    knobs = resolve_all_knobs(fams, {k: v for k, v in KNOBS.items() if k.split(":")[0] in fams})
    # how many generated questions land in the kept families: measured on a small first run
    raw = out.parent / f".{out.name}.raw"
    shutil.rmtree(raw, ignore_errors=True)
    want = max(n * 3, 60)
    items: list[Item] = []
    t0 = time.perf_counter()
    for _ in range(4):
        cfg = GenerateConfig(families=fams, n=want, seed=seed, knobs=knobs, questions_per_image=questions_per_image,
                             mc_fraction=0.0, template_dirs=[str(template_dir())], shard_size=100)
        generate(cfg, raw, workers=workers, overwrite=True, command=f"deltaprompts.lab.data.make_run(n={n}, seed={seed})")
        items = [it for it in RunStore(raw).iter_items() if it.question.question_family in keep]
        if len(items) >= n:
            break
        want = int(want * 1.3 * n / max(len(items), 1)) + 10
    manifest = RunStore(raw).read_manifest()
    items = items[:n]
    _write_subset(raw, out, items, manifest, {"lab": {**request, "seconds": round(time.perf_counter() - t0, 1)}})
    shutil.rmtree(raw, ignore_errors=True)
    return RunStore(out).read_manifest()


def _write_subset(src: Path, dst: Path, items: list[Item], manifest: dict[str, Any], extra: dict[str, Any]) -> None:
    """Write `items` of run `src` as a new run at `dst` (images linked or copied), whole or not at all."""
    tmp = dst.parent / f".{dst.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    # the source run's rejections are those met while generating these items: kept on shard 0
    RunStore(tmp).write_run(items, src, {**manifest, **extra}, shard_size=100, rejections=manifest.get("rejections"))
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)


# ------------------------------------------------------------------ tensors for training


def prompt_text(item: Item, fmt: str = "plain") -> str:
    """The question of an item in prompt format `fmt` (as score_run and the hf backend ask it)."""
    from deltaprompts.models.prompts import render_prompt

    return render_prompt(item.question, fmt)


class Encoder:
    """Turns items into token ids and pixels the way the model's processor and chat template do,
    once per item, so training steps only pad and stack. Loss is on answer tokens + end of turn."""

    def __init__(self, processor: Any, fmt: str = "plain"):
        self.processor, self.fmt = processor, fmt
        self.tok = processor.tokenizer
        self.image_token = processor.image_token
        self.n_image_tokens = processor.num_image_tokens if hasattr(processor, "num_image_tokens") else None
        self.eos = self.tok.eos_token

    def chat(self, turns: Sequence[tuple[str, str | None]]) -> tuple[str, list[tuple[int, int]]]:
        """The chat text of (question, answer) turns, the image in the first; returns the text and
        the character spans of the answers (each answer + end of turn). A last answer of None
        leaves the text at the generation prompt."""
        text, spans = "", []
        for k, (q, a) in enumerate(turns):
            content = ([{"type": "image"}] if k == 0 else []) + [{"type": "text", "text": q}]
            text += self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                       add_generation_prompt=True, tokenize=False)
            if a is None:
                break
            spans.append((len(text), len(text) + len(a) + len(self.eos)))
            text += a + self.eos + "\n"
        return text, spans

    def encode(self, turns: Sequence[tuple[str, str | None]], n_image_tokens: int) -> tuple[list[int], list[int]]:
        """Token ids and labels (-100 off the answers) of a chat; the image token is expanded.
        Turns are encoded one by one (cached): they meet at special tokens, so this equals
        encoding the whole text."""
        ids: list[int] = []
        labels: list[int] = []
        for k, (q, a) in enumerate(turns):
            i, lab = self._turn(q, a, k == 0, n_image_tokens)
            ids += i
            labels += lab
        return ids, labels

    @functools.lru_cache(maxsize=200_000)  # noqa: B019 - one Encoder per processor, kept for a training run
    def _turn(self, q: str, a: str | None, first: bool, n_image_tokens: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        content = ([{"type": "image"}] if first else []) + [{"type": "text", "text": q}]
        text = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                  tokenize=False)
        head = len(text)
        if a is not None:
            text += a + self.eos + "\n"
        shift = (n_image_tokens - 1) * len(self.image_token) if first else 0
        text = text.replace(self.image_token, self.image_token * n_image_tokens)
        enc = self.tok(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = enc["input_ids"]
        end = head + shift + (len(a) + len(self.eos) if a is not None else 0)
        labels = [t if a is not None and head + shift <= s and e <= end else -100
                  for t, (s, e) in zip(ids, enc["offset_mapping"])]
        return tuple(ids), tuple(labels)


def load_pixels(run_dir: Path | str, paths: Sequence[str], processor: Any) -> Any:
    """The processor's pixel values of each image path (relative to `run_dir`), stored as uint8
    [N, 3, H, W] (the resized image; normalise with `to_pixels`)."""
    import numpy as np
    import torch
    from PIL import Image

    ip = processor.image_processor
    out = []
    for p in paths:
        with Image.open(Path(run_dir) / p) as im:
            x = ip(images=[im.convert("RGB")], return_tensors="np")["pixel_values"][0]
        out.append(np.rint((x * np.asarray(ip.image_std)[:, None, None] + np.asarray(ip.image_mean)[:, None, None]) * 255))
    return torch.from_numpy(np.stack(out).clip(0, 255).astype(np.uint8))


def to_pixels(u8: Any, processor: Any) -> Any:
    """uint8 images from `load_pixels` back to the processor's normalised float pixel values."""
    import torch

    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return (u8.float() / 255.0 - mean) / std


MAX_BARS = 8  # bar charts with more bars get no bar labels


def _covered(box: Sequence[float], sx: float, sy: float, patch_size: int, g: int) -> list[tuple[int, float]]:
    """(patch index, overlap in pixels) of every patch a Facts box (image pixels) overlaps, at the
    model's resolution (`sx`, `sy` scale image pixels to it; `g` x `g` patches, row-major)."""
    x0, y0, x1, y1 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    out = []
    for r in range(max(0, int(y0 // patch_size)), min(g, int(y1 // patch_size) + 1)):
        for c in range(max(0, int(x0 // patch_size)), min(g, int(x1 // patch_size) + 1)):
            overlap = (max(0.0, min(x1, (c + 1) * patch_size) - max(x0, c * patch_size))
                       * max(0.0, min(y1, (r + 1) * patch_size) - max(y0, r * patch_size)))
            if overlap > 0:
                out.append((r * g + c, overlap))
    return out


def patch_targets(item: Item, image_size: int, patch_size: int, colors: Sequence[str],
                  shapes: Sequence[str]) -> Any:
    """Per-patch labels of an image from its Facts, as a long tensor [4, patches] (row-major), each
    patch labelled by what covers most of it (at least 15% of it), -100 where a row does not apply:

    - rows 0-1, scene images: the index in `colors` / `shapes` of the object's colour and shape,
      len(colors) / len(shapes) where no object does ("none"); -100 for an image that is not a scene
      or names an attribute outside the lists;
    - rows 2-3, bar charts (`chart.bar`, up to MAX_BARS bars): the bar's value rank (0 = tallest) and
      its position from the left (0 = leftmost), MAX_BARS where no bar does; -100 otherwise.
    """
    import torch

    g = image_size // patch_size
    out = torch.full((4, g * g), -100, dtype=torch.long)
    ents = [e for e in item.facts.entities if e.box]
    sx, sy = image_size / item.facts.width, image_size / item.facts.height
    least = 0.15 * patch_size * patch_size

    def paint(rows: tuple[int, int], labelled: Sequence[tuple[Any, tuple[int, int]]]) -> None:
        """Give each patch the two labels of the box covering most of it (at least `least`)."""
        best = [least] * (g * g)
        for e, (a, b) in labelled:
            for k, overlap in _covered(e.box, sx, sy, patch_size, g):
                if overlap > best[k]:
                    best[k] = overlap
                    out[rows[0], k], out[rows[1], k] = a, b

    if item.family.startswith("scene.") and all(e.attrs.get("color") in colors and e.attrs.get("shape") in shapes
                                                for e in ents):
        out[0], out[1] = len(colors), len(shapes)
        paint((0, 1), [(e, (colors.index(e.attrs["color"]), shapes.index(e.attrs["shape"]))) for e in ents])
    bars = [e for e in ents if isinstance(e.attrs.get("value"), (int, float))]
    if item.family == "chart.bar" and 0 < len(bars) <= MAX_BARS:
        out[2], out[3] = MAX_BARS, MAX_BARS
        rank = {e.id: r for r, e in enumerate(sorted(bars, key=lambda e: -float(e.attrs["value"])))}
        place = {e.id: r for r, e in enumerate(sorted(bars, key=lambda e: e.box[0]))}
        paint((2, 3), [(e, (rank[e.id], place[e.id])) for e in bars])
    return out


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-padded input_ids, attention_mask and labels of encoded chats."""
    import torch

    n = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    for r, (i, lab) in enumerate(rows):
        ids[r, :len(i)] = torch.tensor(i)
        labels[r, :len(lab)] = torch.tensor(lab)
        mask[r, :len(i)] = 1
    return ids, mask, labels
