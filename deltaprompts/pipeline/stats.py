"""Confidence intervals of a proportion: Wilson score and a seeded percentile bootstrap."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from deltaprompts.errors import UserError


def _check(k: int, n: int, level: float) -> None:
    if n < 0 or not 0 <= k <= max(n, 0) or not 0.0 < level < 1.0:
        raise UserError(f"a proportion needs 0 <= k <= n and 0 < level < 1; got k={k}, n={n}, level={level}")


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials at `level`; (0, 1) when n is 0.
    Raises UserError for k outside [0, n] or a level outside (0, 1)."""
    _check(k, n, level)
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact ends: the interval of 0 (or n) successes starts at 0 (ends at 1), not a rounding error away
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def bootstrap_proportion(k: int, n: int, level: float = 0.95, b: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a proportion: resampling n binary outcomes with replacement
    is a Binomial(n, k/n) draw, taken `b` times with a seeded generator. (0, 1) when n is 0."""
    _check(k, n, level)
    if n == 0:
        return 0.0, 1.0
    draws = np.random.default_rng(seed).binomial(n, k / n, size=b) / n
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
