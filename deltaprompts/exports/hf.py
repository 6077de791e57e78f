"""Hugging Face `datasets` exports: parquet shards (data/<split>-NNNNN-of-NNNNN.parquet) and `save_to_disk`."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.exports import ExportOptions, answer_target, export_format
from deltaprompts.exports.targets import Target
from deltaprompts.records import Item
from deltaprompts.store import atomic_write, confined

#: the head of a dataset card telling `datasets.load_dataset(folder)` where each split's shards lie
CARD_CONFIGS = """---
configs:
- config_name: default
  data_files:
  - split: {split}
    path: data/{split}-*.parquet
---
"""
_CARD = CARD_CONFIGS + """# {name}

Exported by deltaprompts from `{source}` ({items} items, split `{split}`, prompt format `{fmt}`).
Columns: id, image, more_images (the later pages or frames of a multi-image item, in order; empty
for one image), question, answer, answer_type, options (JSON or null), tolerance (relative) and
abs_tol (absolute; null: the verifiers' default), tolerance_source (printed, computed, axis, exact,
unknown or template), locale (the locale a document prints its numbers in, e.g. de_DE; null for
English), family, question_family, tags (JSON), delta (the item's teacher-student
divergence, or null if unscored). Score answers with
`deltaprompts.verifiers.score_answer(prediction, answer, answer_type, options, rel_tol=tolerance, abs_tol=abs_tol)`
(leave out a null one; exact types such as count take neither).

```python
import datasets
ds = datasets.load_dataset("parquet", data_dir="data")  # or datasets.load_dataset("<this folder>")
```
"""


def datasets_module() -> Any:
    """The `datasets` package; raises UserError saying how to install it when it is missing."""
    try:
        import datasets
    except ImportError:
        # no square brackets (the extra's pip spelling): the CLI prints errors as rich markup
        raise UserError("this export needs the `datasets` package: pip install datasets "
                        "(it is the deltaprompts 'export' extra)") from None
    return datasets


def features() -> Any:
    """The column types of an exported dataset (the image as `datasets.Image()`)."""
    ds = datasets_module()
    v = ds.Value
    return ds.Features({
        "id": v("string"), "image": ds.Image(), "question": v("string"), "answer": v("string"),
        "answer_type": v("string"), "options": v("string"), "tolerance": v("float64"), "abs_tol": v("float64"),
        "tolerance_source": v("string"), "family": v("string"),
        "question_family": v("string"), "tags": v("string"), "delta": v("float64"),
        "target": v("string"), "target_source": v("string"), "target_model": v("string"),
        "target_sample": v("int64"), "target_score": v("float64"), "locale": v("string"),
        "more_images": [ds.Image()],
    })


def _row_targets(item: Item, prompt_format: str, targets: dict[str, list[Target]]) -> list[Target]:
    """The teacher targets of an item, or its answer shaped by the prompt format (as it is for
    `thinking`, which has no answer shape of its own: an eval export keeps the answer column)."""
    if targets:
        return targets[item.id]
    return [Target(text=item.question.answer if prompt_format == "thinking" else answer_target(
        item.question.answer, prompt_format), source="answer")]


def write_parquet_shards(items: list[Item], run_dir: Path, deltas: dict[str, Any], prompt_format: str, out: Path,
                         split: str, shard_rows: int, targets: dict[str, list[Target]] | None = None) -> list[str]:
    """Write the items as parquet shards under out/data (image bytes embedded), one shard in
    memory at a time, one row per training target (an item with several teacher responses gives
    several rows, ids `<item>#<sample>`); return the paths written, relative to `out`."""
    from deltaprompts.exports import row

    def rows_of(it: Item) -> list[dict[str, Any]]:
        tgts = _row_targets(it, prompt_format, targets or {})
        out_rows = []
        for t in tgts:
            r = row(it, deltas, prompt_format, t)
            if len(tgts) > 1:
                r["id"] = f"{it.id}#{t.sample}"
            out_rows.append(r)
        return out_rows

    return write_rows(items, run_dir, out, split, shard_rows, features(), rows_of)


def write_rows(items: list[Item], run_dir: Path, out: Path, split: str, shard_rows: int, feats: Any,
               rows_of: Callable[[Item], list[dict[str, Any]]]) -> list[str]:
    """Parquet shards under out/data of the rows `rows_of` makes per item (each with the item's image
    bytes embedded as `image`), `shard_rows` items per shard, one shard in memory at a time; return
    the paths written, relative to `out`. Raises UserError for a missing image."""
    ds = datasets_module()
    cell = {"bytes": ds.Value("binary"), "path": ds.Value("string")}
    raw = ds.Features({**feats, "image": cell, "more_images": [cell]})
    n = max(1, math.ceil(len(items) / shard_rows))
    files = []
    for k in range(n):
        rows = []
        for it in items[k * shard_rows:(k + 1) * shard_rows]:
            image, *more = image_cells(run_dir, it)
            rows += [{**r, "image": image, "more_images": more} for r in rows_of(it)]
        rel = f"data/{split}-{k:05d}-of-{n:05d}.parquet"
        (out / "data").mkdir(parents=True, exist_ok=True)
        # built as a plain {bytes, path} struct, then cast: datasets.Image would drop the bytes of any
        # row whose relative path happens to name a file in the working directory (export run from `cd RUN`)
        ds.Dataset.from_list(rows, features=raw).cast(feats).to_parquet(str(out / rel))
        files.append(rel)
    return files


def image_cells(run_dir: Path, item: Item) -> list[dict[str, Any]]:
    """The item's images as `datasets.Image` cells ({bytes, path}), in order; raises UserError for a
    missing one."""
    cells = []
    for ref in item.images:
        path = confined(run_dir, ref.path, f"item {item.id}: image")
        if not path.is_file():
            raise UserError(f"item {item.id}: image {path} is missing from the run")
        cells.append({"bytes": path.read_bytes(), "path": ref.path})
    return cells


def write_card(out: Path, split: str, source: Path, items: int, prompt_format: str) -> str:
    """A README.md whose `configs` block tells `datasets.load_dataset(out)` where each split lies."""
    atomic_write(out / "README.md", _CARD.format(split=split, name=source.name, source=source, items=items,
                                                 fmt=prompt_format))
    return "README.md"


def write_hf(items: list[Item], run_dir: Path, deltas: dict[str, Any], prompt_format: str, out: Path, split: str,
             shard_rows: int, *, disk: bool, targets: dict[str, list[Target]] | None = None) -> list[str]:
    """Parquet shards and a dataset card, plus (with `disk`) `DatasetDict.save_to_disk` in out/arrow
    (load it with `datasets.load_from_disk`); return the files written, relative to `out`."""
    files = write_parquet_shards(items, run_dir, deltas, prompt_format, out, split, shard_rows, targets)
    files.append(write_card(out, split, run_dir, len(items), prompt_format))
    if disk:
        ds = datasets_module()
        cache = out / ".cache"
        was_enabled = ds.is_progress_bar_enabled()
        ds.disable_progress_bars()  # progress is the CLI's to show; datasets would print a bar per step
        try:
            # built from the shards (streamed through an arrow cache), so all images are never in memory at once
            table = ds.Dataset.from_parquet([str(out / f) for f in files if f.endswith(".parquet")],
                                            features=features(), cache_dir=str(cache))
            ds.DatasetDict({split: table}).save_to_disk(str(out / "arrow"))
            del table
        finally:
            if was_enabled:
                ds.enable_progress_bars()
            shutil.rmtree(cache, ignore_errors=True)
        files += sorted(str(p.relative_to(out)) for p in (out / "arrow").rglob("*") if p.is_file())
    return files


@export_format("hf")
def export_hf(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `hf` format: parquet shards, a dataset card and `save_to_disk` in out/arrow."""
    return write_hf(items, options.run_dir, deltas, options.prompt_format, out, options.split, options.shard_rows,
                    disk=True, targets=options.targets)


@export_format("parquet")
def export_parquet(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `parquet` format: the parquet shards and the dataset card alone."""
    return write_hf(items, options.run_dir, deltas, options.prompt_format, out, options.split, options.shard_rows,
                    disk=False, targets=options.targets)
