"""Is an item's Δ the models or the dice? The zero-delta test and the debiased Δ.

Two samplers of one model rarely give identical empirical answer distributions at small k, and the
plug-in metrics (TV, JS, KL) of two k-sample sets of one distribution sit well above 0 (TV about
0.2-0.3 at k = 8). Two measurements correct for that:

- `p_same`: the exact permutation p-value of the hypothesis that teacher and student share one
  answer distribution, given the pooled samples (every split of the pooled answers into n_t teacher
  and n_s student answers equally likely), with TV as the statistic. TV scaled by 2·n_t·n_s is a sum
  of one integer term per class, so the null distribution is counted exactly by dynamic
  programming over the classes: no Monte Carlo, any k. An item is zero-delta at level α when
  p_same > α; when the models do share a distribution that happens with probability >= 1 - α.
- `posterior`: the posterior mean of the true metric (the debiased Δ) and a one-sided lower bound,
  under two hypotheses weighed by marginal likelihood: the models share one distribution (Δ = 0;
  prior `ZERO_PRIOR`), or each has its own (Dirichlet `PRIOR` per class seen). The plug-in metric
  of k samples overstates Δ by the sampling noise (+0.11 TV at k = 8 in the calibration world);
  the posterior mean's bias is a quarter of that and shrinks with k (benchmarks/delta_calibration.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from deltaprompts.divergence.metrics import DISTRIBUTION_METRICS, check_metric, metric_from_counts
from deltaprompts.errors import UserError
from deltaprompts.rng import stable_int

#: Default significance level of the zero-delta test: an item is zero-delta when p_same > this.
SAME_LEVEL = 0.05
#: Dirichlet pseudo-count per class of the posterior (Jeffreys), as in adaptive sampling.
PRIOR = 0.5
#: Prior probability that an item is zero-delta (teacher and student share one distribution).
ZERO_PRIOR = 0.5
#: Posterior draws behind the debiased Δ and its lower bound.
DRAWS = 1000


def check_level(level: float, name: str = "level") -> float:
    """Return `level` if it is a finite number strictly between 0 and 1; raises UserError otherwise."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        example = "0.05" if "zero" in name else "0.95"
        raise UserError(f"{name}={level!r} must be a number strictly between 0 and 1 (e.g. {example})")
    return float(level)


def _check_counts(ct: Sequence[int], cs: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    a = tuple(int(x) for x in ct)
    b = tuple(int(x) for x in cs)
    if len(a) != len(b) or min(a + b, default=0) < 0 or sum(a) < 1 or sum(b) < 1:
        raise UserError(f"the null test needs aligned, non-negative counts with a sample on each side; got {a} and {b}")
    return a, b


def _canonical(ct: Sequence[int], cs: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Class order does not matter and empty classes add nothing: a sorted key for caching."""
    return tuple(sorted((int(a), int(b)) for a, b in zip(ct, cs) if a or b))


# --------------------------------------------------------------------------- exact p-value


@lru_cache(maxsize=262144)
def _p_same(key: tuple[tuple[int, int], ...]) -> float:
    nt = sum(a for a, _ in key)
    ns = sum(b for _, b in key)
    n = nt + ns
    g = math.gcd(n, nt)  # every term |x·n − m·n_t| is a multiple of gcd(n, n_t): count in those units
    observed = sum(abs(a * n - (a + b) * nt) for a, b in key) // g
    top = 2 * nt * ns // g  # the largest value the scaled statistic can take
    # w[u, s]: number of ways (weighted by binomials) to give u teacher samples to the classes so
    # far with scaled statistic s.
    w = np.zeros((nt + 1, top + 1))
    w[0, 0] = 1.0
    for a, b in key:
        m = a + b
        new = np.zeros_like(w)
        for x in range(0, min(m, nt) + 1):
            d = abs(x * n - m * nt) // g
            if d > top:
                continue
            new[x:, d:] += math.comb(m, x) * w[: nt + 1 - x, : top + 1 - d]
        w = new
    row = w[nt]
    return float(min(1.0, row[observed:].sum() / row.sum()))


def p_same(ct: Sequence[int], cs: Sequence[int]) -> float:
    """Exact permutation p-value of the hypothesis that teacher counts `ct` and student counts `cs`
    (aligned by class) come from one shared answer distribution, with TV as the statistic: the
    share of the C(n_t + n_s, n_t) equally likely splits of the pooled answers whose TV is at least
    the observed one. 1.0 when the two empirical distributions are identical. Raises UserError for
    misaligned or empty counts."""
    a, b = _check_counts(ct, cs)
    return _p_same(_canonical(a, b))


# --------------------------------------------------------------------------- posterior


def _log_marginal(counts: np.ndarray, prior: float) -> float:
    """Log-probability of a sample sequence with these class counts under Dirichlet(prior) weights."""
    total = prior * len(counts)
    lg = math.lgamma
    return lg(total) - lg(total + float(counts.sum())) + sum(lg(prior + float(c)) - lg(prior) for c in counts)


def shared_weight(ct: np.ndarray, cs: np.ndarray, prior: float, zero_prior: float) -> float:
    """Posterior probability that teacher and student share one answer distribution, given their
    counts over the same columns: the marginal likelihoods of "one Dirichlet(prior) distribution for
    both" and "one each", weighed with the prior probability `zero_prior` of sharing. (Adaptive
    sampling adds a column for the classes not seen yet; `shared_posterior` takes the classes seen.)"""
    log_shared = math.log(zero_prior) + _log_marginal(ct + cs, prior) if zero_prior > 0 else -math.inf
    log_apart = math.log1p(-zero_prior) + _log_marginal(ct, prior) + _log_marginal(cs, prior) \
        if zero_prior < 1 else -math.inf
    top = max(log_shared, log_apart)
    return math.exp(log_shared - top) / (math.exp(log_shared - top) + math.exp(log_apart - top))


def shared_posterior(ct: Sequence[int], cs: Sequence[int], *, prior: float = PRIOR,
                     zero_prior: float = ZERO_PRIOR) -> float:
    """`shared_weight` over the classes seen in either sample (aligned count sequences)."""
    a, b = _check_counts(ct, cs)
    seen = [(x, y) for x, y in zip(a, b) if x or y]
    return shared_weight(np.array([x for x, _ in seen], float), np.array([y for _, y in seen], float), prior,
                         zero_prior)


def _divergence(metric: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """A metric between true distributions (rows of p and q, no zeros): tv, js (base 2), KL(p||q) (nats)."""
    if metric == "tv":
        return 0.5 * np.abs(p - q).sum(axis=-1)
    if metric == "js":
        m = 0.5 * (p + q)
        return np.clip(0.5 * (p * np.log2(p / m)).sum(axis=-1) + 0.5 * (q * np.log2(q / m)).sum(axis=-1), 0.0, 1.0)
    return np.maximum((p * np.log(p / q)).sum(axis=-1), 0.0)


def posterior(metric: str, ct: Sequence[int], cs: Sequence[int], *, level: float = 0.95, draws: int = DRAWS,
              prior: float = PRIOR, zero_prior: float = ZERO_PRIOR) -> tuple[float, float]:
    """The posterior mean of the models' true `metric` and its one-sided lower bound at `level`
    (for kl, whose posterior mean is heavy-tailed, the smoothed plug-in KL times the probability
    that the models differ, with the same lower bound capped at it).

    The posterior mixes "shared" (probability `shared_posterior`; the metric is 0) with "apart"
    (each model's distribution over the classes seen drawn from Dirichlet(counts + prior), `draws`
    draws). The mean is the debiased Δ; the lower bound is the (1 - level) quantile of the mixture,
    so "lower bound >= t" means P(Δ >= t | samples) >= level. The draws are seeded by the counts
    (class order and names do not matter), so the same counts always give the same figures.
    Returns (mean, lower). Raises UserError for bad counts or level, UnknownNameError for a metric
    outside tv/js/kl."""
    check_metric(metric, DISTRIBUTION_METRICS)
    check_level(level)
    a, b = _check_counts(ct, cs)
    return _posterior(metric, _canonical(a, b), float(level), int(draws), float(prior), float(zero_prior))


@lru_cache(maxsize=262144)
def _posterior(metric: str, key: tuple[tuple[int, int], ...], level: float, draws: int, prior: float,
               zero_prior: float) -> tuple[float, float]:
    if len(key) == 1:  # every answer on one class: nothing says the models differ there
        return 0.0, 0.0
    t = np.array([x for x, _ in key], float)
    s = np.array([y for _, y in key], float)
    shared = shared_weight(t, s, prior, zero_prior)  # the key holds the classes seen only
    seed = stable_int(repr((metric, key)), 8)
    rng = np.random.default_rng(seed)
    apart = _divergence(metric, rng.dirichlet(t + prior, size=draws), rng.dirichlet(s + prior, size=draws))
    if metric == "kl":
        # The true KL's posterior is heavy-tailed under a Jeffreys prior (a rare class the student
        # never showed weighs a lot): the smoothed plug-in KL, shrunk by the evidence of sharing.
        mean = (1.0 - shared) * float(metric_from_counts("kl", t, s))
    else:
        mean = (1.0 - shared) * float(apart.mean())
    tail = 1.0 - level
    lower = 0.0 if tail <= shared else float(np.quantile(apart, (tail - shared) / (1.0 - shared)))
    return mean, min(lower, mean)
