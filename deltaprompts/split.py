"""A decontaminated train/eval split: no eval item shares a Spec, a near-identical image or question with train."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.review_log import rejected
from deltaprompts.rng import stable_int
from deltaprompts.store import RunStore, atomic_write, confined

SPLIT_FILE = "split.json"
SPLITS = ("train", "eval", "all")
REASONS = ("spec", "image", "question")
"""Why an eval item left eval, checked in this order: it shares a Spec key with a train item, its
image is near-identical to a train image, or its question (with its answer) nearly repeats one."""

THUMB = 32  # side of the grey thumbnail behind both the hash and the confirming comparison


class SplitConfig(BaseModel):
    """How `split_run` splits and what it counts as contamination; stored in split.json."""

    model_config = ConfigDict(extra="forbid")
    eval_fraction: float = Field(0.1, gt=0.0, lt=1.0, description="Share of units drawn for eval (before the checks).")
    seed: int = 0
    unit: Literal["spec", "item"] = Field(
        "spec", description="What the hash draws: 'spec' keeps all questions about one image on one side; "
        "'item' draws each item by its id (items of one Spec then meet the spec check).")
    image_bits: int = Field(4, ge=0, le=32, description="Most bits two near-identical 64-bit pHashes differ in.")
    image_confirm: float | None = Field(
        6.0, ge=0.0, description="Also require the 99th percentile of the grey-level difference of the two 32x32 "
        "thumbnails to be at most this (0-255); None trusts the hash alone. Templated documents share "
        "a layout, so distinct invoices can be 2 bits apart in a 64-bit hash; this check tells them apart.")
    jaccard: float = Field(0.9, gt=0.0, le=1.0, description="Token Jaccard from which questions are near-identical.")
    same_answer: bool = Field(
        True, description="Questions count as near-identical only with the same (normalised) answer. Templated "
        "phrasings repeat across images by design; without this every parameterless phrasing leaves eval.")
    on_conflict: Literal["move", "drop"] = Field("move", description="Move a conflicting eval item to train, or drop.")


class SplitResult(BaseModel):
    """What `split_run` decided: the ids of each side and why items left eval (split.json)."""

    config: SplitConfig
    counts: dict[str, int]
    drawn_eval: int = Field(description="Items the hash drew for eval, before decontamination.")
    left_eval: dict[str, int] = Field(description="Items that left eval (moved or dropped), by reason.")
    conflicts: list[dict[str, str]] = Field(description="One line per item that left eval: item, reason, train item.")
    train: list[str]
    eval: list[str]
    dropped: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list, description="Items left out: rejected in review (review.jsonl).")

    def summary(self) -> str:
        """A few lines for the terminal."""
        c = self.counts
        verb = "moved to train" if self.config.on_conflict == "move" else "dropped"
        left = ", ".join(f"{r}={self.left_eval.get(r, 0)}" for r in REASONS)
        return (f"{c['items']} items: train {c['train']}, eval {c['eval']} ({c['eval'] / max(c['items'], 1):.1%}; "
                f"target {self.config.eval_fraction:.1%})" + (f", dropped {c['dropped']}" if c["dropped"] else "")
                + f"\ndrawn for eval {self.drawn_eval}; {verb} for sharing with train: {left}"
                + (f"\nleft out {len(self.rejected)} items rejected in review" if self.rejected else ""))


# ------------------------------------------------------------------ near-duplicate keys


def normalize_text(text: str) -> str:
    """Lower case, NFKC, punctuation to spaces, whitespace collapsed: the form questions are compared in."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def image_signature(path: Path) -> tuple[int, np.ndarray]:
    """(64-bit pHash, 32x32 grey thumbnail) of an image file; raises UserError if it cannot be read.

    The pHash keeps the signs of the 8x8 lowest DCT frequencies of the thumbnail against their
    median (DC excluded): robust to re-encoding and rescaling, unlike pixel hashes.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float64)
    except (OSError, UnidentifiedImageError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    k = np.arange(THUMB)
    dct = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * THUMB))
    low = (dct @ grey @ dct.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2), grey.astype(np.uint8)


class _ImageIndex:
    """Images within `bits` Hamming distance by a multi-index: split the 64 bits into bits+1 blocks;
    two hashes that close agree exactly on at least one block (pigeonhole), so only hashes sharing
    a block are compared."""

    def __init__(self, bits: int, confirm: float | None, sigs: dict[str, tuple[int, np.ndarray]]):
        self.bits, self.confirm, self.sigs = bits, confirm, sigs
        self.blocks = [(int(b[0]), int(b[-1]) + 1) for b in np.array_split(np.arange(64), bits + 1)]
        self.table: dict[tuple[int, int], list[str]] = defaultdict(list)
        self.members: set[str] = set()

    def _keys(self, h: int) -> Iterable[tuple[int, int]]:
        for n, (lo, hi) in enumerate(self.blocks):
            yield n, (h >> (64 - hi)) & ((1 << (hi - lo)) - 1)

    def add(self, image: str) -> None:
        if image not in self.members:
            self.members.add(image)
            for key in self._keys(self.sigs[image][0]):
                self.table[key].append(image)

    def match(self, image: str) -> str | None:
        """An indexed image near-identical to `image` (itself counts), or None."""
        if image in self.members:
            return image
        h, thumb = self.sigs[image]
        for key in self._keys(h):
            for other in self.table.get(key, ()):
                oh, othumb = self.sigs[other]
                if (h ^ oh).bit_count() > self.bits:
                    continue
                diff = np.abs(thumb.astype(np.int16) - othumb.astype(np.int16))
                if self.confirm is None or float(np.percentile(diff, 99)) <= self.confirm:
                    return other
        return None


class _QuestionIndex:
    """Questions with equal normalised text, or token Jaccard >= t, found by prefix filtering: with
    tokens in one global order, two sets that similar share a token among their first
    |x| - ceil(t|x|) + 1 tokens, so only sets sharing a prefix token are compared."""

    def __init__(self, t: float, order: dict[str, int]):
        self.t, self.order = t, order
        self.exact: dict[str, str] = {}
        self.prefix: dict[tuple[str, str], list[tuple[str, frozenset[str]]]] = defaultdict(list)

    def _prefix(self, tokens: frozenset[str]) -> list[str]:
        ranked = sorted(tokens, key=lambda w: (self.order.get(w, 0), w))
        return ranked[: len(ranked) - math.ceil(self.t * len(ranked) - 1e-9) + 1]

    def add(self, item: str, group: str, text: str) -> None:
        self.exact.setdefault(f"{group}\x00{text}", item)
        tokens = frozenset(text.split())
        for w in self._prefix(tokens):
            self.prefix[(group, w)].append((item, tokens))

    def match(self, group: str, text: str) -> str | None:
        if f"{group}\x00{text}" in self.exact:
            return self.exact[f"{group}\x00{text}"]
        tokens = frozenset(text.split())
        if not tokens:
            return None
        for w in self._prefix(tokens):
            for other, o in self.prefix.get((group, w), ()):
                if len(tokens & o) / len(tokens | o) >= self.t - 1e-12:
                    return other
        return None


# ------------------------------------------------------------------ the split


def _draw(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, key): the same unit lands on the same side in every run."""
    return stable_int(f"{seed}|{key}", 8, "big") / 2**64


def split_items(items: list[Item], root: Path, cfg: SplitConfig) -> SplitResult:
    """Split `items` (images under `root`) by `cfg`; see split_run. Raises UserError for an unreadable image."""
    unit = {it.id: (it.spec.key if cfg.unit == "spec" else it.id) for it in items}
    by_id = {it.id: it for it in items}
    # a unit goes to eval when its hash of (seed, unit) falls below the fraction: independent of item
    # order and of other units, so appending items never moves earlier ones. A small run can draw all
    # its units on one side: then the unit of the lowest (highest) hash crosses, leaving both non-empty.
    draw = {u: _draw(u, cfg.seed) for u in set(unit.values())}
    units = sorted(draw, key=lambda u: (draw[u], u))
    chosen = {u for u in units if draw[u] < cfg.eval_fraction}
    if len(units) > 1 and not chosen:
        chosen = {units[0]}
    elif len(units) > 1 and len(chosen) == len(units):
        chosen.discard(units[-1])
    eval_ids = sorted(i for i in by_id if unit[i] in chosen)
    train_ids = sorted(set(by_id) - set(eval_ids))
    drawn = len(eval_ids)
    paths = {ref.sha256: confined(root, ref.path, f"item {it.id}: image") for it in items for ref in it.images}
    sigs = {sha: image_signature(path) for sha, path in paths.items()}
    texts = {i: normalize_text(it.question.text) for i, it in by_id.items()}
    groups = {i: normalize_text(it.question.answer) if cfg.same_answer else "" for i, it in by_id.items()}
    df = Counter(w for t in texts.values() for w in set(t.split()))
    images = _ImageIndex(cfg.image_bits, cfg.image_confirm, sigs)
    questions = _QuestionIndex(cfg.jaccard, dict(df))
    specs: dict[str, str] = {}
    image_owner: dict[str, str] = {}

    def to_train(i: str) -> None:
        it = by_id[i]
        specs.setdefault(it.spec.key, i)
        for ref in it.images:  # every page or frame of a multi-image item
            image_owner.setdefault(ref.sha256, i)
            images.add(ref.sha256)
        questions.add(i, groups[i], texts[i])

    for i in train_ids:
        to_train(i)
    conflicts: list[dict[str, str]] = []
    dropped: list[str] = []
    pending = list(eval_ids)
    moved = True
    while moved:  # a moved item joins train and may now conflict with eval items checked before it
        moved = False
        keep = []
        for i in pending:
            it = by_id[i]
            reason, other = "spec", specs.get(it.spec.key)
            for ref in it.images if other is None else ():
                near = images.match(ref.sha256)
                reason, other = "image", image_owner.get(near) if near else None
                if other is not None:
                    break
            if other is None:
                reason, other = "question", questions.match(groups[i], texts[i])
            if other is None:
                keep.append(i)
                continue
            conflicts.append({"item": i, "reason": reason, "with": other})
            if cfg.on_conflict == "move":
                to_train(i)
                train_ids.append(i)
                moved = True
            else:
                dropped.append(i)
        pending = keep
    left = Counter(c["reason"] for c in conflicts)
    return SplitResult(
        config=cfg,
        counts={"items": len(items), "train": len(train_ids), "eval": len(pending), "dropped": len(dropped)},
        drawn_eval=drawn, left_eval={r: left.get(r, 0) for r in REASONS}, conflicts=conflicts,
        train=sorted(train_ids), eval=sorted(pending), dropped=sorted(dropped))


def split_run(run_dir: Path | str, cfg: SplitConfig | None = None) -> SplitResult:
    """Split a run into train and eval and write `split.json` in it; return the SplitResult.

    Each unit (a Spec key, or an item id) goes to eval when a hash of (seed, unit) falls below
    `eval_fraction`, so the split does not depend on item order and is the same on every rerun; when
    that draws every unit of a run of two or more on one side, the unit nearest the other side
    crosses over, so neither side is empty.
    Then every eval item that shares a Spec key, a near-identical image (pHash distance and
    thumbnail check) or a near-identical question (normalised text, or token Jaccard, with the
    same answer) with a train item is moved to train (or dropped), until none is left; each is
    counted by its reason. Raises UserError for a path that is not a run, or an unreadable image.
    """
    cfg = cfg or SplitConfig()
    store = RunStore(run_dir)
    store.read_manifest()
    everything = list(store.iter_items())
    refused = rejected(store.root) & {it.id for it in everything}  # review.jsonl: these go to neither side
    result = split_items([it for it in everything if it.id not in refused], store.root, cfg)
    result = result.model_copy(update={"rejected": sorted(refused)})
    atomic_write(store.root / SPLIT_FILE, result.model_dump_json(indent=1) + "\n")
    return result


def read_split(run_dir: Path | str) -> SplitResult:
    """The split.json of a run; raises UserError if it is missing or malformed."""
    path = Path(run_dir) / SPLIT_FILE
    if not path.exists():
        raise UserError(f"{run_dir} has no {SPLIT_FILE}: run `deltaprompts split {run_dir}` first, or use --split all")
    try:
        return SplitResult.model_validate_json(path.read_text())
    except ValueError as e:
        raise UserError(f"{path} is not a valid split file: {str(e).splitlines()[0]}") from None


def select(items: list[Item], run_dir: Path | str, split: str) -> list[Item]:
    """The items of one side of the run's split ('train', 'eval') or all of them ('all').

    Raises UnknownNameError for another split name; UserError when split.json is missing or was
    made for other items (the run changed since: split it again).
    """
    from deltaprompts.errors import UnknownNameError

    if split not in SPLITS:
        raise UnknownNameError("split", split, SPLITS)
    if split == "all":
        return items
    result = read_split(run_dir)
    listed = set(result.train) | set(result.eval) | set(result.dropped) | set(result.rejected)
    have = {it.id for it in items}
    if listed != have:
        raise UserError(f"{Path(run_dir) / SPLIT_FILE} does not match the run's items ({len(have - listed)} items "
                        f"not in it, {len(listed - have)} listed but gone): run `deltaprompts split {run_dir}` again")
    wanted = set(getattr(result, split))
    return [it for it in items if it.id in wanted]


def describe(result: SplitResult) -> dict[str, Any]:
    """The counts of a split as plain JSON (no id lists), for reports."""
    return {"counts": result.counts, "drawn_eval": result.drawn_eval, "left_eval": result.left_eval,
            "config": json.loads(result.config.model_dump_json())}
