"""Audit a dataset: how much of it is zero-delta (teaches the student nothing), with confidence intervals.

Any run directory (generated, screened, imported) or an external set (JSONL, Hugging Face dataset
on disk, imported first) is scored with `score_run` and its zero-delta fraction reported with a
Wilson interval and a percentile bootstrap, overall and per family and question family. Zero-delta
is statistical (teacher and student indistinguishable by the exact permutation test at
`zero_level`, divergence.null.p_same); the share of items whose two empirical distributions are
identical is reported beside it, with its own interval.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from deltaprompts.divergence.null import SAME_LEVEL, check_level
from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend, Sampling
from deltaprompts.pipeline.config import ExternalSeed
from deltaprompts.pipeline.stats import bootstrap_proportion, wilson
from deltaprompts.store import RunStore, ScoreStore, atomic_write
from deltaprompts.tolerances import summary as tolerance_summary

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
              zero_level: float = SAME_LEVEL) -> AuditReport:
    """Score `run_dir` (resumable; only missing samples are asked for) and report its zero-delta
    fraction (teacher and student indistinguishable at `zero_level`) and its identical fraction, with
    intervals at `level`; writes `audit.json` into the run. Raises UserError for a run without items,
    a level outside (0, 1) or scores made with other settings; DeltaError when a model fails."""
    from deltaprompts.score import score_run

    check_level(level, "level")
    check_level(zero_level, "zero_level")
    summary = score_run(run_dir, teacher, student, k=k, metric=metric, sampling=sampling or Sampling(seed=seed),
                        prompt_format=prompt_format, cache_path=cache_path, batch_size=batch_size, seed=seed,
                        zero_level=zero_level)
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
