"""The pipeline commands: `seed`, `mine`, `audit`, `synthesize`, `run`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from deltaprompts.cli.app import app, err, handles_errors, out, say_simulated


def _import_options(source: Path, name: Optional[str], image_column: str, question_column: str, answer_column: str,
                    answer_type: str, domain: str, split: Optional[str], tag_column: Optional[list[str]],
                    limit: Optional[int]) -> Any:
    """The ExternalSeed config of an import from the command line's options."""
    from deltaprompts.pipeline.config import ExternalSeed

    return ExternalSeed(path=str(source.resolve()), name=name, image_column=image_column,
                        question_column=question_column, answer_column=answer_column, answer_type=answer_type,
                        domain=domain, split=split, tag_columns=list(tag_column or []), limit=limit)


def _config_run(config: Path, stop_after: Optional[str], teacher: Optional[str] = None,
                student: Optional[str] = None, rounds: Optional[int] = None, resume: bool = False,
                overwrite: bool = False, stage_command: bool = False, executor: Any = None) -> dict[str, Any]:
    """Run a pipeline config (with the command line's overrides) up to `stop_after`, scoring and rendering
    on `executor` (a RayScoring) when given; return its manifest."""
    from deltaprompts.pipeline.config import load_config
    from deltaprompts.pipeline.rounds import run_pipeline

    cfg = load_config(config)
    if teacher:
        cfg.models.teacher = teacher
    if student:
        cfg.models.student = student
    if rounds is not None:
        cfg.rounds = rounds
    if stage_command:  # a stage command continues the run in `out` when there is one
        from deltaprompts.store import RunStore

        resume = RunStore(cfg.out).is_run()
    return run_pipeline(cfg, resume=resume, overwrite=overwrite, stop_after=stop_after,
                        log=lambda msg: err.print(msg, highlight=False), command=f"deltaprompts run {config}",
                        executor=executor)


def _say_tolerances(tolerances: dict | None) -> None:
    """One line: how many answers are scored under each tolerance source, and the unknown ones' rule."""
    if not tolerances or not tolerances.get("by_source"):
        return
    used = ", ".join(f"{n} {src}" for src, n in tolerances["by_source"].items())
    unknown = f"; unknown ones: {tolerances['unknown']}" if tolerances.get("unknown") else ""
    out.print(f"tolerances (docs/verifiers.md): {used}{unknown}")


@app.command("seed")
@handles_errors
def seed_cmd(
    source: Optional[Path] = typer.Argument(None, help="A JSONL file or a Hugging Face dataset folder to import."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory to write the import to."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run the seed stage of a pipeline config."),
    name: Optional[str] = typer.Option(None, help="Name of the imported set (family external.NAME)."),
    image_column: str = typer.Option("image", "--image-column"),
    question_column: str = typer.Option("question", "--question-column"),
    answer_column: str = typer.Option("answer", "--answer-column"),
    answer_type: str = typer.Option("infer", "--answer-type", help="infer (number if it parses, else string) "
                                    "or an answer type."),
    domain: str = typer.Option("chart", "--domain", help="chart, document or scene."),
    split: Optional[str] = typer.Option(None, "--split", help="Split of a dataset with several."),
    tag_column: Optional[list[str]] = typer.Option(None, "--tag-column", help="Column kept as a knob; repeatable."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Import at most this many rows."),
) -> None:
    """Write a seed set: import an external set (SOURCE --out DIR), or run a config's seed stage (--config)."""
    from deltaprompts.errors import UserError

    if config is not None:
        given = [flag for flag, value, default in (
            ("SOURCE", source, None), ("--out", out_dir, None), ("--name", name, None),
            ("--image-column", image_column, "image"), ("--question-column", question_column, "question"),
            ("--answer-column", answer_column, "answer"), ("--answer-type", answer_type, "infer"),
            ("--domain", domain, "chart"), ("--split", split, None), ("--tag-column", tag_column or None, None),
            ("--limit", limit, None)) if value != default]
        if given:
            raise UserError(f"--config runs the config's seed stage, so {', '.join(given)} would be ignored: "
                            "set them in the config (out, seed.external) or drop --config")
        _seed_stage(config)
        return
    if source is None or out_dir is None:
        raise UserError("give SOURCE and --out DIR to import an external set, or --config CONFIG")
    from deltaprompts.pipeline.external import import_external

    m = import_external(_import_options(source, name, image_column, question_column, answer_column, answer_type,
                                        domain, split, tag_column, limit), out_dir)
    out.print(f"imported {m['counts']['items']} items to {out_dir}")
    if m.get("rejections"):
        out.print("not imported: " + ", ".join(f"{k}={v}" for k, v in m["rejections"].items()))
    _say_tolerances(m.get("tolerances"))


def _seed_stage(config: Path) -> None:
    """`seed --config`: run the config's seed stage and say where it went."""
    m = _config_run(config, "seed", stage_command=True)
    seed_dir = Path(m["config"]["out"]) / "seed"
    out.print(f"seed stage done under {seed_dir}")
    from deltaprompts.store import RunStore

    if RunStore(seed_dir).is_run():
        _say_tolerances(RunStore(seed_dir).read_manifest().get("tolerances"))


@app.command()
@handles_errors
def mine(
    run_dir: Optional[Path] = typer.Argument(None, help="A run directory (scored first if it has no Deltas)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run a config's pipeline up to mine."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Teacher spec (to score an unscored run)."),
    student: Optional[str] = typer.Option(None, "--student", help="Student spec (to score an unscored run)."),
    k: int = typer.Option(8, "--k", min=1),
    event: str = typer.Option("delta", "--event", help="delta (screen would keep it) or failure (student wrong "
                              "where the teacher is right)."),
    min_support: int = typer.Option(5, "--min-support", min=1),
    bins: int = typer.Option(3, "--bins", min=2, max=10, help="Quantile bins of numeric knobs."),
    min_delta: Optional[float] = typer.Option(None, "--min-delta"),
    min_teacher_acc: float = typer.Option(0.5, "--min-teacher-acc", min=0.0, max=1.0),
    describe: bool = typer.Option(False, "--describe", help="The teacher describes each top pattern."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="SQLite response cache."),
) -> None:
    """Find failure patterns of a scored run (writes RUN/mine/patterns.json) and show them."""
    from deltaprompts.errors import UserError
    from deltaprompts.pipeline.config import MineConfig
    from deltaprompts.pipeline.mine import mine_run, patterns_table, read_patterns

    if config is not None:
        m = _config_run(config, "mine", stage_command=True)
        out.print(patterns_table(read_patterns(m["config"]["out"])))
        return
    if run_dir is None:
        raise UserError("give a RUN directory, or --config CONFIG")
    cfg = MineConfig(event=event, min_support=min_support, bins=bins, describe=describe)
    t = _score_for_mine(run_dir, teacher, student, k, cache, describe)
    rep = mine_run(run_dir, run_dir / "mine", cfg, min_delta=min_delta, min_teacher_acc=min_teacher_acc,
                   describe_with=t)
    out.print(patterns_table(rep))
    for p in rep.patterns[:5]:
        if p.description:
            out.print(f"[bold]{p.label()}[/]: {p.description}", highlight=False)
    out.print(f"patterns: {run_dir / 'mine' / 'patterns.json'}")


def _score_for_mine(run_dir: Path, teacher: Optional[str], student: Optional[str], k: int, cache: Optional[Path],
                    describe: bool) -> Any:
    """Score the run first when `mine` was given models; return the teacher backend (None without models)."""
    from deltaprompts.errors import UserError

    if not (teacher or student):
        if describe:
            raise UserError("--describe needs --teacher (and --student)")
        return None
    if not (teacher and student):
        raise UserError("--teacher and --student go together")
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run

    t, s = load_backend(teacher), load_backend(student)
    score_run(run_dir, t, s, k=k, sampling=Sampling(), cache_path=cache)
    return t


@app.command()
@handles_errors
def audit(
    source: Path = typer.Argument(..., help="A run directory, a JSONL file or a Hugging Face dataset folder."),
    teacher: str = typer.Option(..., "--teacher", help="Teacher model spec."),
    student: str = typer.Option(..., "--student", help="Student model spec."),
    k: int = typer.Option(8, "--k", min=1, help="Samples per model per item."),
    work: Optional[Path] = typer.Option(None, "--out", "-o", help="Where an external set is imported "
                                        "(default: SOURCE-audit beside it)."),
    metric: str = typer.Option("tv", "--metric"),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals, in (0, 1)."),
    zero_level: float = typer.Option(0.05, "--zero-level", help="Level of the zero-delta test, in (0, 1): an "
                                     "item is zero-delta when its permutation p-value exceeds it."),
    seed: int = typer.Option(0, "--seed"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="SQLite response cache."),
    image_column: str = typer.Option("image", "--image-column"),
    question_column: str = typer.Option("question", "--question-column"),
    answer_column: str = typer.Option("answer", "--answer-column"),
    answer_type: str = typer.Option("infer", "--answer-type"),
    split: Optional[str] = typer.Option(None, "--split"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1),
    executor: str = typer.Option("local", "--executor", help="local, or ray: score on Ray actors (the same files)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="The Ray cluster (default: $RAY_ADDRESS, "
                                              "else a local one of --workers CPUs)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="CPUs of a local Ray cluster."),
    gpus_per_model: float = typer.Option(0.0, "--gpus-per-model", min=0.0, help="GPUs of each hf: model actor."),
    model_actors: int = typer.Option(1, "--model-actors", min=1, help="Actors per hf: model."),
) -> None:
    """How much of a dataset teaches nothing: its zero-delta fraction with confidence intervals. On a screened
    run scored by another pair: how much of the kept set is still kept for this pair (transfer)."""
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.pipeline.audit import audit_run, is_transfer, prepare_source
    from deltaprompts.score_ray import make_executor
    from deltaprompts.store import RunStore

    pool = make_executor(executor, ray_address, workers, gpus_per_model, model_actors)
    ext = None
    if not RunStore(source).is_run():
        ext = _import_options(source, None, image_column, question_column, answer_column, answer_type, "chart",
                              split, None, limit)
    run = prepare_source(source, work, ext)
    with pool or contextlib.nullcontext():
        if ext is None and is_transfer(run, load_backend(teacher), load_backend(student)):
            return _transfer(run, teacher, student, k, level, zero_level, seed, cache, pool)
        rep = audit_run(run, load_backend(teacher), load_backend(student), k, metric=metric, level=level,
                        sampling=Sampling(seed=seed), cache_path=cache, seed=seed, zero_level=zero_level,
                        executor=pool)
    say_simulated(rep.simulated)
    out.print(f"zero-delta: {rep.zero_delta} of {rep.items} items = {rep.zero_delta_fraction:.1%} "
              f"({rep.level:.0%} Wilson {rep.wilson[0]:.1%}-{rep.wilson[1]:.1%}, bootstrap "
              f"{rep.bootstrap[0]:.1%}-{rep.bootstrap[1]:.1%}) teach the student nothing at k={rep.k} "
              f"(indistinguishable at level {rep.zero_level:g})")
    out.print(f"identical answer distributions: {rep.identical} of {rep.items} = {rep.identical_fraction:.1%} "
              f"({rep.level:.0%} Wilson {rep.identical_wilson[0]:.1%}-{rep.identical_wilson[1]:.1%})")
    for title, rows in (("family", rep.families), ("question family", rep.question_families)):
        out.print(_audit_table(title, rows, rep.level))
    _say_tolerances(rep.tolerances)
    out.print(f"audit: {Path(run) / 'audit.json'}")


def _transfer(run: Path, teacher: str, student: str, k: int, level: float, zero_level: float, seed: int,
              cache: Optional[Path], pool: Any = None) -> None:
    """`audit` on a screened run with another pair: the kept set's share still kept, and its zero-delta share."""
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.pipeline.audit import TRANSFER_FILE, transfer_run

    rep = transfer_run(run, load_backend(teacher), load_backend(student), k, sampling=Sampling(seed=seed),
                       cache_path=cache, level=level, seed=seed, zero_level=zero_level, executor=pool)
    say_simulated(rep.simulated)
    out.print(f"transfer: kept by {rep.original['teacher']} -> {rep.original['student']}; "
              f"scored again by {rep.teacher} -> {rep.student} (k={rep.k})", highlight=False)
    out.print(f"still kept: {rep.still_kept} of {rep.items} = {rep.still_kept_fraction:.1%} ({rep.level:.0%} Wilson "
              f"{rep.wilson[0]:.1%}-{rep.wilson[1]:.1%}) under the run's rule ({rep.rule}, Δ >= {rep.min_delta:g})",
              highlight=False)
    out.print(f"zero-delta for the new pair: {rep.zero_delta} of {rep.items} = {rep.zero_delta_fraction:.1%} "
              f"(Wilson {rep.zero_delta_wilson[0]:.1%}-{rep.zero_delta_wilson[1]:.1%}); mean debiased Δ "
              f"{rep.mean_debiased['original']:.3f} -> {rep.mean_debiased['new']:.3f}", highlight=False)
    if rep.dropped:
        out.print("not kept: " + ", ".join(f"{v} {k}" for k, v in rep.dropped.items()), highlight=False)
    out.print(f"transfer: {run / TRANSFER_FILE} (scores in {rep.scores})", highlight=False)


def _audit_table(title: str, rows: list[Any], level: float) -> Table:
    """Audit's zero-delta table by `title` (family or question family), accuracies in percent."""
    t = Table(title=f"zero-delta by {title} (%, with {level:.0%} Wilson intervals)", box=box.SIMPLE_HEAD,
              pad_edge=False)
    t.add_column(title, justify="left", no_wrap=True)
    for col in ("n", "zero-Δ", "identical", "Δ/debiased", "acc T/S"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r.group, str(r.items), _share(r.fraction, r.ci), _share(r.identical_fraction, r.identical_ci),
                  f"{r.mean_delta:.2f}/{r.mean_debiased:.2f}",
                  f"{r.teacher_accuracy * 100:.0f}/{r.student_accuracy * 100:.0f}")
    return t


def _share(fraction: float, ci: tuple[float, float]) -> str:
    """A share and its interval in percent, compactly: '64 58-69'."""
    return f"{fraction * 100:.0f} {ci[0] * 100:.0f}-{ci[1] * 100:.0f}"


@app.command()
@handles_errors
def synthesize(
    config: Path = typer.Argument(..., help="A pipeline config (TOML or YAML)."),
) -> None:
    """Run a config's pipeline up to the next round's synthesize stage (rendered, teacher questions)."""
    m = _config_run(config, "synthesize", stage_command=True)
    out.print(f"{m['pipeline'].get('stopped') or 'nothing left to synthesize'} under {m['config']['out']}")


@app.command("run")
@handles_errors
def run_cmd(
    config: Path = typer.Argument(..., help="A pipeline config (TOML or YAML)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the config's `out`."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in the config's `out`."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Override models.teacher."),
    student: Optional[str] = typer.Option(None, "--student", help="Override models.student."),
    rounds: Optional[int] = typer.Option(None, "--rounds", min=0, help="Override rounds."),
    executor: str = typer.Option("local", "--executor", help="local, or ray: score stages on Ray actors and "
                                 "cells rendered as Ray tasks (the same files). Needs deltaprompts[ray]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="The Ray cluster (default: $RAY_ADDRESS, "
                                              "else a local one of --workers CPUs); `out` on a shared filesystem."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="CPUs of a local Ray cluster."),
    gpus_per_model: float = typer.Option(0.0, "--gpus-per-model", min=0.0, help="GPUs of each hf: model actor."),
    model_actors: int = typer.Option(1, "--model-actors", min=1, help="Actors per hf: model."),
) -> None:
    """seed -> mine -> (synthesize -> score -> screen) for R rounds or until `target` items are kept."""
    from deltaprompts.score_ray import make_executor

    pool = make_executor(executor, ray_address, workers, gpus_per_model, model_actors)
    with pool or contextlib.nullcontext():
        m = _config_run(config, None, teacher, student, rounds, resume, overwrite, executor=pool)
    _show_rounds(Path(m["config"]["out"]))
    out.print(f"kept {m['counts']['items']} items in {m['config']['out']} ({m['pipeline'].get('stopped')})")


def _show_rounds(root: Path) -> None:
    """The yield-per-round table of a pipeline run (nothing when it has no rounds.json rows)."""
    from deltaprompts.pipeline.runroot import read_rounds

    rows = read_rounds(root)
    if not rows:
        return
    t = Table(title=f"yield per round ({root / 'rounds.json'})")
    for col in ("round", "generated", "screened", "kept", "zero-Δ", "teacher accepted", "arms"):
        t.add_column(col, justify="left" if col == "arms" else "right")
    for r in rows:
        tq = r.get("teacher") or {}
        z = r.get("zero_delta_fraction")
        t.add_row(str(r["round"]), str(r["generated"]), str(r["screened"]), str(r["kept"]),
                  "-" if z is None else f"{z:.1%}",
                  f"{tq.get('accepted', 0)}/{tq.get('replies', 0)}" if tq else "-",
                  ", ".join(f"{a}:{c['kept']}/{c['generated']}" for a, c in sorted(r.get("arms", {}).items())))
    out.print(t)
