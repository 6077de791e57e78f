"""Per-item random streams derived from (seed, family, index, ...), never the global RNG."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object) -> int:
    """Return a 64-bit seed that depends only on `parts` (stable across processes and runs)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def item_rng(seed: int, family: str, index: int, *extra: object) -> np.random.Generator:
    """Return the random generator for one item; `extra` separates sub-streams (attempt, stage)."""
    return np.random.default_rng(derive_seed(seed, family, index, *extra))
