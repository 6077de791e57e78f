"""Render items in cells (one family at one knob setting, through `generate`) and merge them into one run.

A cell is the unit of rendering and of resume: it is written by `deltaprompts.generate.generate`
into its own run folder, which a later call finishes (`--resume`) or skips (complete). From the
template questions of each image a cell keeps `per_image`, allowed and preferred question families
first. `merge` writes the cells' items as the shards of one run (images hard-linked), shard k for
cell k, each shard whole or not at all.
"""

from __future__ import annotations

import fnmatch
from contextvars import ContextVar
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deltaprompts.pipeline.config import LAB_TEMPLATES
from deltaprompts.records import Item, Scalar
from deltaprompts.rng import derive_seed
from deltaprompts.store import RunStore, now

GENERATE_EXECUTOR: ContextVar[str] = ContextVar("deltaprompts_generate_executor", default="local")
"""Where `build_cell` renders: "local", or "ray" inside `run_pipeline(executor=...)` (a Ray already initialised)."""


class Cell(BaseModel):
    """One family at one knob setting: `images` renders, `per_image` questions kept from each."""

    model_config = ConfigDict(extra="forbid")
    id: str
    family: str
    knobs: dict[str, Scalar] = Field(description="Given knob values (the rest take their defaults).")
    images: int = Field(gt=0)
    seed: int
    per_image: int = 1
    candidates: int = 3
    prefer: list[str] = Field(default_factory=list, description="Question families kept first.")
    allow: list[str] = Field(default_factory=list, description="Question family globs; empty: all.")
    mc_fraction: float = 0.0
    template_dirs: list[str] = Field(default_factory=list)
    tags: dict[str, Any] = Field(default_factory=dict, description="Added to every item's tags (arm, round).")


def template_dirs(dirs: Sequence[str]) -> list[str]:
    """Template folders with the lab token replaced by the lab's folder."""
    out = []
    for d in dirs:
        if d == LAB_TEMPLATES:
            from deltaprompts.lab.data import template_dir

            d = str(template_dir())
        out.append(d)
    return out


def draw_knobs(rng: np.random.Generator, fixed: dict[str, Scalar], vary: dict[str, list[Scalar]],
               kinds: dict[str, str]) -> dict[str, Scalar]:
    """Knob values of one cell: `fixed`, then each varied knob drawn (numeric: uniform in [lo, hi],
    integers for int knobs; others: one of the listed values)."""
    out = dict(fixed)
    for name in sorted(vary):
        values = vary[name]
        if kinds.get(name) == "int":
            out[name] = int(rng.integers(int(values[0]), int(values[1]) + 1))
        elif kinds.get(name) == "float":
            out[name] = round(float(rng.uniform(float(values[0]), float(values[1]))), 4)
        else:
            out[name] = values[int(rng.integers(0, len(values)))]
    return out


def knob_kinds(family: str) -> dict[str, str]:
    """Knob name -> type (int, float, bool, choice) of a family."""
    from deltaprompts.generators.base import FAMILIES

    return {k.name: k.type for k in FAMILIES.get(family).knobs}


def cell_seed(*parts: object) -> int:
    """A generate seed for a cell, from the run seed and the cell's place in the run."""
    return derive_seed(*parts) % 2**31


def _allowed(qfam: str, allow: Sequence[str]) -> bool:
    return not allow or any(fnmatch.fnmatchcase(qfam, g) for g in allow)


def build_cell(cell: Cell, folder: Path) -> tuple[list[Item], dict[str, int]]:
    """Render a cell into `folder` (resuming a partial one) and return its kept items and the
    rejection counts (generate's, plus `question_not_allowed` for images short of questions)."""
    from deltaprompts.generate import GenerateConfig, generate
    from deltaprompts.generators.base import FAMILIES

    knobs = FAMILIES.get(cell.family)().resolve_knobs(cell.knobs)
    cfg = GenerateConfig(families=[cell.family], n=cell.images * cell.candidates, seed=cell.seed,
                         knobs={cell.family: knobs}, questions_per_image=cell.candidates, mc_fraction=cell.mc_fraction,
                         shard_size=max(cell.images, 1), template_dirs=template_dirs(cell.template_dirs),
                         balance_ratio=None)
    store = RunStore(folder)
    if store.is_complete():
        manifest = store.read_manifest()
    else:
        manifest = generate(cfg, folder, resume=store.is_run(), overwrite=False, command=f"pipeline cell {cell.id}",
                            executor=GENERATE_EXECUTOR.get())
    by_image: dict[str, list[Item]] = {}
    for it in store.iter_items():
        by_image.setdefault(it.image.path, []).append(it)
    kept: list[Item] = []
    short = 0
    pref = {q: i for i, q in enumerate(cell.prefer)}
    for path in by_image:
        cands = [it for it in by_image[path] if _allowed(it.question.question_family, cell.allow)]
        cands.sort(key=lambda it: pref.get(it.question.question_family, len(pref)))  # stable: generate's order otherwise
        take = cands[:cell.per_image]
        short += cell.per_image - len(take)
        for it in take:
            it.tags.update(cell.tags, cell=cell.id)
            it.provenance.update(cell=cell.id)
            kept.append(it)
    rejections = dict(manifest.get("rejections", {}))
    if short:
        rejections["question_not_allowed"] = short
    return kept, rejections


def write_part(out: Path, k: int, items: Sequence[Item], source: Path, rejections: dict[str, int]) -> None:
    """Write shard k of the run at `out` from items whose images lie under `source` (skipped when done)."""
    store = RunStore(out)
    if store.shard_done(k):
        return
    store.copy_images(items, source)
    store.write_items(k, items, rejections)


def is_complete(folder: Path) -> bool:
    """Whether a run folder holds a complete run (its manifest says so)."""
    return RunStore(folder).is_complete()


def start_run(folder: Path, manifest: dict[str, Any]) -> None:
    """Write a merged run's first manifest (status running) unless it has one."""
    if not RunStore(folder).is_run():
        folder.mkdir(parents=True, exist_ok=True)
        RunStore(folder).write_manifest({**manifest, "status": "running", "started": now()})
