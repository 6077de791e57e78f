"""Score and screen records (Sample, ForcedScore, SampleSet, Delta, ScreenReport)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deltaprompts.divergence.adaptive import STOP_REASONS
from deltaprompts.divergence.metrics import (
    DISTRIBUTION_METRICS,
    accuracy,
    bootstrap_ci,
    check_metric,
    correctness_gap,
    distribution,
    distribution_metrics,
    token_kl,
    identical,
)
from deltaprompts.divergence.null import SAME_LEVEL, p_same, posterior
from deltaprompts.rng import stable_int

#: How screen decides keep/drop on a distribution metric (see `keep_decision`).
KEEP_RULES = ("debiased", "confident", "plugin")
#: The rule screen uses unless told otherwise.
DEFAULT_RULE = "debiased"

Role = Literal["teacher", "student"]


class Sample(BaseModel):
    """One sampled answer of one model for one item: a line of `scores/samples-<role>.jsonl`."""

    model_config = ConfigDict(extra="forbid")
    item: str = Field(description="Item id.")
    index: int = Field(ge=0, description="Sample index among the item's samples from this model.")
    text: str
    answer_class: str = Field(description="Answer class (verifiers.answer_class), or '<unparseable>'.")
    score: float = Field(ge=0.0, le=1.0, description="verifiers.score_item_answer against the item's answer.")
    logprob: float | None = None
    finish_reason: str | None = None
    tokens: int | None = Field(None, description="Tokens in the completion, when the backend gave per-token "
                               "log-probs (so logprob / tokens is its mean log-prob).")


class ForcedScore(BaseModel):
    """Teacher-forced log-probs of one teacher sample under both models: a line of `scores/forced.jsonl`."""

    model_config = ConfigDict(extra="forbid")
    item: str
    index: int = Field(ge=0, description="Index of the teacher sample scored.")
    teacher_logprob: float
    student_logprob: float


class SampleSet(BaseModel):
    """One model's samples for one item, in index order."""

    model_config = ConfigDict(extra="forbid")
    item: str
    role: Role
    samples: list[Sample]

    @property
    def classes(self) -> list[str]:
        return [s.answer_class for s in self.samples]

    @property
    def scores(self) -> list[float]:
        return [s.score for s in self.samples]

    @property
    def counts(self) -> dict[str, int]:
        return distribution(self.classes)


class Delta(BaseModel):
    """The divergence of teacher and student on one item: a line of `scores/deltas.jsonl`."""

    model_config = ConfigDict(extra="forbid")
    item: str = Field(description="Item id.")
    family: str = Field(description="The item's visual family, e.g. scene.shapes.")
    question_family: str
    metric: str = Field(description="The metric `value` holds: tv, js or kl.")
    value: float
    values: dict[str, float] = Field(description="tv, js, kl, gap (teacher minus student accuracy), and "
                                     "token_kl when both models can score answers.")
    teacher: dict[str, int] = Field(description="Teacher answer class -> count.")
    student: dict[str, int] = Field(description="Student answer class -> count.")
    teacher_accuracy: float
    student_accuracy: float
    n_teacher: int
    n_student: int
    ci: tuple[float, float] = Field(description="Percentile bootstrap interval of `value`.")
    ci_level: float
    bootstrap: int = Field(description="Bootstrap resamples behind `ci`.")
    identical: bool = Field(description="The two empirical answer distributions are identical (same classes, "
                            "same proportions).")
    p_same: float = Field(ge=0.0, le=1.0, description="Exact permutation p-value of 'teacher and student share one "
                          "answer distribution' (TV statistic; divergence.null.p_same).")
    zero_level: float = Field(default=SAME_LEVEL, gt=0.0, lt=1.0, description="Level of the zero-delta test.")
    zero_delta: bool = Field(description="Teacher and student are indistinguishable at `zero_level`: "
                             "p_same > zero_level.")
    debiased: dict[str, float] = Field(description="Posterior mean of each distribution metric (tv, js, kl): Δ "
                                       "with the sampling noise of finite k taken out (divergence.null.posterior).")
    lower: dict[str, float] = Field(description="One-sided lower bound of each debiased metric at `ci_level`.")
    rounds: int = Field(description="Sampling rounds used (1 for a fixed run).")
    stop: str = Field(description=f"Why sampling stopped: one of {', '.join(STOP_REASONS)}.")
    simulated: bool = Field(default=False, description="True when a model was a simulation (sim: backend).")

    @model_validator(mode="before")
    @classmethod
    def _fill_statistics(cls, data: Any) -> Any:
        """Deltas written before p_same existed: `zero_delta` then meant identical; the test, the
        debiased metrics and their bounds are computed from the stored counts (a pure function of them)."""
        if isinstance(data, dict) and "p_same" not in data and isinstance(data.get("teacher"), dict) \
                and isinstance(data.get("student"), dict) and data["teacher"] and data["student"]:
            data = dict(data)
            stats = null_statistics(data["teacher"], data["student"], level=float(data.get("ci_level", 0.95)),
                                    zero_level=SAME_LEVEL)
            data.update(stats)
        return data

    def decide(self, rule: str, metric: str, min_delta: float, min_teacher_acc: float = 0.0) -> str:
        """Keep or drop under a screen rule: "kept", or why not ("zero_delta", "low_delta",
        "teacher_wrong"). See `keep_decision`."""
        return keep_decision(self, rule, metric, min_delta, min_teacher_acc)


class FamilyRow(BaseModel):
    """Screen figures of one family (`screen_run`)."""

    family: str
    scored: int
    zero_delta: int
    kept: int
    mean_delta: float = Field(description="Mean plug-in Δ.")
    mean_debiased: float | None = Field(default=None, description="Mean debiased Δ (distribution metrics).")
    teacher_accuracy: float
    student_accuracy: float


class ScreenReport(BaseModel):
    """What `screen_run` kept and why, overall and per family (fractions are of scored items)."""

    source: str
    out: str
    metric: str
    rule: str = Field(default="plugin", description=f"The keep rule: one of {', '.join(KEEP_RULES)} (keep_decision).")
    min_delta: float
    min_teacher_acc: float
    items: int
    scored: int
    unscored: int = Field(description="Items without a Delta: not kept (score the run to the end first).")
    zero_delta: int
    zero_delta_fraction: float
    kept: int
    kept_fraction: float
    dropped: dict[str, int] = Field(description="Scored items not kept, by reason.")
    families: list[FamilyRow]
    simulated: bool
    notes: list[str] = Field(default_factory=list)
    plot: str
    table: str

    def text_table(self) -> str:
        """The per-family figures as a fixed-width text table."""
        head = (f"{'family':<24}{'scored':>8}{'zero-Δ':>9}{'kept':>8}{'mean Δ':>9}{'debiased':>10}"
                f"{'T acc':>8}{'S acc':>8}")
        lines = [f"rule: {self.rule}, {self.metric} >= {self.min_delta:g}, teacher accuracy >= {self.min_teacher_acc:g}",
                 head, "-" * len(head)]
        for r in self.families:
            deb = "-" if r.mean_debiased is None else f"{r.mean_debiased:.3f}"
            lines.append(f"{r.family:<24}{r.scored:>8}{r.zero_delta / r.scored:>9.1%}{r.kept / r.scored:>8.1%}"
                         f"{r.mean_delta:>9.3f}{deb:>10}{r.teacher_accuracy:>8.2f}{r.student_accuracy:>8.2f}")
        return "\n".join(lines)


def item_seed(seed: int, item: str) -> int:
    """A per-item seed from a run seed, so an item's bootstrap does not depend on the item order."""
    return stable_int(f"{seed}|{item}", 8)


def make_delta(
    teacher: SampleSet, student: SampleSet, *, family: str, question_family: str, metric: str = "tv",
    forced: Sequence[ForcedScore] = (), bootstrap: int = 1000, level: float = 0.95, seed: int = 0,
    rounds: int = 1, stop: str = "fixed", simulated: bool = False, zero_level: float = SAME_LEVEL,
) -> Delta:
    """The Delta of one item from both models' samples; `forced` (teacher-forced scores of the
    teacher's samples) adds token_kl; `zero_level` is the zero-delta test's level. Raises UserError for empty sample sets or mismatched items,
    UnknownNameError for a metric outside tv/js/kl."""
    from deltaprompts.errors import UserError

    check_metric(metric, DISTRIBUTION_METRICS)
    if teacher.item != student.item or not teacher.samples or not student.samples:
        raise UserError(f"a Delta needs samples of both models for one item; got {len(teacher.samples)} teacher "
                        f"samples of {teacher.item!r} and {len(student.samples)} student samples of {student.item!r}")
    if stop not in STOP_REASONS:
        raise UserError(f"stop reason {stop!r} is not one of {', '.join(STOP_REASONS)}")
    t, s = teacher.counts, student.counts
    values = distribution_metrics(t, s)
    values["gap"] = correctness_gap(teacher.scores, student.scores)
    if forced:
        values["token_kl"] = token_kl([f.teacher_logprob for f in forced], [f.student_logprob for f in forced])
    ci = bootstrap_ci(teacher.classes, student.classes, metric, b=bootstrap, level=level,
                      seed=item_seed(seed, teacher.item))
    stats = null_statistics(t, s, level=level, zero_level=zero_level)
    return Delta(
        item=teacher.item, family=family, question_family=question_family, metric=metric, value=values[metric],
        values=values, teacher=t, student=s, teacher_accuracy=accuracy(teacher.scores),
        student_accuracy=accuracy(student.scores), n_teacher=len(teacher.samples), n_student=len(student.samples),
        ci=ci, ci_level=level, bootstrap=bootstrap, **stats, rounds=rounds, stop=stop, simulated=simulated,
    )


def null_statistics(t: dict[str, int], s: dict[str, int], *, level: float = 0.95,
                    zero_level: float = SAME_LEVEL) -> dict[str, Any]:
    """The fields of a Delta that separate the models from the dice: identical, p_same, zero_level,
    zero_delta, debiased and lower (see divergence.null)."""
    classes = sorted(set(t) | set(s))
    ct, cs = [t.get(c, 0) for c in classes], [s.get(c, 0) for c in classes]
    p = p_same(ct, cs)
    debiased, lower = {}, {}
    for m in DISTRIBUTION_METRICS:
        debiased[m], lower[m] = posterior(m, ct, cs, level=level)
    return {"identical": identical(t, s), "p_same": p, "zero_level": zero_level, "zero_delta": p > zero_level,
            "debiased": debiased, "lower": lower}


def keep_decision(d: Delta, rule: str, metric: str, min_delta: float, min_teacher_acc: float = 0.0) -> str:
    """Whether screen keeps an item: "kept", or the reason it does not ("zero_delta", "low_delta",
    "teacher_wrong"). Rules for the distribution metrics (tv, js, kl):

    - debiased (default): the item is not zero-delta (p_same <= zero_level) and its debiased Δ is at
      least `min_delta` (with `min_delta` <= 0 zero-delta items are kept too, as by the other rules);
    - confident: the lower bound of the debiased Δ is at least `min_delta` (P(Δ >= min_delta) >= ci_level);
    - plugin: the plug-in Δ of the samples is at least `min_delta` (the rule before the debiasing;
      it keeps items on sampling noise at small k).

    `gap` and `token_kl` are unbiased means already: every rule compares their value, and debiased
    and confident also drop zero-delta items. Then the teacher's accuracy must reach `min_teacher_acc`.
    Raises UserError for an unknown rule."""
    from deltaprompts.errors import UnknownNameError

    if rule not in KEEP_RULES:
        raise UnknownNameError("keep rule", str(rule), KEEP_RULES)
    distribution_metric = metric in DISTRIBUTION_METRICS
    if rule == "plugin" or not distribution_metric:
        high = d.values[metric] >= min_delta and (rule == "plugin" or not d.zero_delta)
    elif rule == "debiased":  # a threshold <= 0 asks for no divergence at all: zero-delta items pass it
        high = d.debiased[metric] >= min_delta and (min_delta <= 0 or not d.zero_delta)
    else:
        high = d.lower[metric] >= min_delta
    if not high:
        return "zero_delta" if d.zero_delta else "low_delta"
    return "kept" if d.teacher_accuracy >= min_teacher_acc else "teacher_wrong"
