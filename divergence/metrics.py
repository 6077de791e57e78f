"""Divergence metrics between two answer distributions (class -> count), and the bootstrap CI."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from deltaprompts.errors import UnknownNameError, UserError

#: Pseudo-count added to every class of either distribution before KL(T||S) is taken.
KL_SMOOTHING = 0.5
#: Distribution metrics a Delta can be ranked by (the CLI's --metric).
DISTRIBUTION_METRICS = ("tv", "js", "kl")
#: Every value a Delta may carry: the distribution metrics, the correctness gap, token-level KL.
ALL_METRICS = (*DISTRIBUTION_METRICS, "gap", "token_kl")

Counts = Mapping[str, int]


def distribution(classes: Iterable[str]) -> dict[str, int]:
    """Counts per class of a list of answer classes, sorted by class name (stable JSON)."""
    return dict(sorted(Counter(classes).items()))


# ---------------------------------------------------------------- vectorised cores
# Each core takes probability arrays whose last axis is the classes (rows may be batches of
# bootstrap or posterior draws) and returns one value per row.


def _tv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(p - q).sum(axis=-1)


def _xlogy_base2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0) / np.where(y > 0, y, 1.0)), 0.0)


def _js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = 0.5 * (p + q)
    out = 0.5 * _xlogy_base2(p, m).sum(axis=-1) + 0.5 * _xlogy_base2(q, m).sum(axis=-1)
    return np.clip(out, 0.0, 1.0)


def _kl_counts(ct: np.ndarray, cs: np.ndarray, alpha: float = KL_SMOOTHING) -> np.ndarray:
    k = ct.shape[-1]
    p = (ct + alpha) / (ct.sum(axis=-1, keepdims=True) + alpha * k)
    q = (cs + alpha) / (cs.sum(axis=-1, keepdims=True) + alpha * k)
    return np.maximum((p * np.log(p / q)).sum(axis=-1), 0.0)


def metric_from_counts(metric: str, ct: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """A distribution metric from aligned count arrays (last axis: classes); one value per row.
    Raises UnknownNameError for a metric outside DISTRIBUTION_METRICS."""
    check_metric(metric, DISTRIBUTION_METRICS)
    ct = np.asarray(ct, dtype=float)
    cs = np.asarray(cs, dtype=float)
    if metric == "kl":
        return _kl_counts(ct, cs)
    nt = np.maximum(ct.sum(axis=-1, keepdims=True), 1e-300)
    ns = np.maximum(cs.sum(axis=-1, keepdims=True), 1e-300)
    return (_tv if metric == "tv" else _js)(ct / nt, cs / ns)


def check_metric(metric: str, allowed: Sequence[str] = ALL_METRICS) -> str:
    """Return `metric` if it is one of `allowed`; raises UnknownNameError listing them."""
    if metric not in allowed:
        raise UnknownNameError("divergence metric", str(metric), allowed)
    return metric


def _aligned(p: Counts, q: Counts) -> tuple[np.ndarray, np.ndarray]:
    for name, d in (("teacher", p), ("student", q)):
        if any(c < 0 for c in d.values()) or sum(d.values()) <= 0:
            raise UserError(f"{name} distribution {dict(d)!r} must have non-negative counts and at least one sample")
    classes = sorted(set(p) | set(q))
    return (np.array([p.get(c, 0) for c in classes], dtype=float),
            np.array([q.get(c, 0) for c in classes], dtype=float))


# ---------------------------------------------------------------- public metrics over dicts


def total_variation(p: Counts, q: Counts) -> float:
    """Total variation distance between two empirical distributions (class -> count), in [0, 1]:
    half the L1 distance of the normalised counts. Raises UserError for an empty distribution."""
    a, b = _aligned(p, q)
    return float(metric_from_counts("tv", a, b))


def jensen_shannon(p: Counts, q: Counts) -> float:
    """Jensen-Shannon divergence (base 2, so in [0, 1]) between two empirical distributions.
    Raises UserError for an empty distribution."""
    a, b = _aligned(p, q)
    return float(metric_from_counts("js", a, b))


def kl_smoothed(p: Counts, q: Counts, alpha: float = KL_SMOOTHING) -> float:
    """KL(P || Q) in nats with additive smoothing: over the K classes seen in either distribution,
    P(c) = (count_P(c) + alpha) / (n_P + alpha K), and likewise Q; finite even where Q has no
    sample of a class P has. `alpha` defaults to KL_SMOOTHING (0.5, Jeffreys). Raises UserError for
    an empty distribution or alpha <= 0."""
    if not alpha > 0:
        raise UserError(f"KL smoothing alpha={alpha!r} must be > 0")
    a, b = _aligned(p, q)
    return float(_kl_counts(a, b, alpha))


def accuracy(scores: Sequence[float]) -> float:
    """Mean of per-sample scores (each from `verifiers.score_answer` against the item's answer).
    Raises UserError for no scores."""
    if not scores:
        raise UserError("accuracy of no samples is undefined")
    return float(sum(scores) / len(scores))


def correctness_gap(teacher_scores: Sequence[float], student_scores: Sequence[float]) -> float:
    """Teacher accuracy minus student accuracy, in [-1, 1]. Raises UserError for no scores."""
    return accuracy(teacher_scores) - accuracy(student_scores)


def token_kl(teacher_logprobs: Sequence[float], student_logprobs: Sequence[float]) -> float:
    """Token-level KL(T||S) estimated on teacher samples y_i: mean of log p_T(y_i) - log p_S(y_i),
    with both log-probs teacher-forced (summed over the answer's tokens). This is the quantity
    distillation minimises; a single estimate can be negative. Raises UserError for unequal or
    empty lists or non-finite values."""
    if len(teacher_logprobs) != len(student_logprobs) or not teacher_logprobs:
        raise UserError(f"token KL needs equal, non-empty lists of log-probs; got {len(teacher_logprobs)} teacher "
                        f"and {len(student_logprobs)} student")
    diffs = [t - s for t, s in zip(teacher_logprobs, student_logprobs)]
    if not all(math.isfinite(d) for d in diffs):
        raise UserError("token KL: a teacher-forced log-prob is not finite")
    return float(sum(diffs) / len(diffs))


METRIC_FUNCTIONS: dict[str, Callable[[Counts, Counts], float]] = {
    "tv": total_variation,
    "js": jensen_shannon,
    "kl": kl_smoothed,
}


def distribution_metrics(p: Counts, q: Counts) -> dict[str, float]:
    """All distribution metrics (tv, js, kl) between teacher `p` and student `q`."""
    return {name: fn(p, q) for name, fn in METRIC_FUNCTIONS.items()}


def identical(p: Counts, q: Counts) -> bool:
    """Whether two empirical distributions are identical (same classes, same proportions). This is not
    zero-delta: two samplers of one model rarely agree exactly (see divergence.null.p_same)."""
    a, b = _aligned(p, q)
    return bool(np.all(a * b.sum() == b * a.sum()))


# ---------------------------------------------------------------- bootstrap


def bootstrap_ci(
    teacher: Sequence[str], student: Sequence[str], metric: str = "tv", *, b: int = 1000, level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a distribution metric between two lists of answer classes.

    Each side is resampled with replacement on its own, `b` times, from `np.random.default_rng(seed)`
    (so the same inputs and seed give the same interval). The interval is widened to contain the
    point estimate: TV/JS/KL are bounded below by 0 and biased upwards under resampling, so the raw
    percentile interval of an item at 0 could exclude 0. Returns (low, high). Raises UserError for
    b < 1, a level outside (0, 1) or an empty list; UnknownNameError for an unknown metric.
    """
    check_metric(metric, DISTRIBUTION_METRICS)
    if b < 1 or not 0 < level < 1:
        raise UserError(f"bootstrap needs b >= 1 and 0 < level < 1; got b={b}, level={level}")
    if not teacher or not student:
        raise UserError("bootstrap needs at least one teacher and one student sample")
    classes = sorted(set(teacher) | set(student))
    index = {c: i for i, c in enumerate(classes)}
    t = np.array([index[c] for c in teacher])
    s = np.array([index[c] for c in student])
    rng = np.random.default_rng(seed)
    k = len(classes)
    ct = _resampled_counts(rng, t, b, k)
    cs = _resampled_counts(rng, s, b, k)
    values = metric_from_counts(metric, ct, cs)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    point = float(metric_from_counts(metric, np.bincount(t, minlength=k), np.bincount(s, minlength=k)))
    return float(min(lo, point)), float(max(hi, point))


def _resampled_counts(rng: np.random.Generator, codes: np.ndarray, b: int, k: int) -> np.ndarray:
    draws = codes[rng.integers(0, len(codes), size=(b, len(codes)))]
    return (draws[..., None] == np.arange(k)).sum(axis=1)
