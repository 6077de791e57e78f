"""Adaptive sampling: draw answer samples in rounds, stop an item as soon as its keep/drop is clear.

The cost of Δ screening is model calls. After each round an item stops when every answer of both
models so far is on one class (zero-delta), or when its stopping interval lies wholly above or
below the keep threshold and the metric measured so far is on the same side. Only undecided items
get the next round. Sample i of an item is the same whether drawn adaptively or in one fixed round
of k, so an adaptive run is a prefix of the fixed one and agrees with it when it goes the whole way.

The stopping interval is posterior-predictive: it is about the metric that the full budget of k
samples per model would measure, since that is the decision a fixed run makes. Two hypotheses are
weighed by their marginal likelihoods: the models share one answer distribution (prior
`zero_prior`; Dirichlet(`prior`) over the classes seen plus one for "not seen yet"), or each has
its own. For each of `draws` draws a hypothesis and distributions are drawn from the posterior, the
missing samples from those; the interval holds the central `level` share of the resulting metric.
Weighing in the shared hypothesis matters: most items are zero-delta, and two independent
posteriors alone overstate the divergence of small samples. `level` is tuned on the simulation in
benchmarks/adaptive_sampling.py (see docs/divergence.md).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from deltaprompts.divergence.metrics import DISTRIBUTION_METRICS, check_metric, metric_from_counts
from deltaprompts.errors import UserError

#: Why an item stopped sampling: all answers on one class, interval above / below the threshold,
#: the budget of k samples reached, or a fixed (non-adaptive) run.
STOP_REASONS = ("zero_delta", "above", "below", "budget", "fixed")
#: Default keep thresholds per metric (items at or above are kept), used when none is given.
DEFAULT_THRESHOLDS = {"tv": 0.3, "js": 0.12, "kl": 0.2}


class AdaptiveConfig(BaseModel):
    """How adaptive sampling draws and stops (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rounds: tuple[int, ...] = Field(default=(4, 4, 4, 4), description="Samples per model in each round; sum = k.")
    threshold: float = Field(default=DEFAULT_THRESHOLDS["tv"], ge=0.0, description="Keep threshold on the metric.")
    metric: str = "tv"
    level: float = Field(default=0.71, gt=0.0, lt=1.0, description="Central share of the stopping interval.")
    draws: int = Field(default=256, ge=16, description="Posterior-predictive draws per decision.")
    prior: float = Field(default=0.5, gt=0.0, description="Dirichlet pseudo-count per class.")
    zero_prior: float = Field(default=0.5, ge=0.0, le=1.0,
                              description="Prior probability that an item is zero-delta (one shared distribution).")
    seed: int = 0

    @field_validator("rounds")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(r < 1 for r in v):
            raise ValueError(f"rounds must be positive sample counts, got {v!r}")
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        return check_metric(v, DISTRIBUTION_METRICS)

    @property
    def budget(self) -> int:
        return sum(self.rounds)


def schedule(k: int) -> tuple[int, ...]:
    """The default rounds for a budget of k samples per model: a first round of max(4, k/4) (fewer
    samples say little about zero-delta), then rounds of k/4 (16 -> 4, 4, 4, 4; 8 -> 4, 2, 2).
    Raises UserError for k < 1."""
    if k < 1:
        raise UserError(f"k={k}: need at least one sample per model")
    step = max(1, k // 4)
    rounds = [min(k, max(4, step))]
    while sum(rounds) < k:
        rounds.append(min(step, k - sum(rounds)))
    return tuple(rounds)


@dataclass(frozen=True)
class Decision:
    """Whether to stop an item now, why (one of STOP_REASONS, or "continue"), and the interval."""

    stop: bool
    reason: str
    interval: tuple[float, float] | None = None


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _log_marginal(counts: np.ndarray, prior: float) -> float:
    """Log-probability of a sample sequence with these class counts under Dirichlet(prior) weights."""
    total = prior * len(counts)
    lg = math.lgamma
    return lg(total) - lg(total + float(counts.sum())) + sum(lg(prior + float(c)) - lg(prior) for c in counts)


def shared_probability(ct: np.ndarray, cs: np.ndarray, cfg: AdaptiveConfig) -> float:
    """Posterior probability that teacher and student share one answer distribution, given their
    counts over the same K + 1 columns (classes seen, and one for classes not seen yet)."""
    log_shared = math.log(cfg.zero_prior) + _log_marginal(ct + cs, cfg.prior) if cfg.zero_prior > 0 else -math.inf
    log_apart = math.log1p(-cfg.zero_prior) + _log_marginal(ct, cfg.prior) + _log_marginal(cs, cfg.prior) \
        if cfg.zero_prior < 1 else -math.inf
    top = max(log_shared, log_apart)
    return math.exp(log_shared - top) / (math.exp(log_shared - top) + math.exp(log_apart - top))


def predictive_interval(teacher: Sequence[str], student: Sequence[str], budget: int, cfg: AdaptiveConfig,
                        rng: np.random.Generator) -> tuple[float, float]:
    """Central `cfg.level` interval of the metric that `budget` samples per model would measure,
    given the answer classes drawn so far (see the module docstring). Returns (low, high)."""
    classes = sorted(set(teacher) | set(student))
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    # Columns: the classes seen, then "not seen yet" (column k). Apart, each model's new answers
    # are its own (column k for the teacher, k + 1 for the student); shared, they are the same.
    ct = np.bincount([index[c] for c in teacher], minlength=k + 1).astype(float)
    cs = np.bincount([index[c] for c in student], minlength=k + 1).astype(float)
    shared = rng.random(cfg.draws) < shared_probability(ct, cs, cfg)
    theta_shared = rng.dirichlet(ct + cs + cfg.prior, size=cfg.draws)
    finals = []
    for counts, new_col in ((ct, k), (cs, k + 1)):
        theta = np.where(shared[:, None], theta_shared, rng.dirichlet(counts + cfg.prior, size=cfg.draws))
        remaining = max(budget - int(counts.sum()), 0)
        future = rng.multinomial(remaining, theta) if remaining else np.zeros_like(theta)
        final = np.zeros((cfg.draws, k + 2))
        final[:, :k] = counts[:k] + future[:, :k]
        final[:, k] = np.where(shared, future[:, k], 0.0)
        final[:, new_col] += np.where(shared, 0.0, future[:, k])
        finals.append(final)
    values = metric_from_counts(cfg.metric, finals[0], finals[1])
    tail = (1 - cfg.level) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def _counts(teacher: Sequence[str], student: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(set(teacher) | set(student))
    index = {c: i for i, c in enumerate(classes)}
    return (np.bincount([index[c] for c in teacher], minlength=len(classes)),
            np.bincount([index[c] for c in student], minlength=len(classes)))


def decide(teacher: Sequence[str], student: Sequence[str], cfg: AdaptiveConfig, rng: np.random.Generator) -> Decision:
    """Whether an item with these answer classes so far can stop. Raises UserError if a side is empty."""
    if not teacher or not student:
        raise UserError("decide needs at least one teacher and one student sample")
    if len(set(teacher) | set(student)) == 1:
        return Decision(True, "zero_delta", (0.0, 0.0))
    if min(len(teacher), len(student)) >= cfg.budget:
        return Decision(True, "budget")
    lo, hi = predictive_interval(teacher, student, cfg.budget, cfg, rng)
    # The metric measured so far must be on the same side: it is the value a screen compares.
    point = float(metric_from_counts(cfg.metric, *_counts(teacher, student)))
    if lo >= cfg.threshold and point >= cfg.threshold:
        return Decision(True, "above", (lo, hi))
    if hi < cfg.threshold and point < cfg.threshold:
        return Decision(True, "below", (lo, hi))
    return Decision(False, "continue", (lo, hi))


@dataclass
class Outcome:
    """One item's samples (answer classes per model), the rounds it used and why it stopped."""

    key: str
    teacher: list[str] = field(default_factory=list)
    student: list[str] = field(default_factory=list)
    rounds: int = 0
    reason: str = ""


#: draw(keys, start, count) -> (teacher classes, student classes): for each key, the classes of
#: sample indices start .. start+count-1 of each model (the caller persists them as it likes).
Draw = Callable[[Sequence[str], int, int], tuple[list[list[str]], list[list[str]]]]


def sample_rounds(keys: Sequence[str], draw: Draw, cfg: AdaptiveConfig, *, adaptive: bool = True) -> list[Outcome]:
    """Sample every item in rounds; with `adaptive`, items leave as soon as `decide` stops them
    (the decision's randomness is seeded by (cfg.seed, key, round), so reruns decide the same).
    Without it, every item gets all rounds and stops as "fixed". Returns one Outcome per key.
    Raises UserError if `draw` returns the wrong number of items or samples."""
    outcomes = {key: Outcome(key) for key in keys}
    pending = list(dict.fromkeys(keys))
    start = 0
    for r, count in enumerate(cfg.rounds, 1):
        if not pending:
            break
        teacher, student = draw(pending, start, count)
        if len(teacher) != len(pending) or len(student) != len(pending):
            raise UserError(f"draw returned {len(teacher)}/{len(student)} items for {len(pending)} requested")
        start += count
        still = []
        for key, t, s in zip(pending, teacher, student):
            if len(t) != count or len(s) != count:
                raise UserError(f"draw returned {len(t)}/{len(s)} samples for item {key}, expected {count}")
            out = outcomes[key]
            out.teacher += t
            out.student += s
            out.rounds = r
            last = r == len(cfg.rounds)
            if not adaptive:
                out.reason = "fixed" if last else ""
                still += [] if last else [key]
                continue
            d = decide(out.teacher, out.student, cfg, _rng(cfg.seed, key, r))
            if d.stop or last:
                out.reason = d.reason if d.stop else "budget"
            else:
                still.append(key)
        pending = still
    return [outcomes[key] for key in keys]
