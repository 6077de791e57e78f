"""Commands that score answers and runs: `score-answer`, `score`, `screen`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deltaprompts.cli.app import app, err, handles_errors, out, say_simulated


@app.command("score-answer")
@handles_errors
def score_answer_cmd(
    prediction: str = typer.Argument(..., help="A model's output (free text)."),
    ground_truth: str = typer.Argument(...),
    answer_type: str = typer.Option("string", "--type", "-t", help="number, count, percent, currency, year, string, "
                                    "yes_no, choice, list, set, span"),
    options: Optional[str] = typer.Option(None, help="Choices as A=cat|B=dog|..."),
) -> None:
    """Score one prediction against a ground truth, showing what was extracted."""
    from deltaprompts.verifiers import extract_answer, score_answer_detailed

    res = score_answer_detailed(prediction, ground_truth, answer_type, _parse_options(options))
    out.print(f"extracted: {extract_answer(prediction)!r}")
    out.print(f"score: {res.score:g}  ({res.reason})")


def _parse_options(options: str | None) -> dict[str, str] | None:
    """`A=cat|B=dog` as {"A": "cat", "B": "dog"}; raises UserError for a malformed or repeated letter."""
    from deltaprompts.errors import UserError

    if not options:
        return None
    pairs = [p.split("=", 1) for p in options.split("|")]
    if any(len(p) != 2 for p in pairs):
        raise UserError(f"--options {options!r}: expected LETTER=text separated by '|', e.g. A=cat|B=dog")
    letters = [k for k, _ in pairs]
    twice = sorted({k for k in letters if letters.count(k) > 1})
    if twice:
        raise UserError(f"--options {options!r}: letter(s) {', '.join(twice)} given more than once; "
                        "each letter names one choice")
    return dict(pairs)


@app.command()
@handles_errors
def score(
    run_dir: Path = typer.Argument(..., help="A run directory written by generate."),
    teacher: str = typer.Option(..., "--teacher",
                                help="Teacher model spec, e.g. hf:PATH, openai:MODEL@URL, sim:NAME."),
    student: str = typer.Option(..., "--student", help="Student model spec (same forms)."),
    k: int = typer.Option(16, "--k", min=1, help="Samples per model per item (the budget when --adaptive)."),
    adaptive: bool = typer.Option(False, "--adaptive",
                                  help="Sample in rounds; stop items whose keep/drop is clear."),
    metric: str = typer.Option("tv", "--metric", help="Δ metric: tv (total variation), js (Jensen-Shannon), "
                               "kl (smoothed KL teacher||student)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Keep threshold adaptive stopping aims "
                                              "at (default: tv 0.3, js 0.12, kl 0.2); screen with the same."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1),
    seed: int = typer.Option(0, "--seed", help="Base seed; teacher and student each sample with their own."),
    prompt_format: str = typer.Option("plain", "--prompt-format", help="Prompt format name or a .j2 file."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="SQLite response cache (shared across runs)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Items per batch of model calls (the "
                                   "openai: backend keeps up to its concurrency in flight)."),
    min_teacher_acc: float = typer.Option(0.0, "--min-teacher-acc", help="With --adaptive: screen's "
                                          "teacher-accuracy bar; items the teacher keeps failing stop early."),
    zero_level: float = typer.Option(0.05, "--zero-level", help="Level of the zero-delta test: an item is "
                                     "zero-delta when its permutation p-value p_same exceeds this."),
    executor: str = typer.Option("local", "--executor", help="Where batches are scored: local (this process) or "
                                 "ray (Ray actors; the same files). Needs deltaprompts[ray]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="The Ray cluster (default: $RAY_ADDRESS, "
                                              "else a local one of --workers CPUs); RUN_DIR must be on a filesystem "
                                              "every node shares."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="With --executor ray and no cluster address: "
                                "the CPUs of the local Ray cluster."),
    gpus_per_model: float = typer.Option(0.0, "--gpus-per-model", min=0.0, help="With --executor ray: GPUs of "
                                         "each hf: model actor (0: on a CPU)."),
    model_actors: int = typer.Option(1, "--model-actors", min=1, help="With --executor ray: actors per hf: "
                                     "model, each holding one copy of it."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Sample answers from teacher and student and write one Δ record per item (resumable)."""
    from pydantic import ValidationError

    from deltaprompts.errors import UserError, validation_message
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.prompts import load_format
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run
    from deltaprompts.score_ray import make_executor

    pool = make_executor(executor, ray_address, workers, gpus_per_model, model_actors)
    t, s = load_backend(teacher), load_backend(student)
    load_format(prompt_format)  # a bad --prompt-format is refused before the run is touched
    try:
        sampling = Sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    except ValidationError as e:
        raise UserError(validation_message(e, flags=True)) from None
    with Progress(TextColumn("[bold]score"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=quiet) as bar, pool or contextlib.nullcontext():
        task = bar.add_task("items", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = score_run(run_dir, t, s, k=k, adaptive=adaptive, sampling=sampling, prompt_format=prompt_format,
                        cache_path=cache, metric=metric, threshold=threshold, batch_size=batch_size,
                        progress=progress, seed=seed, zero_level=zero_level, min_teacher_acc=min_teacher_acc,
                        executor=pool)
    _print_score_summary(res, k, zero_level)


def _print_score_summary(res: Any, k: int, zero_level: float) -> None:
    """What `score` did: items scored, model calls and cache hits, early stops, zero-delta share."""
    say_simulated(res.simulated)
    out.print(f"scored {res.scored} items ({res.already_scored} already scored) -> {res.scores_dir}")
    called = {r: res.completions[r] - res.from_cache[r] for r in ("teacher", "student")}
    cached = sum(res.from_cache.values())
    out.print(f"model calls: teacher {called['teacher']}, student {called['student']} completions"
              + (f" ({cached} more answered by the cache)" if cached else "")
              + f" (mean {res.mean_samples:.1f} samples per model per item, budget {k})")
    if res.stops:
        out.print("stopped: " + ", ".join(f"{r}={n}" for r, n in res.stops.items()))
    out.print(f"zero-delta: {res.zero_delta} of {res.deltas} items ({res.zero_delta_fraction:.1%}) indistinguishable "
              f"at level {zero_level:g}; {res.identical} with identical answer distributions")
    if res.repaired_bytes:
        out.print(f"resumed after an interruption: cut {res.repaired_bytes} bytes of partial lines")


@app.command()
@handles_errors
def screen(
    run_dir: Path = typer.Argument(..., help="A scored run directory."),
    min_delta: float = typer.Option(..., "--min-delta", help="Keep items with Δ at least this (under --rule)."),
    min_teacher_acc: float = typer.Option(0.0, "--min-teacher-acc", min=0.0, max=1.0,
                                          help="Drop items the teacher answers right less often than this."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="New run directory for the kept items."),
    metric: Optional[str] = typer.Option(None, "--metric", help="tv, js, kl, gap or token_kl (default: the "
                                         "metric scored)."),
    rule: str = typer.Option("debiased", "--rule", help="debiased: not zero-delta and debiased Δ >= min-delta; "
                             "confident: the lower bound of the debiased Δ >= min-delta; plugin: the plug-in Δ "
                             ">= min-delta (keeps sampling noise at small k)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in --out."),
) -> None:
    """Keep the high-Δ items of a scored run in a new run directory, with a report."""
    from deltaprompts.screen import screen_run

    rep = screen_run(run_dir, out_dir, min_delta, min_teacher_acc, metric, overwrite=overwrite, rule=rule)
    say_simulated(rep.simulated)
    out.print(f"zero-delta: {rep.zero_delta} of {rep.scored} scored items ({rep.zero_delta_fraction:.1%})")
    out.print(f"kept: {rep.kept} of {rep.scored} ({rep.kept_fraction:.1%}) by rule {rep.rule}: {rep.metric} >= "
              f"{rep.min_delta:g} and teacher accuracy >= {rep.min_teacher_acc:g} -> {rep.out}")
    if rep.dropped:
        out.print("dropped: " + ", ".join(f"{r}={n}" for r, n in rep.dropped.items()))
    if rep.unscored:
        out.print(f"[yellow]{rep.unscored} items have no Δ yet and were not kept[/] (finish `deltaprompts score`)")
    out.print(_family_table(rep))
    for note in rep.notes:
        out.print(f"note: {note}")
    out.print(f"report: {rep.table}, {rep.plot}")


def _family_table(rep: Any) -> Table:
    """Screen's per-family table: scored, zero-Δ and kept shares, mean Δ (plug-in and debiased), accuracies."""
    t = Table(title=f"Δ ({rep.metric}) per family")
    for col in ("family", "scored", "zero-Δ", "kept", "Δ", "debiased", "T acc", "S acc"):
        t.add_column(col, justify="left" if col == "family" else "right")
    for r in rep.families:
        t.add_row(r.family, str(r.scored), f"{r.zero_delta / r.scored:.1%}", f"{r.kept / r.scored:.1%}",
                  f"{r.mean_delta:.3f}", "-" if r.mean_debiased is None else f"{r.mean_debiased:.3f}",
                  f"{r.teacher_accuracy:.2f}", f"{r.student_accuracy:.2f}")
    return t
