"""The deltaprompts command line: a thin layer over the stage functions."""

from __future__ import annotations

import functools
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from deltaprompts.errors import DeltaError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Synthetic visual reasoning data with computed ground truth, screened by answer divergence.")
out = Console()
err = Console(stderr=True)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a DeltaError as one line and exit with its code; never a traceback for a user mistake."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeltaError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except ValidationError as e:  # an option combination a config model refuses
            msg = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'value'}={x.get('input')!r}: {x['msg']}" for x in e.errors())
            err.print(f"[bold red]error:[/] invalid option: {escape(msg)}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except UnicodeDecodeError as e:  # a text read not yet routed through deltaprompts.files.read_text
            err.print(f"[bold red]error:[/] an input file is not UTF-8 text ({escape(str(e))}); "
                      "only UTF-8 text files are accepted", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as e:  # a path the user gave that cannot be read or written (a file, not a folder, ...)
            if e.filename is None:
                raise
            where = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
            err.print(f"[bold red]error:[/] {escape(where)}: {escape(e.strerror or type(e).__name__)}",
                      highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@handles_errors
def generate(
    family: Optional[list[str]] = typer.Option(None, "--family", "-f", help="Family name(s), comma-separated."),
    domain: Optional[list[str]] = typer.Option(None, "--domain", "-d", help="chart, document, scene (comma-separated)."),
    n: int = typer.Option(..., "--n", "-n", min=1, help="Number of items (questions) to write."),
    seed: int = typer.Option(0, help="Run seed; item i depends only on (seed, family, index, knobs, version)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Render processes."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory to write."),
    knob: Optional[list[str]] = typer.Option(None, "--knob", "-k", help="name=value or family:name=value; repeatable."),
    questions_per_image: int = typer.Option(1, "--questions-per-image", min=1, max=20),
    mc_fraction: float = typer.Option(0.2, "--mc-fraction", min=0.0, max=1.0, help="Share of multiple-choice questions."),
    shard_size: int = typer.Option(50, "--shard-size", min=1, help="Images per shard file."),
    balance_ratio: float = typer.Option(1.1, "--balance-ratio", help="Most frequent answer / runner-up allowed per "
                                        "question family (families of 20+ items); 0 turns balancing off."),
    templates: Optional[list[Path]] = typer.Option(None, "--templates", help="Extra question template folder(s)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a verified visual task suite into a run directory."""
    from deltaprompts.files import check_out_dir
    from deltaprompts.generate import GenerateConfig, generate as run, resolve_all_knobs, select_families
    from deltaprompts.knobs import parse_knob_args

    check_out_dir(out_dir)
    fams = select_families(_split(family), _split(domain))
    cfg = GenerateConfig(families=fams, n=n, seed=seed, knobs=resolve_all_knobs(fams, parse_knob_args(knob or [])),
                         questions_per_image=questions_per_image, mc_fraction=mc_fraction, shard_size=shard_size,
                         balance_ratio=balance_ratio or None,
                         template_dirs=[str(t.resolve()) for t in templates or []])
    # the command that reproduces this run, spelled out from what was resolved (all knobs included)
    parts = ["deltaprompts", "generate", "--family", ",".join(fams), "--n", str(n), "--seed", str(seed),
             "--workers", str(workers), "--out", str(out_dir), "--questions-per-image", str(questions_per_image),
             "--mc-fraction", str(mc_fraction), "--shard-size", str(shard_size), "--balance-ratio", str(balance_ratio)]
    parts += [a for t in cfg.template_dirs for a in ("--templates", t)]
    parts += [a for f, ks in cfg.knobs.items() for k, v in ks.items() for a in ("--knob", f"{f}:{k}={v}")]
    command = " ".join(shlex.quote(p) for p in parts)
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=quiet, transient=False) as bar:
        task = bar.add_task("items", total=cfg.n, rate="")
        start: list[int] = []

        def progress(done: int, total: int) -> None:
            start.append(done) if not start else None
            rate = (done - start[0]) / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.1f} items/s")

        manifest = run(cfg, out_dir, workers=workers, resume=resume, overwrite=overwrite, command=command,
                       progress=progress)
    c = manifest["counts"]
    out.print(f"wrote {c['items']} items over {c['images']} images to {out_dir} "
              f"({len(manifest['counts']['question_families'])} question families)")
    if manifest["rejections"]:
        out.print("rejected while generating: " + ", ".join(f"{k}={v}" for k, v in manifest["rejections"].items()))


@app.command("list")
@handles_errors
def list_(
    what: str = typer.Argument("all", help="families, knobs, questions, or all"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show registered families, their knobs, and the question families with their templates."""
    from deltaprompts.catalog import catalog
    from deltaprompts.errors import UnknownNameError

    choices = ("families", "knobs", "questions", "all")
    if what not in choices:
        raise UnknownNameError("listing", what, choices)
    cat = catalog()
    if as_json:
        out.print_json(json.dumps(cat if what == "all" else {what: cat[what]}))
        return
    if what in ("families", "all"):
        t = Table(title="families")
        for col in ("family", "domain", "version", "description"):
            t.add_column(col)
        for f in cat["families"]:
            t.add_row(f["name"], f["domain"], f["version"], f["description"])
        out.print(t)
    if what in ("knobs", "all"):
        t = Table(title="knobs")
        for col in ("family", "knob", "default", "allowed", "difficulty", "effect"):
            t.add_column(col)
        for k in cat["knobs"]:
            t.add_row(k["family"], k["name"], str(k["default"]), k["allowed"], k["difficulty"], k["help"])
        out.print(t)
    if what in ("questions", "all"):
        t = Table(title="question families")
        for col in ("question family", "answer", "steps", "skills", "applies to", "phrasings", "template file"):
            t.add_column(col)
        for q in cat["questions"]:
            t.add_row(q["name"], q["answer_type"], str(q["steps"]), ", ".join(q["skills"]), ", ".join(q["applies_to"]),
                      str(len(q["phrasings"])), q["file"])
        out.print(t)


@app.command()
@handles_errors
def show(
    run_dir: Path = typer.Argument(..., help="A run directory written by generate."),
    limit: int = typer.Option(500, min=1, help="Most items to put in the gallery (spread over families)."),
) -> None:
    """Write a static, offline HTML gallery of a run: images, questions, answers, tags and Facts."""
    from deltaprompts.gallery import write_gallery

    path = write_gallery(run_dir, limit=limit)
    out.print(f"gallery: {path}")


@app.command()
@handles_errors
def check(
    run_dir: Path = typer.Argument(..., help="A run directory written by generate."),
    min_text_px: float = typer.Option(7.0, help="Smallest legible text height, px."),
    min_visible_px: int = typer.Option(100, help="Fewest visible pixels of a scene object a question names."),
    balance_ratio: float = typer.Option(1.1, help="Most frequent answer / runner-up, per question family."),
) -> None:
    """Rerun every item check on a run and print pass/fail by check and reason (exit 1 if any fail)."""
    from deltaprompts.verifiers.checks import CheckConfig
    from deltaprompts.verifiers.run_checks import check_run

    import math

    from deltaprompts.errors import UserError

    for name, value in (("--min-text-px", min_text_px), ("--balance-ratio", balance_ratio)):
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{name} {value!r}: must be a finite number >= 0")
    report = check_run(run_dir, CheckConfig(min_text_px=min_text_px, min_visible_px=min_visible_px), balance_ratio)
    t = Table(title=f"checks over {report.items} items in {run_dir}")
    for col in ("check", "pass", "fail", "reasons"):
        t.add_column(col)
    for name in sorted(set(report.passed) | set(report.failed)):
        fails = report.failed.get(name, {})
        t.add_row(name, str(report.passed[name]), str(sum(fails.values())),
                  ", ".join(f"{r}={c}" for r, c in sorted(fails.items())) or "-")
    out.print(t)
    out.print(f"{report.ill_posed} ill-posed item(s) kept out of {report.items}")
    for problem in report.problems:
        out.print(f"run integrity: {problem}", highlight=False, markup=False)
    if report.ill_posed or report.problems:
        raise typer.Exit(1)


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

    opts = None
    if options:
        pairs = [p.split("=", 1) for p in options.split("|")]
        from deltaprompts.errors import UserError

        if any(len(p) != 2 for p in pairs):
            raise UserError(f"--options {options!r}: expected LETTER=text separated by '|', e.g. A=cat|B=dog")
        letters = [k for k, _ in pairs]
        twice = sorted({k for k in letters if letters.count(k) > 1})
        if twice:
            raise UserError(f"--options {options!r}: letter(s) {', '.join(twice)} given more than once; "
                            "each letter names one choice")
        opts = dict(pairs)
    res = score_answer_detailed(prediction, ground_truth, answer_type, opts)
    out.print(f"extracted: {extract_answer(prediction)!r}")
    out.print(f"score: {res.score:g}  ({res.reason})")


@app.command()
@handles_errors
def schema(
    record: str = typer.Argument("Item", help="Spec, Facts, Node, Question or Item."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write every record's schema as NAME.schema.json here."),
) -> None:
    """Print the JSON Schema of a record (or write all of them)."""
    from deltaprompts.errors import UnknownNameError
    from deltaprompts.records import RECORDS

    if out_dir is not None:
        from deltaprompts.files import check_out_dir

        check_out_dir(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, model in RECORDS.items():
            (out_dir / f"{name}.schema.json").write_text(json.dumps(model.model_json_schema(), indent=2) + "\n")
        out.print(f"wrote {len(RECORDS)} schemas to {out_dir}")
        return
    if record not in RECORDS:
        raise UnknownNameError("record", record, RECORDS)
    sys.stdout.write(json.dumps(RECORDS[record].model_json_schema(), indent=2) + "\n")


def _register_stage_commands() -> None:
    """The model-facing stages live in their own modules; each adds its commands to `app`."""
    from deltaprompts import cli_divergence, cli_export, cli_lab, cli_pipeline

    cli_divergence.register(app)
    cli_export.register(app)
    cli_pipeline.register(app)
    cli_lab.register(app)


_register_stage_commands()


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    import warnings

    warnings.showwarning = _one_line_warning  # a warning for the user is one line, not a source excerpt
    app()


if __name__ == "__main__":
    main()
