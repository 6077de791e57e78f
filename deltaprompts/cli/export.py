"""Commands that turn a run into a dataset or a report: `split`, `export`, `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from deltaprompts.cli.app import app, err, handles_errors, out


@app.command()
@handles_errors
def export(
    run_dir: Path = typer.Argument(..., help="A run directory (generated, scored or screened)."),
    fmt: str = typer.Option(..., "--format", "-f", help="hf, parquet, llava, messages, sharegpt, lmms-eval or promptset."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder to write (replaced whole with --overwrite)."),
    split: str = typer.Option("all", help="train, eval (from split.json; see `deltaprompts split`) or all."),
    prompt_format: str = typer.Option("plain", "--prompt-format",
                                      help="How the question is put: raw, plain, multiple_choice, boxed, "
                                           "thinking (eval only), or a .j2 file."),
    task: Optional[str] = typer.Option(None, help="lmms-eval task name (default: deltaprompts_<run folder>)."),
    shard_rows: int = typer.Option(5000, "--shard-rows", min=1, help="Rows per parquet shard."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
    targets: str = typer.Option("answer", "--targets", help="Assistant turns of training formats: answer (the "
                                "ground truth), or teacher (the teacher's responses the verifier scored correct)."),
    trace_rule: str = typer.Option("shortest", "--trace-rule", help="With --targets teacher: shortest, logprob "
                                   "(highest mean log-prob per token) or all (in sample order)."),
    max_traces: int = typer.Option(1, "--max-traces", min=1, help="With --targets teacher: responses per item."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="With --targets teacher: the model spec the "
                                          "responses must come from (checked against scores/meta.json)."),
) -> None:
    """Export a run (or one side of its split) as a training or evaluation dataset."""
    from deltaprompts.exports import export_run

    try:  # the command reports what it wrote; the datasets library's per-shard bars are noise here
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
    s = export_run(run_dir, fmt, out_dir, split=split, prompt_format=prompt_format, overwrite=overwrite,
                   task=task, shard_rows=shard_rows, targets=targets, trace_rule=trace_rule, max_traces=max_traces,
                   teacher=teacher)
    out.print(f"exported {s.items} items ({s.split}, HF split {s.hf_split!r}, prompt format {s.prompt_format}) "
              f"as {s.format} to {s.out}: {', '.join(s.files)}" + (f" and {s.images} images" if s.images else ""))
    if s.rejected_by_review:
        out.print(f"left out {s.rejected_by_review} items rejected in review (review.jsonl)")
    if s.targets == "teacher":
        out.print(f"targets: {s.examples} teacher responses ({s.trace_rule}) for {s.items} items; "
                  f"{s.no_correct_trace} items left out (no correct response)")
    if s.format == "lmms-eval":
        task_file = next(f for f in s.files if f.endswith(".yaml"))
        out.print(f"run it: python -m lmms_eval --include_path {s.out} --tasks {Path(task_file).stem} "
                  "--model ... --model_args ...")


@app.command("split")
@handles_errors
def split_cmd(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    eval_fraction: float = typer.Option(0.1, "--eval-fraction", help="Share drawn for eval, in (0, 1)."),
    seed: int = typer.Option(0, help="Seed of the draw; the same seed gives the same split."),
    unit: str = typer.Option("spec", help="spec (all questions about one image together) or item."),
    image_bits: int = typer.Option(4, "--image-bits", help="Max pHash Hamming distance (of 64 bits) "
                                   "for near-identical images."),
    image_confirm: float = typer.Option(6.0, "--image-confirm", help="Max 99th-percentile grey difference "
                                        "of 32x32 thumbnails that confirms a hash match; negative: hash alone."),
    jaccard: float = typer.Option(0.9, help="Token Jaccard at or above which questions are near-identical."),
    any_answer: bool = typer.Option(False, "--any-answer", help="Near-identical questions conflict even "
                                    "with different answers."),
    drop: bool = typer.Option(False, "--drop", help="Drop conflicting eval items instead of moving them to train."),
) -> None:
    """Split a run into train and eval, keeping eval free of shared Specs and near-duplicate images or questions."""
    from pydantic import ValidationError

    from deltaprompts.errors import UserError, validation_message
    from deltaprompts.split import SplitConfig, split_run

    try:
        cfg = SplitConfig(eval_fraction=eval_fraction, seed=seed, unit=unit, image_bits=image_bits,
                          image_confirm=None if image_confirm < 0 else image_confirm, jaccard=jaccard,
                          same_answer=not any_answer, on_conflict="drop" if drop else "move")
    except ValidationError as e:
        raise UserError(validation_message(e, flags=True)) from None
    result = split_run(run_dir, cfg)
    out.print(result.summary())
    out.print(f"wrote {Path(run_dir) / 'split.json'}")
    if result.counts["eval"] == 0:
        err.print("warning: the eval side is empty; raise --eval-fraction or loosen the checks")


@app.command()
@handles_errors
def report(
    run_dir: Path = typer.Argument(..., help="A run directory (scored or not)."),
    limit: int = typer.Option(200, min=0, help="Most items in the gallery (highest Δ first)."),
) -> None:
    """Write a static, offline HTML report of a run: Δ, accuracy, yield, rejections and a gallery by Δ."""
    from deltaprompts.report import write_report

    path = write_report(run_dir, gallery_limit=limit)
    out.print(f"report: {path}")
