"""The seed stage: render a seed set over knob cells, or import an external one, as a run directory."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deltaprompts.pipeline.cells import (Cell, build_cell, cell_seed, draw_knobs, is_complete, knob_kinds,
                                         start_run, write_part)
from deltaprompts.pipeline.config import GeneratedSeed, SeedConfig, split_knobs, vary_spec
from deltaprompts.rng import derive_seed

Hook = Callable[[str], None]


def seed_cells(cfg: GeneratedSeed, random_seed: int) -> list[Cell]:
    """The cells of a generated seed set: per family, `cfg.cells` knob draws (one when nothing
    varies) sharing the family's share of `cfg.n` items. Raises UserError for unknown names."""
    from deltaprompts.generate import select_families

    fams = select_families(cfg.families, cfg.domains)
    fixed = split_knobs(fams, cfg.knobs)
    vary = vary_spec(fams, cfg.vary)
    images = math.ceil(cfg.n / cfg.questions_per_image)
    out = []
    for f_i, fam in enumerate(fams):
        fam_images = images // len(fams) + (f_i < images % len(fams))
        n_cells = min(cfg.cells if vary[fam] else 1, max(fam_images, 1))
        kinds = knob_kinds(fam)
        for c in range(n_cells):
            count = fam_images // n_cells + (c < fam_images % n_cells)
            if count == 0:
                continue
            rng = np.random.default_rng(derive_seed(random_seed, "seed-knobs", fam, c))
            out.append(Cell(id=f"seed-{len(out):03d}", family=fam, knobs=draw_knobs(rng, fixed[fam], vary[fam], kinds),
                            images=count, seed=cell_seed(random_seed, "seed", fam, c),
                            per_image=cfg.questions_per_image,
                            candidates=max(cfg.candidates_per_image, cfg.questions_per_image),
                            allow=list(cfg.question_families), mc_fraction=cfg.mc_fraction,
                            template_dirs=list(cfg.template_dirs), tags={"round": 0, "stage": "seed"}))
    return out


def run_cells(out: Path, cells: list[Cell], manifest: dict[str, Any], hook: Hook | None = None,
              transform: Callable[[Cell, list, Path], tuple[list, dict[str, int]]] | None = None) -> dict[str, Any]:
    """Build every cell under `out/cells/` and merge them into the run at `out` (shard k = cell k);
    `transform(cell, items, folder)` may replace a cell's items (the teacher's questions) and add
    rejection counts. Complete runs are returned as they are. Returns the run's manifest."""
    from deltaprompts.store import RunStore

    if is_complete(out):
        shutil.rmtree(out / "cells", ignore_errors=True)  # a kill may have cut the clean-up short
        return RunStore(out).read_manifest()
    start_run(out, manifest)
    store = RunStore(out)
    for k, cell in enumerate(cells):
        if store.shard_done(k):
            continue
        folder = out / "cells" / cell.id
        items, rejections = build_cell(cell, folder)
        if transform is not None:
            items, extra = transform(cell, items, folder)
            rejections = {**rejections, **{r: rejections.get(r, 0) + n for r, n in extra.items()}}
        write_part(out, k, items, folder, rejections)
        if hook:
            hook(f"cell:{cell.id}")
    result = store.finish(store.read_manifest(), len(cells))
    shutil.rmtree(out / "cells", ignore_errors=True)  # the merged run holds everything now
    return result


def seed_stage(root: Path, cfg: SeedConfig, random_seed: int, hook: Hook | None = None) -> dict[str, Any]:
    """Write the seed set as the run `root/seed` (idempotent, resumable); return its manifest.
    Raises UserError for unknown families or knobs, or an unreadable external set."""
    from deltaprompts.generate import versions

    out = Path(root) / "seed"
    if cfg.external is not None:
        from deltaprompts.pipeline.external import import_external

        return import_external(cfg.external, out)
    gen = cfg.generate
    if gen is None:  # parse_config guarantees one of the two
        raise ValueError("seed config has neither generate nor external")
    cells = seed_cells(gen, random_seed)
    manifest = {"command": "deltaprompts run (seed stage)", "seed": random_seed, "versions": versions(),
                "config": {"stage": "seed", **json.loads(gen.model_dump_json()),
                           "cells": [c.model_dump(mode="json") for c in cells]}}
    return with_tolerances(out, run_cells(out, cells, manifest, hook))


def with_tolerances(run: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a complete run, saying how its answers are scored: `tolerances` counts
    the items per tolerance source (printed, computed, axis, exact, unknown; docs/verifiers.md)
    and states the rule of the unknown ones. Written into the run once."""
    from deltaprompts.store import RunStore
    from deltaprompts.tolerances import summary

    if "tolerances" not in manifest and manifest.get("status") == "complete":
        store = RunStore(run)
        manifest = {**manifest, "tolerances": summary(it.question for it in store.iter_items())}
        store.write_manifest(manifest)
    return manifest
