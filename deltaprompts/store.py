"""The run directory: manifest, sharded item files and images, all written atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.records import Item
from deltaprompts.files import read_text, text_lines

MANIFEST = "manifest.json"
MAX_ITEMS = 10_000_000
"""The most items one run (or one round's budget) may ask for: a larger number is surely a typo."""
_UMASK = os.umask(0)
os.umask(_UMASK)
ITEMS_DIR = "items"
IMAGES_DIR = "images"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` through a temporary file and a rename, so a reader (or a resumed
    run after a kill) sees either the old file, or the whole new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give what a plain open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_or_copy(src: Path, dst: Path) -> None:
    """Put `src` at `dst`: a hard link where the file system allows, else a copy.

    Raises UserError if `src` is missing."""
    if not src.is_file():
        raise UserError(f"image {src} is missing from the run")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def confined(root: Path | str, rel: str, what: str) -> Path:
    """`root / rel` resolved (symlinks followed), refused unless it lies inside `root`: a path read
    from a run or a data set must not reach outside it (`../`, an absolute path, a symlink out).

    Raises UserError naming `what` (e.g. "item 3f2a...: image") and the path."""
    base = Path(root).resolve()
    p = (base / rel).resolve()
    if p != base and base not in p.parents:
        raise UserError(f"{what} {rel!r} lies outside {root}; refusing to read it "
                        "(paths must be relative and stay inside their folder)")
    return p


class RunStore:
    """One run directory. Shard k of items lives in `items/shard-{k:05d}.jsonl` with its
    counters beside it in `items/shard-{k:05d}.stats.json`; a shard exists whole or not at all."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # -------------------------------------------------------------- lifecycle

    def prepare(self, *, resume: bool, overwrite: bool) -> dict[str, Any] | None:
        """Make the directory ready for a run; return the existing manifest when resuming.

        Raises UserError for a non-empty directory without --resume/--overwrite, or --resume
        where there is no run to resume.
        """
        if resume and overwrite:
            raise UserError("--resume and --overwrite exclude each other: pick one")
        if self.root.exists():  # a kill during an atomic write leaves only a temp file: not a run yet
            for tmp in self.root.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        exists = self.root.exists() and any(self.root.iterdir())
        if resume:
            if not (self.root / MANIFEST).exists():
                raise UserError(f"--resume: {self.root} has no {MANIFEST}; nothing to resume")
            return self.read_manifest()
        if exists and not overwrite:
            raise UserError(f"output directory {self.root} is not empty: pass --resume to finish the run in it, "
                            "or --overwrite to replace it")
        if exists:
            if not (self.root / MANIFEST).exists():
                raise UserError(f"--overwrite: {self.root} does not look like a deltaprompts run "
                                f"(no {MANIFEST}); refusing to delete it")
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        return None

    def read_manifest(self) -> dict[str, Any]:
        """The run's manifest; raises UserError if missing or malformed."""
        path = self.root / MANIFEST
        try:
            return json.loads(read_text(path))
        except FileNotFoundError:
            raise UserError(f"{self.root} is not a run directory: no {MANIFEST}") from None
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON: {e}") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically."""
        atomic_write(self.root / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # -------------------------------------------------------------- shards

    def shard_path(self, k: int) -> Path:
        return self.root / ITEMS_DIR / f"shard-{k:05d}.jsonl"

    def shard_done(self, k: int) -> bool:
        """Whether shard k was written completely (its stats file is written last)."""
        return self.shard_path(k).exists() and self.shard_path(k).with_suffix(".stats.json").exists()

    def write_shard(self, k: int, lines: list[str], stats: dict[str, Any]) -> None:
        """Write shard k's item lines, then its stats; both atomically, stats last.

        Raises DeltaError, writing nothing, when a line would not read back as an item."""
        for n, line in enumerate(lines, 1):
            try:
                Item.model_validate_json(line)
            except ValidationError as e:
                x = e.errors()[0]
                raise DeltaError(f"refusing to write {self.shard_path(k)}: line {n} would not read back as an "
                                 f"item ({'.'.join(map(str, x['loc']))}: {x['msg']})") from None
        atomic_write(self.shard_path(k), "".join(line + "\n" for line in lines))
        atomic_write(self.shard_path(k).with_suffix(".stats.json"), json.dumps(stats, sort_keys=True))

    def shard_stats(self, k: int) -> dict[str, Any]:
        return json.loads(self.shard_path(k).with_suffix(".stats.json").read_text())

    def tally(self, n_shards: int) -> dict[str, Any]:
        """The manifest's `counts` (items, images, per family and question family) and `rejections`
        (by reason), summed over the stats of shards 0..n_shards-1."""
        from collections import Counter

        counts: Counter = Counter()
        rejections: Counter = Counter()
        fams: Counter = Counter()
        qfams: Counter = Counter()
        for k in range(n_shards):
            s = self.shard_stats(k)
            counts["items"] += s["items"]
            counts["images"] += s["images"]
            rejections.update(s["rejections"])
            fams.update(s["families"])
            qfams.update(s["question_families"])
        return {"counts": {**counts, "families": dict(sorted(fams.items())),
                           "question_families": dict(sorted(qfams.items()))},
                "rejections": dict(sorted(rejections.items()))}

    def write_image(self, rel: str, png: bytes) -> None:
        """Write an image under the run directory unless an identical one is there already."""
        path = self.root / rel
        if not path.exists():
            atomic_write(path, png)

    # -------------------------------------------------------------- reading

    def shard_files(self) -> list[Path]:
        return sorted((self.root / ITEMS_DIR).glob("shard-*.jsonl"))

    def iter_items(self) -> Iterator[Item]:
        """Every item of the run, in shard order; raises UserError naming a malformed line."""
        for path in self.shard_files():
            for n, line in text_lines(path):
                if not line.strip():
                    continue
                try:
                    yield Item.model_validate_json(line)
                except ValueError as e:
                    raise UserError(f"{path}:{n}: not a valid item: {str(e).splitlines()[0]}") from None
