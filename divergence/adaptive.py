"""Adaptive sampling: draw answer samples in rounds, stop an item as soon as its keep/drop is clear.

The cost of Δ screening is model calls. After each round an item stops when every answer of both
models so far is on one class (zero-delta), or when screen's decision at the full budget is
predictable: the posterior-predictive probability that screen keeps the item (`keep_probability`)
is at least `level` ("above") or at most 1 - `level` ("below"), and the decision on the samples
drawn so far is the same (screen judges those). Only undecided items get the next round. Sample i
of an item is the same whether drawn adaptively or in one fixed round of k, so an adaptive run is a
prefix of the fixed one and agrees with it when it goes the whole way.

The decision predicted is screen's default rule (`records.keep_decision`, "debiased"): the models
are distinguishable (p_same <= `zero_level`), the debiased Δ reaches `threshold`, and the teacher is
right on at least `min_teacher_acc` of its samples (classes known to score 1 are passed in; a
teacher that keeps failing stops the item early, student and all). The prediction weighs two
hypotheses by their marginal likelihoods: the models share one answer distribution (prior
`zero_prior`; Dirichlet(`prior`) over the classes seen plus one for "not seen yet"), or each has
its own; `draws` draws of a hypothesis, the distributions and the missing samples give the final
counts, and the share of them screen would keep is the probability. `level` is tuned on the
shipped toy pair (benchmarks/delta_calibration.py; docs/divergence.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from deltaprompts.divergence.metrics import DISTRIBUTION_METRICS, check_metric, metric_from_counts
from deltaprompts.divergence.null import SAME_LEVEL, p_same, posterior, shared_weight
from deltaprompts.errors import UserError
from deltaprompts.rng import stable_int

#: Why an item stopped sampling: all answers on one class, interval above / below the threshold,
#: the budget of k samples reached, or a fixed (non-adaptive) run.
STOP_REASONS = ("zero_delta", "above", "below", "budget", "fixed")
#: Default stopping confidence: an item stops when its predicted keep/drop is at least this probable.
LEVEL = 0.9
#: Default keep thresholds per metric (items at or above are kept), used when none is given.
DEFAULT_THRESHOLDS = {"tv": 0.3, "js": 0.12, "kl": 0.2}


class AdaptiveConfig(BaseModel):
    """How adaptive sampling draws and stops (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rounds: tuple[int, ...] = Field(default=(4, 4, 4, 4), description="Samples per model in each round; sum = k.")
    threshold: float = Field(default=DEFAULT_THRESHOLDS["tv"], ge=0.0, allow_inf_nan=False,
                             description="Keep threshold on the debiased metric.")
    metric: str = "tv"
    level: float = Field(default=LEVEL, gt=0.5, lt=1.0,
                         description="Stop when the predicted keep/drop is this probable (and agrees with the "
                         "samples so far).")
    zero_level: float = Field(default=SAME_LEVEL, gt=0.0, lt=1.0, description="Level of the zero-delta test.")
    min_teacher_acc: float = Field(default=0.0, ge=0.0, le=1.0,
                                   description="Screen's teacher-accuracy bar: items the teacher fails stop early.")
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
    """Whether to stop an item now, why (one of STOP_REASONS, or "continue"), and the predicted
    probability that screen keeps it at the full budget (None when the budget is reached)."""

    stop: bool
    reason: str
    p_keep: float | None = None


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_int("|".join(map(str, parts)), 16))


def shared_probability(ct: np.ndarray, cs: np.ndarray, cfg: AdaptiveConfig) -> float:
    """Posterior probability that teacher and student share one answer distribution, given their
    counts over the same K + 1 columns (classes seen, and one for classes not seen yet)."""
    return shared_weight(ct, cs, cfg.prior, cfg.zero_prior)


def _predictive_finals(teacher: Sequence[str], student: Sequence[str], budget: int, cfg: AdaptiveConfig,
                       rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`cfg.draws` draws of the final counts that `budget` samples per model would give, from the
    answer classes so far: (classes seen, teacher finals, student finals). Final columns are the
    classes seen, then new classes: shared (column k), the teacher's own (k), the student's own (k + 1)."""
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
    return classes, finals[0], finals[1]


def predictive_interval(teacher: Sequence[str], student: Sequence[str], budget: int, cfg: AdaptiveConfig,
                        rng: np.random.Generator) -> tuple[float, float]:
    """Central `cfg.level` interval of the plug-in metric that `budget` samples per model would
    measure, given the answer classes drawn so far (see the module docstring). Returns (low, high)."""
    _, ft, fs = _predictive_finals(teacher, student, budget, cfg, rng)
    values = metric_from_counts(cfg.metric, ft, fs)
    tail = (1 - cfg.level) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def keeps(ct: Sequence[int], cs: Sequence[int], teacher_correct: int, cfg: AdaptiveConfig) -> bool:
    """Whether screen's default rule (`records.keep_decision`, rule "debiased") keeps an item with
    these final counts: not zero-delta at cfg.zero_level, debiased metric >= cfg.threshold, and the
    teacher right on at least cfg.min_teacher_acc of its samples."""
    return _keeps(tuple(ct), tuple(cs), teacher_correct, _rule(cfg))


def _rule(cfg: AdaptiveConfig) -> tuple[float, float, str, float]:
    return cfg.threshold, cfg.zero_level, cfg.metric, cfg.min_teacher_acc


@lru_cache(maxsize=262144)
def _keeps(ct: tuple[int, ...], cs: tuple[int, ...], teacher_correct: int, rule: tuple[float, float, str, float]) -> bool:
    # remembered: a run meets the same final counts again and again (thousands of predictive draws
    # per decision), and the rule is a pure function of them
    threshold, zero_level, metric, min_teacher_acc = rule
    if teacher_correct < min_teacher_acc * sum(ct) - 1e-9:
        return False
    if threshold > 0 and p_same(ct, cs) > zero_level:
        return False
    return posterior(metric, ct, cs)[0] >= threshold


def keep_probability(teacher: Sequence[str], student: Sequence[str], cfg: AdaptiveConfig, rng: np.random.Generator,
                     correct: Set[str] = frozenset()) -> float:
    """The posterior-predictive probability that screen keeps the item once both models have
    `cfg.budget` samples, given the answer classes so far and the classes known to be right
    (`correct`; a class not seen yet counts as wrong)."""
    classes, ft, fs = _predictive_finals(teacher, student, cfg.budget, cfg, rng)
    right = np.array([c in correct for c in classes] + [False, False])
    rows = np.concatenate([ft, fs, (ft * right).sum(axis=1, keepdims=True)], axis=1).astype(int)
    width = ft.shape[1]
    rule = _rule(cfg)
    seen: dict[tuple[int, ...], int] = {}
    for row in map(tuple, rows.tolist()):
        seen[row] = seen.get(row, 0) + 1
    # the share of draws kept: an exact count over the draws (what the mean of one flag per draw was)
    kept = sum(n for row, n in seen.items() if _keeps(row[:width], row[width:2 * width], row[-1], rule))
    return kept / len(rows)


def _counts(teacher: Sequence[str], student: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(set(teacher) | set(student))
    index = {c: i for i, c in enumerate(classes)}
    return (np.bincount([index[c] for c in teacher], minlength=len(classes)),
            np.bincount([index[c] for c in student], minlength=len(classes)))


def decide(teacher: Sequence[str], student: Sequence[str], cfg: AdaptiveConfig, rng: np.random.Generator,
           correct: Set[str] = frozenset()) -> Decision:
    """Whether an item with these answer classes so far can stop (`correct`: the classes known to
    score 1, for cfg.min_teacher_acc). Raises UserError if a side is empty."""
    if not teacher or not student:
        raise UserError("decide needs at least one teacher and one student sample")
    if len(set(teacher) | set(student)) == 1:
        return Decision(True, "zero_delta", 0.0)
    if min(len(teacher), len(student)) >= cfg.budget:
        return Decision(True, "budget")
    p = keep_probability(teacher, student, cfg, rng, correct)
    # Screen judges the samples drawn: a stop must agree with the decision on them as they are.
    ct, cs = _counts(teacher, student)
    now = keeps(ct, cs, sum(c in correct for c in teacher), cfg)
    if p >= cfg.level and now:
        return Decision(True, "above", p)
    if p <= 1 - cfg.level and not now:
        return Decision(True, "below", p)
    return Decision(False, "continue", p)


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


def sample_rounds(keys: Sequence[str], draw: Draw, cfg: AdaptiveConfig, *, adaptive: bool = True,
                  correct: Callable[[str], Set[str]] | None = None) -> list[Outcome]:
    """Sample every item in rounds; with `adaptive`, items leave as soon as `decide` stops them
    (the decision's randomness is seeded by (cfg.seed, key, round), so reruns decide the same).
    `correct(key)` names the answer classes of the item known to be right (for
    cfg.min_teacher_acc). Without `adaptive`, every item gets all rounds and stops as "fixed".
    Returns one Outcome per key. Raises UserError if `draw` returns the wrong number of items or samples."""
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
            d = decide(out.teacher, out.student, cfg, _rng(cfg.seed, key, r), correct(key) if correct else frozenset())
            if d.stop or last:
                out.reason = d.reason if d.stop else "budget"
            else:
                still.append(key)
        pending = still
    return [outcomes[key] for key in keys]
