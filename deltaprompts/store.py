"""The run directory and its two writers.

`RunStore` owns a run's items: `items/shard-k.jsonl` with its typed counters (`ShardStats`) in
`items/shard-k.stats.json`, `images/`, and `manifest.json`; every stage that writes items writes
through it, so shard stats and manifest counts are built in one place. `ScoreStore` owns `scores/`
(deltas, samples, teacher-forced scores, meta). Both write atomically or append fsynced lines
(`JsonlLog`); readers never write.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from deltaprompts.divergence.records import Delta, ForcedScore, Sample
from deltaprompts.errors import DeltaError, UserError
from deltaprompts.files import read_text, text_lines
from deltaprompts.records import Item

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
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")  # then a rename: concurrent writers never see half a file
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def now() -> str:
    """The UTC time as manifests write it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


class ShardStats(BaseModel):
    """The counters of one shard (`items/shard-k.stats.json`), written after its items: a shard
    whose stats file exists is complete. The manifest's `counts` and `rejections` are their sum."""

    items: int = Field(ge=0)
    images: int = Field(ge=0, description="Distinct images the shard's items point to.")
    rejections: dict[str, int] = Field(default_factory=dict, description="Candidates dropped, by reason.")
    families: dict[str, int] = Field(default_factory=dict)
    question_families: dict[str, int] = Field(default_factory=dict)
    shard: int | None = None
    seconds: float | None = Field(None, description="Time spent making the shard (generate only).")

    @classmethod
    def of(cls, items: Sequence[Item], rejections: dict[str, int] | None = None, **extra: Any) -> ShardStats:
        """The counters of `items` (plus the rejections met while making them)."""
        return cls(**counts_of(items), rejections=dict(sorted((rejections or {}).items())), **extra)


def counts_of(items: Iterable[Item]) -> dict[str, Any]:
    """`items`, `images`, `families` and `question_families` of a list of items: the one place they are counted."""
    fams: Counter = Counter()
    qfams: Counter = Counter()
    images: set[str] = set()
    n = 0
    for it in items:
        n += 1
        fams[it.family] += 1
        qfams[it.question.question_family] += 1
        images.update(ref.path for ref in it.images)
    return {"items": n, "images": len(images), "families": dict(sorted(fams.items())),
            "question_families": dict(sorted(qfams.items()))}


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

    def is_run(self) -> bool:
        """Whether the directory holds a run (a manifest), complete or not."""
        return (self.root / MANIFEST).is_file()

    def is_complete(self) -> bool:
        """Whether the directory holds a complete run (its manifest says so)."""
        return self.is_run() and self.read_manifest().get("status") == "complete"

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

    def write_items(self, k: int, items: Sequence[Item], rejections: dict[str, int] | None = None,
                    **extra: Any) -> ShardStats:
        """Write shard k: its items, then its `ShardStats` (counted here from the items); both
        atomically, stats last. `extra` goes into the stats (shard, seconds). Returns the stats.

        Raises DeltaError, writing nothing, when an item would not read back."""
        return self.write_lines(k, [it.model_dump_json() for it in items], ShardStats.of(items, rejections, **extra))

    def write_lines(self, k: int, lines: Sequence[str], stats: ShardStats) -> ShardStats:
        """Write shard k from item JSON lines already made (they are validated) and their stats."""
        for n, line in enumerate(lines, 1):
            try:
                Item.model_validate_json(line)
            except ValidationError as e:
                x = e.errors()[0]
                raise DeltaError(f"refusing to write {self.shard_path(k)}: line {n} would not read back as an "
                                 f"item ({'.'.join(map(str, x['loc']))}: {x['msg']})") from None
        atomic_write(self.shard_path(k), "".join(line + "\n" for line in lines))
        atomic_write(self.stats_path(k), json.dumps(stats.model_dump(exclude_none=True), sort_keys=True))
        return stats

    def stats_path(self, k: int) -> Path:
        return self.shard_path(k).with_suffix(".stats.json")

    def shard_stats(self, k: int) -> ShardStats:
        """Shard k's counters; raises UserError when the file is not a stats record."""
        path = self.stats_path(k)
        try:
            return ShardStats.model_validate_json(read_text(path))
        except ValueError as e:
            raise UserError(f"{path}: not a shard stats record: {str(e).splitlines()[0]}") from None

    def n_shards(self) -> int:
        """How many shard files the run holds (shards are numbered from 0)."""
        return len(self.shard_files())

    def tally(self, n_shards: int | None = None) -> dict[str, Any]:
        """The manifest's `counts` (items, images, per family and question family) and `rejections`
        (by reason), summed over the stats of shards 0..n_shards-1 (default: every shard file)."""
        counts: Counter = Counter()
        rejections: Counter = Counter()
        fams: Counter = Counter()
        qfams: Counter = Counter()
        for k in range(self.n_shards() if n_shards is None else n_shards):
            s = self.shard_stats(k)
            counts["items"] += s.items
            counts["images"] += s.images
            rejections.update(s.rejections)
            fams.update(s.families)
            qfams.update(s.question_families)
        return {"counts": {"items": counts["items"], "images": counts["images"], "families": dict(sorted(fams.items())),
                           "question_families": dict(sorted(qfams.items()))},
                "rejections": dict(sorted(rejections.items()))}

    def finish(self, manifest: dict[str, Any], n_shards: int | None = None, **extra: Any) -> dict[str, Any]:
        """Sum the shard counters into `manifest`, mark it complete, write it and return it."""
        manifest = {**manifest, **self.tally(n_shards), "status": "complete", "finished": now(), **extra}
        self.write_manifest(manifest)
        return manifest

    def copy_images(self, items: Iterable[Item], source: Path | str) -> None:
        """Hard-link (or copy) the images of `items` from run `source` into this run; both paths confined."""
        for it in items:
            what = f"item {it.id}: image"
            for ref in it.images:
                link_or_copy(confined(source, ref.path, what), confined(self.root, ref.path, what))

    def write_run(self, items: Sequence[Item], source: Path | str, manifest: dict[str, Any], shard_size: int = 50,
                  rejections: dict[str, int] | None = None) -> dict[str, Any]:
        """Write `items` (drawn from run `source`, whose images are linked in) as this run's shards of
        `shard_size`, then the manifest from their counts; returns the manifest. Shard 0 carries
        `rejections`. The directory should be empty (write to a temporary one and rename for all-or-nothing)."""
        n_shards = max(1, -(-len(items) // shard_size))
        for k in range(n_shards):
            part = items[k * shard_size:(k + 1) * shard_size]
            self.copy_images(part, source)
            self.write_items(k, part, rejections if k == 0 else None)
        return self.finish(manifest, n_shards)

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


class JsonlLog:
    """An append-only JSONL file of records, safe against a kill: each append is flushed and
    fsynced, and a partial last line (a kill mid-write) is cut off when a writer opens the file
    again; a reader (`repair=False`) leaves it in place and counts its bytes in `torn`.
    Records are keyed by `key(record)`; the first record with a key wins, so nothing is duplicated."""

    def __init__(self, path: Path, model: type[BaseModel], key: Callable[[Any], Hashable], *, repair: bool = True):
        self.path, self.model, self.key, self.repair = Path(path), model, key, repair
        self.records: dict[Hashable, Any] = {}
        self.repaired = 0  # bytes of a partial last line cut off on open (a writer)
        self.torn = 0  # bytes of a partial last line left out and left in place (a reader: repair=False)
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a partial line after the last newline: written when the run was killed
            if self.repair:
                self.repaired = len(data) - cut
                with self.path.open("r+b") as f:
                    f.truncate(cut)
                    os.fsync(f.fileno())
            else:  # a reader never writes: the line may be one a running writer is still appending
                self.torn = len(data) - cut
            data = data[:cut]
        for n, line in enumerate(data.decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = self.model.model_validate_json(line)
            except ValueError as e:
                raise UserError(f"{self.path}:{n}: not a valid {self.model.__name__} record: "
                                f"{str(e).splitlines()[0]}; move the file away to start this stage over") from None
            self.records.setdefault(self.key(rec), rec)

    def append(self, records: Iterable[Any]) -> list[Any]:
        """Write the records whose key is new, flushed and fsynced; returns those written."""
        new = []
        for rec in records:
            k = self.key(rec)
            if k not in self.records:
                self.records[k] = rec
                new.append(rec)
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write("".join(rec.model_dump_json() + "\n" for rec in new))
                f.flush()
                os.fsync(f.fileno())
        return new

    def __contains__(self, key: Hashable) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)


class ScoreStore:
    """The `scores/` folder of a run: `deltas.jsonl` (one Delta per item), `samples-<role>.jsonl`
    (every completion), `forced.jsonl` (teacher-forced log-probs) and `meta.json` (models, k,
    sampling, metric, seeds).

    A reader (`ScoreStore(run)`) never writes: a torn last line (a score run killed mid-write, or
    one still writing) is left out and left in place, with a warning. The writer
    (`ScoreStore(run, writer=True)`, the score stage) cuts such a line off when it resumes and
    counts the bytes in `repaired`, which the stage reports."""

    DIR = "scores"

    def __init__(self, run_dir: Path | str, *, writer: bool = False):
        self.run = Path(run_dir)
        self.root = self.run / self.DIR
        self.writer = writer
        self._logs: dict[str, JsonlLog] = {}

    def _log(self, name: str, model: type[BaseModel], key: Callable[[Any], Hashable]) -> JsonlLog:
        if name not in self._logs:
            log = JsonlLog(self.root / name, model, key, repair=self.writer)
            if log.torn:
                warnings.warn(f"{log.path}: its last line is cut off ({log.torn} bytes: a score run killed mid-write, "
                              "or one still writing); reading the complete lines, leaving the file as it is "
                              "(`score --resume`-style reruns repair it)", stacklevel=3)
            self._logs[name] = log
        return self._logs[name]

    @property
    def deltas_path(self) -> Path:
        return self.root / "deltas.jsonl"

    @property
    def meta_path(self) -> Path:
        return self.root / "meta.json"

    def delta_log(self) -> JsonlLog:
        return self._log("deltas.jsonl", Delta, lambda d: d.item)

    @classmethod
    def samples_file(cls, role: str) -> str:
        """The samples file of `role`, relative to the run directory (for provenance lines)."""
        return f"{cls.DIR}/samples-{role}.jsonl"

    def sample_log(self, role: str) -> JsonlLog:
        return self._log(self.samples_file(role).split("/", 1)[1], Sample, lambda s: (s.item, s.index))

    def forced_log(self) -> JsonlLog:
        return self._log("forced.jsonl", ForcedScore, lambda f: (f.item, f.index))

    def has_deltas(self) -> bool:
        return self.deltas_path.exists()

    def deltas(self, *, required: bool = False) -> dict[str, Delta]:
        """Delta by item id; empty when the run was not scored, or UserError when `required`."""
        if not self.has_deltas():
            if required:
                raise UserError(f"{self.run} has no {self.DIR}/deltas.jsonl: run `deltaprompts score {self.run} ...` first")
            return {}
        return dict(self.delta_log().records)

    def samples(self, role: str) -> dict[tuple[str, int], Sample]:
        """Every stored sample of `role` by (item, index)."""
        return dict(self.sample_log(role).records)

    def meta(self) -> dict[str, Any]:
        """The score stage's meta.json, or {} when the run was not scored; UserError when malformed."""
        if not self.meta_path.exists():
            return {}
        try:
            return json.loads(read_text(self.meta_path))
        except json.JSONDecodeError as e:
            raise UserError(f"{self.meta_path} is not valid JSON: {e}") from None

    @property
    def repaired(self) -> int:
        """Bytes of torn last lines this writer cut off on opening its logs."""
        return sum(log.repaired for log in self._logs.values())

    def _need_writer(self) -> None:
        if not self.writer:
            raise DeltaError(f"{self.root}: opened for reading; open ScoreStore(run, writer=True) to write")

    def write_meta(self, meta: dict[str, Any]) -> None:
        self._need_writer()
        atomic_write(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def append_deltas(self, deltas: Iterable[Delta]) -> list[Delta]:
        self._need_writer()
        return self.delta_log().append(deltas)
