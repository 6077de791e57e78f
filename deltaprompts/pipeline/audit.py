"""Audit a dataset: how much of it is zero-delta (teaches the student nothing), with confidence intervals.

Any run directory (generated, screened, imported) or an external set (JSONL, Hugging Face dataset
on disk, imported first) is scored with `score_run` and its zero-delta fraction reported with a
Wilson interval and a percentile bootstrap, overall and per family and question family. Zero-delta
is statistical (teacher and student indistinguishable by the exact permutation test at
`zero_level`, divergence.null.p_same); the share of items whose two empirical distributions are
identical is reported beside it, with its own interval.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from deltaprompts.divergence.null import SAME_LEVEL, check_level
from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend, Sampling
from deltaprompts.pipeline.config import ExternalSeed
from deltaprompts.pipeline.stats import bootstrap_proportion, wilson
from deltaprompts.store import RunStore, ScoreStore, atomic_write
from deltaprompts.tolerances import summary as tolerance_summary

if TYPE_CHECKING:
    from deltaprompts.score_ray import RayScoring

AUDIT_FILE = "audit.json"


class AuditRow(BaseModel):
    """The zero-delta figures of one group of items."""

    group: str
    items: int
    zero_delta: int = Field(description="Items indistinguishable at the report's zero_level.")
    fraction: float
    ci: tuple[float, float]
    identical: int = Field(description="Items whose two empirical answer distributions are identical.")
    identical_fraction: float
    identical_ci: tuple[float, float]
    mean_delta: float = Field(description="Mean plug-in Δ.")
    mean_debiased: float = Field(description="Mean debiased Δ (posterior mean, divergence.null).")
    teacher_accuracy: float
    student_accuracy: float


class AuditReport(BaseModel):
    """What `audit.json` holds."""

    run: str
    teacher: str
    student: str
    k: int
    metric: str
    items: int
    zero_level: float = Field(description="Level of the zero-delta test: zero-delta means p_same > zero_level.")
    zero_delta: int
    zero_delta_fraction: float
    level: float = Field(description="Confidence level of the intervals.")
    wilson: tuple[float, float]
    bootstrap: tuple[float, float]
    identical: int = Field(description="Items whose two empirical answer distributions are identical.")
    identical_fraction: float
    identical_wilson: tuple[float, float]
    families: list[AuditRow]
    question_families: list[AuditRow]
    simulated: bool
    notes: list[str] = Field(default_factory=list)
    tolerances: dict[str, Any] = Field(default_factory=dict, description="How answers were scored: items per "
                                       "tolerance source, and the rule of the unknown ones (deltaprompts.tolerances).")


def _row(group: str, ds: list[Any], level: float) -> AuditRow:
    z = sum(d.zero_delta for d in ds)
    same = sum(d.identical for d in ds)
    n = len(ds)
    return AuditRow(group=group, items=n, zero_delta=z, fraction=z / n, ci=wilson(z, n, level), identical=same,
                    identical_fraction=same / n, identical_ci=wilson(same, n, level),
                    mean_delta=sum(d.value for d in ds) / n, mean_debiased=sum(d.debiased[d.metric] for d in ds) / n,
                    teacher_accuracy=sum(d.teacher_accuracy for d in ds) / n,
                    student_accuracy=sum(d.student_accuracy for d in ds) / n)


def prepare_source(source: Path | str, work: Path | str | None = None, external: ExternalSeed | None = None) -> Path:
    """The run directory to audit: `source` itself when it is a run, else the external set
    imported into `work` (default: `<source>-audit` beside it). Raises UserError for a missing source."""
    from deltaprompts.pipeline.external import import_external

    src = Path(source)
    if RunStore(src).is_run():
        return src
    if not src.exists():
        raise UserError(f"{src} does not exist: give a run directory, a JSONL file or a Hugging Face dataset folder")
    out = Path(work) if work is not None else src.parent / f"{src.stem}-audit"
    cfg = (external or ExternalSeed(path=str(src))).model_copy(update={"path": str(src.resolve())})
    import_external(cfg, out)
    return out


def audit_run(run_dir: Path | str, teacher: Backend, student: Backend, k: int = 8, *, metric: str = "tv",
              sampling: Sampling | None = None, prompt_format: str = "plain", cache_path: Path | str | None = None,
              level: float = 0.95, bootstrap: int = 2000, seed: int = 0, batch_size: int = 32,
              zero_level: float = SAME_LEVEL, executor: RayScoring | None = None) -> AuditReport:
    """Score `run_dir` (resumable; only missing samples are asked for) and report its zero-delta
    fraction (teacher and student indistinguishable at `zero_level`) and its identical fraction, with
    intervals at `level`; writes `audit.json` into the run. Raises UserError for a run without items,
    a level outside (0, 1) or scores made with other settings; DeltaError when a model fails.
    `executor` (a RayScoring) scores on its Ray cluster."""
    from deltaprompts.score import score_run

    check_level(level, "level")
    check_level(zero_level, "zero_level")
    summary = score_run(run_dir, teacher, student, k=k, metric=metric, sampling=sampling or Sampling(seed=seed),
                        prompt_format=prompt_format, cache_path=cache_path, batch_size=batch_size, seed=seed,
                        zero_level=zero_level, executor=executor)
    questions = {it.id: it.question for it in RunStore(run_dir).iter_items()}
    ids = set(questions)
    # the test's level is the audit's: a Delta scored at another level is judged again from its p_same
    deltas = [d.model_copy(update={"zero_level": zero_level, "zero_delta": d.p_same > zero_level})
              for i, d in ScoreStore(run_dir).deltas(required=True).items() if i in ids]
    if not deltas:
        raise UserError(f"{run_dir} has no items to audit")
    n, z, same = len(deltas), sum(d.zero_delta for d in deltas), sum(d.identical for d in deltas)
    groups: dict[str, dict[str, list[Any]]] = {"family": defaultdict(list), "question_family": defaultdict(list)}
    for d in deltas:
        groups["family"][d.family].append(d)
        groups["question_family"][d.question_family].append(d)
    notes = [f"zero-delta means the {k} samples of each model cannot be told apart by an exact permutation test at "
             f"level {zero_level:g} (p_same > {zero_level:g}); 'identical' means they fall on the same answer classes "
             "in the same proportions. Both depend on k: compare sets audited at the same k"]
    if summary.simulated:
        notes.insert(0, "SIMULATED MODELS (sim: backends): these figures describe no real model")
    tolerances = tolerance_summary(questions[d.item] for d in deltas)
    used = ", ".join(f"{count} {src}" for src, count in tolerances["by_source"].items())
    unknown = f"; unknown (external imports): {tolerances['unknown']}" if "unknown" in tolerances else ""
    notes.append(f"answers scored with each question's own tolerance (docs/verifiers.md, Tolerance policy): "
                 f"{used}{unknown}")
    report = AuditReport(
        run=str(run_dir), teacher=teacher.identity, student=student.identity, k=k, metric=metric, items=n,
        zero_level=zero_level, zero_delta=z, zero_delta_fraction=z / n, level=level, wilson=wilson(z, n, level),
        bootstrap=bootstrap_proportion(z, n, level, bootstrap, seed), identical=same, identical_fraction=same / n,
        identical_wilson=wilson(same, n, level),
        families=[_row(g, ds, level) for g, ds in sorted(groups["family"].items())],
        question_families=[_row(g, ds, level) for g, ds in sorted(groups["question_family"].items())],
        simulated=summary.simulated, notes=notes, tolerances=tolerances)
    atomic_write(Path(run_dir) / AUDIT_FILE, report.model_dump_json(indent=2) + "\n")
    return report


# ------------------------------------------------------------------ transfer to another pair

TRANSFER_DIR = "transfer"
TRANSFER_FILE = "transfer.json"


class TransferRow(BaseModel):
    """How one family of the kept set fares under the new pair."""

    group: str
    items: int
    still_kept: int
    fraction: float
    ci: tuple[float, float]


class TransferReport(BaseModel):
    """What `transfer.json` holds: a screened run's kept set scored by a second teacher-student pair and
    judged by the run's own keep rule (its manifest's `screen` entry)."""

    run: str
    original: dict[str, str] = Field(description="The pair the run was screened with: teacher, student.")
    teacher: str
    student: str
    scores: str = Field(description="Where the new pair's scores are (the original pair's are untouched).")
    k: int
    metric: str
    rule: str
    min_delta: float
    min_teacher_acc: float
    zero_level: float
    level: float
    items: int
    still_kept: int = Field(description="Kept items the screen rule keeps again under the new pair.")
    still_kept_fraction: float
    wilson: tuple[float, float]
    dropped: dict[str, int] = Field(description="Why the others fail under the new pair (keep_decision reasons).")
    zero_delta: int
    zero_delta_fraction: float
    zero_delta_wilson: tuple[float, float]
    mean_debiased: dict[str, float] = Field(description="Mean debiased Δ of the kept set: original and new pair.")
    teacher_accuracy: dict[str, float]
    student_accuracy: dict[str, float]
    families: list[TransferRow]
    simulated: bool
    notes: list[str] = Field(default_factory=list)


def pair_dir(run_dir: Path | str, teacher: Backend, student: Backend, k: int) -> Path:
    """RUN/transfer/<hash of the pair and k>/: the new pair's scores live in its scores/."""
    import hashlib

    h = hashlib.sha256(f"{teacher.identity}\0{student.identity}\0{k}".encode()).hexdigest()[:12]
    return Path(run_dir) / TRANSFER_DIR / h


def is_transfer(run_dir: Path | str, teacher: Backend, student: Backend) -> bool:
    """Whether auditing `run_dir` with this pair is a transfer: a screened run scored by another pair."""
    meta = ScoreStore(run_dir).meta()
    screened = bool(RunStore(run_dir).read_manifest().get("screen"))
    return screened and bool(meta) and (meta.get("teacher"), meta.get("student")) != (teacher.identity, student.identity)


def transfer_run(run_dir: Path | str, teacher: Backend, student: Backend, k: int = 8, *,
                 sampling: Sampling | None = None, cache_path: Path | str | None = None, level: float = 0.95,
                 seed: int = 0, batch_size: int = 32, zero_level: float = SAME_LEVEL,
                 executor: RayScoring | None = None) -> TransferReport:
    """Score a screened run's kept items with a second pair (into RUN/transfer/<pair>/scores, resumable)
    and report the share still kept by the run's own screen rule (debiased Δ, zero-delta test,
    min_delta, min_teacher_acc from its manifest), with a Wilson interval, and the zero-delta
    fraction; writes RUN/transfer.json and RUN/transfer/<pair>/transfer.json. Raises UserError
    for a run that was not screened or has no scores. `executor` (a RayScoring) scores on its Ray cluster."""
    from deltaprompts.score import score_run

    check_level(level, "level")
    check_level(zero_level, "zero_level")
    run = Path(run_dir)
    screen = RunStore(run).read_manifest().get("screen")
    if not screen:
        raise UserError(f"{run} is not a screened run (its manifest has no 'screen' entry): run `deltaprompts screen` "
                        "first, then audit the kept set with the other pair")
    meta = ScoreStore(run).meta()
    metric, rule = screen.get("metric") or meta.get("metric", "tv"), screen.get("rule", "debiased")
    min_delta, min_acc = float(screen["min_delta"]), float(screen.get("min_teacher_acc", 0.0))
    root = pair_dir(run, teacher, student, k)
    summary = score_run(run, teacher, student, k=k, metric=metric, sampling=sampling or Sampling(seed=seed),
                        cache_path=cache_path, batch_size=batch_size, seed=seed, zero_level=zero_level,
                        prompt_format=meta.get("prompt_format", "plain"), threshold=min_delta,
                        min_teacher_acc=min_acc, scores_root=root, executor=executor)
    ids = {it.id for it in RunStore(run).iter_items()}
    old = {i: d for i, d in ScoreStore(run).deltas().items() if i in ids}
    new = [d.model_copy(update={"zero_level": zero_level, "zero_delta": d.p_same > zero_level})
           for i, d in ScoreStore(root).deltas(required=True).items() if i in ids]
    if not new:
        raise UserError(f"{run} has no items to audit")
    decisions = {d.item: d.decide(rule, metric, min_delta, min_acc) for d in new}
    n, kept, zero = len(new), sum(v == "kept" for v in decisions.values()), sum(d.zero_delta for d in new)
    fams: dict[str, list[Any]] = defaultdict(list)
    for d in new:
        fams[d.family].append(d)

    def mean(ds: Any, f: Any) -> float:
        ds = list(ds)
        return sum(map(f, ds)) / len(ds) if ds else 0.0

    def debiased(d: Any) -> float:
        return d.debiased.get(metric, d.values[metric])

    notes = [f"kept again = the run's own screen rule ({rule}, Δ {metric} >= {min_delta:g}, teacher accuracy >= "
             f"{min_acc:g}, not zero-delta at level {zero_level:g}) applied to the new pair's scores at k={k}"]
    if summary.simulated:
        notes.insert(0, "SIMULATED MODELS (sim: backends): these figures describe no real model")
    report = TransferReport(
        run=str(run), original={"teacher": meta.get("teacher", "?"), "student": meta.get("student", "?")},
        teacher=teacher.identity, student=student.identity, scores=str(root / ScoreStore.DIR), k=k, metric=metric,
        rule=rule, min_delta=min_delta, min_teacher_acc=min_acc, zero_level=zero_level, level=level, items=n,
        still_kept=kept, still_kept_fraction=kept / n, wilson=wilson(kept, n, level),
        dropped=dict(sorted(Counter(v for v in decisions.values() if v != "kept").items())),
        zero_delta=zero, zero_delta_fraction=zero / n, zero_delta_wilson=wilson(zero, n, level),
        mean_debiased={"original": mean(old.values(), debiased), "new": mean(new, debiased)},
        teacher_accuracy={"original": mean(old.values(), lambda d: d.teacher_accuracy),
                          "new": mean(new, lambda d: d.teacher_accuracy)},
        student_accuracy={"original": mean(old.values(), lambda d: d.student_accuracy),
                          "new": mean(new, lambda d: d.student_accuracy)},
        families=[TransferRow(group=f, items=len(ds), still_kept=(s := sum(decisions[d.item] == "kept" for d in ds)),
                              fraction=s / len(ds), ci=wilson(s, len(ds), level)) for f, ds in sorted(fams.items())],
        simulated=summary.simulated, notes=notes)
    text = report.model_dump_json(indent=2) + "\n"
    atomic_write(root / TRANSFER_FILE, text)
    atomic_write(run / TRANSFER_FILE, text)
    return report
