"""Per-item random streams derived from (seed, family, index, ...), never the global RNG.

Also `extensible_choice`, the draw from a list a user can extend (layout files, chart topics,
question families, phrasings): the values a family version shipped with (`base_values`) are drawn
exactly as they always were, and a value added later takes its share of items by weighted
rendezvous hashing, so adding it moves only the items that now draw it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, TypeVar

import numpy as np

T = TypeVar("T")


def stable_digest(text: str, size: int) -> bytes:
    """The `size`-byte blake2b digest of `text` (UTF-8): the same in every process and run."""
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def stable_int(text: str, size: int = 8, byteorder: Literal["little", "big"] = "little") -> int:
    """`stable_digest(text, size)` read as an unsigned integer (a seed of size * 8 bits)."""
    return int.from_bytes(stable_digest(text, size), byteorder)


def derive_seed(*parts: object) -> int:
    """Return a 64-bit seed that depends only on `parts` (stable across processes and runs)."""
    return stable_int(repr(parts), 8)


def item_rng(seed: int, family: str, index: int, *extra: object) -> np.random.Generator:
    """Return the random generator for one item; `extra` separates sub-streams (attempt, stage)."""
    return np.random.default_rng(derive_seed(seed, family, index, *extra))


BASE_VALUES = "base_values.json"


@lru_cache(maxsize=1)
def _base_values() -> dict[str, Any]:
    return json.loads((resources.files("deltaprompts.templates") / BASE_VALUES).read_text(encoding="utf-8"))


def base_values(key: str) -> frozenset[str] | None:
    """The names a list held when its family version was made (templates/base_values.json), by a
    dotted key: `topics`, `templates`, `layouts.invoice`, `phrasings.<question family>`; None for
    a list the package never shipped (a user's own question family)."""
    node: Any = _base_values()
    for part in key.split(".", 1) if key.startswith("phrasings.") else key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return None if node is None else frozenset(node)


def phrasing_key(text: str) -> str:
    """The name of a phrasing in base_values.json: a short digest of its text."""
    return stable_digest(text, 6).hex()


def _weight_score(weight: float, key: str, name: str) -> float:
    u = (stable_int(f"{key}|{name}", 8) + 0.5) / 2.0**64  # uniform in (0, 1)
    return weight / -math.log(u)


def extensible_choice(rng: np.random.Generator, values: Sequence[T], name: Callable[[T], str] = str,
                      base: frozenset[str] | None = None) -> T:
    """One of `values`, drawn so that a list can grow without moving the items of its other values.

    The values named in `base` (the list a family version shipped with) are drawn exactly as a
    plain `values[rng.integers(0, n)]` over them, so a list nobody extended gives the bytes it
    always gave. Values not in `base` (added by a user; every value when `base` is None) compete
    with the base as a whole by weighted rendezvous hashing on a key read from `rng`'s state
    without advancing it: the base weighs as many values as it holds, each added value one. An
    added value thus takes 1/len(values) of the items, and adding another one moves only items to
    the new value. `rng` advances by the one draw in every case. Raises ValueError for no values.
    """
    if not len(values):
        raise ValueError("extensible_choice: no values to choose from")
    names = [name(v) for v in values]
    old = [v for v, n in zip(values, names) if base is not None and n in base]
    added = [(v, n) for v, n in zip(values, names) if base is None or n not in base]
    key = repr(rng.bit_generator.state)  # read before the draw, so the draw below is the one always made
    i = int(rng.integers(0, max(len(old), 1)))
    pick = old[i] if old else None
    if not added:
        return pick  # type: ignore[return-value]
    best, best_score = pick, _weight_score(len(old), key, "\x00base") if old else -1.0
    for v, n in added:
        score = _weight_score(1.0, key, n)
        if score > best_score:
            best, best_score = v, score
    return best  # type: ignore[return-value]
