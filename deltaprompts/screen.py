"""The screen stage: keep the items of a scored run whose Δ passes a rule, as a new run.

The keep rules themselves are `divergence.records.keep_decision`; this module applies one to a run
directory, writes the kept items (through `RunStore`) and their Deltas and score settings (through
`ScoreStore`), and the report files (`report/screen.json`, `screen.txt`, `delta_hist.png`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from deltaprompts.divergence.metrics import check_metric
from deltaprompts.divergence.records import DEFAULT_RULE, KEEP_RULES, Delta, FamilyRow, ScreenReport
from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.report import delta_histograms
from deltaprompts.review_log import rejected
from deltaprompts.store import RunStore, ScoreStore, atomic_write


def shown_delta(d: Delta, rule: str, metric: str) -> float:
    """The Δ a screen rule compares: the debiased value of a distribution metric unless the rule is plugin."""
    return d.debiased[metric] if rule != "plugin" and metric in d.debiased else d.values[metric]


def _check_args(src: Path, dst: Path, min_delta: float, min_teacher_acc: float, rule: str) -> None:
    if dst.resolve() == src.resolve():
        raise UserError(f"--out {dst} is the run being screened; choose a new directory")
    if not 0.0 <= min_teacher_acc <= 1.0:
        raise UserError(f"min_teacher_acc={min_teacher_acc} must be in [0, 1]")
    if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta):
        raise UserError(f"min_delta={min_delta!r} must be a finite number (e.g. 0.3)")
    if rule not in KEEP_RULES:
        raise UserError(f"unknown keep rule {rule!r}; allowed: {', '.join(KEEP_RULES)}")


def _check_metric(metric: str, deltas: dict[str, Delta], src: Path) -> str:
    metric = check_metric(metric)
    if any(metric not in d.values for d in deltas.values()):
        have = sorted(set.intersection(*(set(d.values) for d in deltas.values())))
        raise UserError(f"metric {metric!r} is missing from the Deltas of {src} (token_kl needs two models that score "
                        f"answers); available: {', '.join(have)}")
    return metric


def _notes(meta: dict[str, Any], metric: str, rule: str, min_delta: float, min_teacher_acc: float) -> list[str]:
    """Warnings where adaptive sampling stopped items for a different screen than this one."""
    if not meta.get("adaptive"):
        return []
    notes = []
    if meta.get("metric") == metric and meta.get("threshold") != min_delta:
        notes.append(f"adaptive sampling stopped items around threshold {meta.get('threshold')}, not {min_delta}: "
                     "decisions near min_delta rest on fewer samples")
    if (meta.get("min_teacher_acc") or 0.0) > min_teacher_acc:
        notes.append(f"adaptive sampling stopped items the teacher failed below accuracy "
                     f"{meta.get('min_teacher_acc')}, above this screen's {min_teacher_acc}: those rest on fewer samples")
    if rule != DEFAULT_RULE:
        notes.append(f"adaptive sampling aimed at the {DEFAULT_RULE} rule, not {rule}: decisions rest on fewer samples")
    return notes


def _family_rows(fam: dict[str, list[Delta]], kept_ids: set[str], metric: str) -> list[FamilyRow]:
    return [FamilyRow(family=f, scored=len(ds), zero_delta=sum(d.zero_delta for d in ds),
                      kept=sum(d.item in kept_ids for d in ds), mean_delta=sum(d.values[metric] for d in ds) / len(ds),
                      mean_debiased=sum(shown_delta(d, "debiased", metric) for d in ds) / len(ds),
                      teacher_accuracy=sum(d.teacher_accuracy for d in ds) / len(ds),
                      student_accuracy=sum(d.student_accuracy for d in ds) / len(ds)) for f, ds in sorted(fam.items())]


def _write(src: Path, dst: Path, kept: list[Item], deltas: dict[str, Delta], meta: dict[str, Any],
           manifest: dict[str, Any], report: ScreenReport, values: dict[str, list[float]], overwrite: bool) -> None:
    """Write the screened run next to `dst`, then rename it into place: whole or not at all."""
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise UserError(f"output directory {dst} is not empty: choose a new one, or pass --overwrite to replace it")
    RunStore(dst).prepare(resume=False, overwrite=overwrite)  # refuses to delete a non-run; leaves dst empty
    tmp = dst.parent / f".{dst.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    scores = ScoreStore(tmp, writer=True)
    scores.append_deltas(deltas[it.id] for it in sorted(kept, key=lambda it: it.id))
    kept_ids = {it.id for it in kept}
    source = ScoreStore(src)
    for role in ("teacher", "student"):  # the kept items' samples: teacher responses are training targets
        samples = [s for s in source.samples(role).values() if s.item in kept_ids]
        if samples:
            scores.sample_log(role).append(samples)
    if meta:
        scores.write_meta(meta)
    delta_histograms(tmp / "report" / "delta_hist.png", values, report)
    sim = "SIMULATED MODELS (sim: backends): these figures describe no real model.\n\n" if report.simulated else ""
    atomic_write(tmp / "report" / "screen.txt", sim + report.text_table() + "\n")
    atomic_write(tmp / "report" / "screen.json", report.model_dump_json(indent=2) + "\n")
    shard = int(manifest.get("config", {}).get("shard_size", 50) or 50)
    screen = {k: v for k, v in report.model_dump().items() if k not in ("families", "out")}
    RunStore(tmp).write_run(kept, src, {**manifest, "screen": screen}, shard_size=shard,
                            rejections=manifest.get("rejections"))
    os.rmdir(dst)
    os.replace(tmp, dst)


def screen_run(
    run_dir: Path | str, out_dir: Path | str, min_delta: float, min_teacher_acc: float = 0.0, metric: str | None = None,
    *, overwrite: bool = False, rule: str = DEFAULT_RULE,
) -> ScreenReport:
    """Write a new run directory with the items whose Δ (`metric`, default the one scored) passes
    `min_delta` under `rule` (debiased, confident or plugin: `divergence.records.keep_decision`) and
    whose teacher accuracy is at least `min_teacher_acc`; images are hard-linked (copied across
    file systems), kept Deltas and the score settings are carried over, and `report/` holds
    screen.json, screen.txt (per-family table) and delta_hist.png.

    The new directory appears whole or not at all. Returns the ScreenReport. Raises UserError for
    a run without Deltas, an unknown metric, rule or one the Deltas lack, thresholds out of range, or an
    output directory that is the source or is not empty (without `overwrite`).
    """
    src, dst = Path(run_dir), Path(out_dir)
    _check_args(src, dst, min_delta, min_teacher_acc, rule)
    source = RunStore(src)
    manifest = source.read_manifest()
    deltas = ScoreStore(src).deltas(required=True)
    meta = ScoreStore(src).meta()
    metric = _check_metric(metric or meta.get("metric", "tv"), deltas, src)
    items = list(source.iter_items())
    refused = rejected(src)  # review.jsonl: items a person rejected are dropped whatever their Δ
    kept: list[Item] = []
    dropped: Counter = Counter()
    values: dict[str, list[float]] = {}
    fam: dict[str, list[Delta]] = {}
    for item in items:
        d = deltas.get(item.id)
        if d is None:
            continue
        values.setdefault(item.family, []).append(shown_delta(d, rule, metric))
        fam.setdefault(item.family, []).append(d)
        decision = "rejected_in_review" if item.id in refused else d.decide(rule, metric, min_delta, min_teacher_acc)
        if decision == "kept":
            kept.append(item)
        else:
            dropped[decision] += 1
    rows = _family_rows(fam, {it.id for it in kept}, metric)
    scored = sum(r.scored for r in rows)
    zero = sum(r.zero_delta for r in rows)
    report = ScreenReport(
        source=str(src), out=str(dst), metric=metric, rule=rule, min_delta=min_delta, min_teacher_acc=min_teacher_acc,
        items=len(items), scored=scored, unscored=len(items) - scored, zero_delta=zero,
        zero_delta_fraction=zero / scored if scored else 0.0, kept=len(kept),
        kept_fraction=len(kept) / scored if scored else 0.0, dropped=dict(sorted(dropped.items())), families=rows,
        simulated=bool(meta.get("simulated")), notes=_notes(meta, metric, rule, min_delta, min_teacher_acc),
        plot=str(dst / "report" / "delta_hist.png"), table=str(dst / "report" / "screen.txt"),
    )
    _write(src, dst, kept, deltas, meta, manifest, report, values, overwrite)
    return report
