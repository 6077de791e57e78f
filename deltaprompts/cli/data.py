"""Commands that make and inspect runs: `generate`, `list`, `show`, `check`, `schema`."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from deltaprompts.cli.app import app, err, handles_errors, out

TEMPLATES_HELP = "Extra question template folder(s); repeatable."


def _split(values: list[str] | None) -> list[str]:
    """Repeated, comma-separated option values as one flat list."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _template_dirs(templates: list[Path] | None) -> list[str]:
    return [str(t.resolve()) for t in templates or []]


@app.command()
@handles_errors
def generate(
    family: Optional[list[str]] = typer.Option(None, "--family", "-f", help="Family name(s), comma-separated."),
    domain: Optional[list[str]] = typer.Option(None, "--domain", "-d", help="chart, document, scene (comma-separated)."),
    n: int = typer.Option(..., "--n", "-n", min=1, help="Number of items (questions) to write."),
    seed: int = typer.Option(0, help="Run seed; item i depends only on (seed, family, index, knobs, version)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Render processes (with --executor ray and no "
                                "cluster address: the CPUs of the local Ray cluster)."),
    executor: str = typer.Option("local", "--executor", help="Where shards run: local (a process pool) or ray "
                                 "(Ray tasks; the same bytes). Needs deltaprompts[ray]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="The Ray cluster to run on (default: "
                                              "$RAY_ADDRESS, else a local cluster of --workers CPUs); --out must "
                                              "be on a filesystem every node shares."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory to write."),
    knob: Optional[list[str]] = typer.Option(None, "--knob", "-k", help="name=value or family:name=value; repeatable."),
    questions_per_image: int = typer.Option(1, "--questions-per-image", min=1, max=20),
    mc_fraction: float = typer.Option(0.2, "--mc-fraction", min=0.0, max=1.0, help="Share of multiple-choice questions."),
    shard_size: int = typer.Option(50, "--shard-size", min=1, help="Images per shard file."),
    balance_ratio: float = typer.Option(1.1, "--balance-ratio", help="Most frequent answer / runner-up allowed per "
                                        "question family (families of 20+ items); 0 turns balancing off."),
    templates: Optional[list[Path]] = typer.Option(None, "--templates", help=TEMPLATES_HELP),
    topics: Optional[list[Path]] = typer.Option(None, "--topics", help="A chart topic pack (YAML in the schema of "
                                                "templates/vocab/charts.yaml) added to the built-in topics; repeatable."),
    topics_only: bool = typer.Option(False, "--topics-only", help="Charts draw only the --topics packs' topics, "
                                     "not the built-in ones: a domain suite."),
    data: Optional[Path] = typer.Option(None, "--data", help="Draw charts of your own table (.csv, .json records or "
                                        ".parquet): a label column and numeric columns; without --family, every "
                                        "chart kind that fits its shape (pie only when named)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in --out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a verified visual task suite into a run directory."""
    from deltaprompts.files import check_out_dir
    from deltaprompts.generate import (GenerateConfig, generate as run, resolve_all_knobs, select_families,
                                       start_workers_early)
    from deltaprompts.knobs import parse_knob_args

    if executor == "local" and workers > 1:
        start_workers_early()  # the workers' imports overlap the checks below (which import every family)
    check_out_dir(out_dir)
    if ray_address and executor != "ray":
        from deltaprompts.errors import UserError

        raise UserError("--ray-address is the cluster of --executor ray; add --executor ray, or drop --ray-address")
    table = None
    if data is not None:
        from deltaprompts.errors import UserError
        from deltaprompts.generators.user_data import describe, file_sha256, fitting_families, read_table

        if any(d != "chart" for d in _split(domain)):
            raise UserError("--data draws chart families only; drop --domain, or use --domain chart")
        table = read_table(data.resolve())
        fams = fitting_families(table, select_families(_split(family)) if family else [])
        out.print(describe(table), highlight=False, soft_wrap=True)
        out.print(f"drawn as: {', '.join(fams)}", highlight=False, soft_wrap=True)
    else:
        fams = select_families(_split(family), _split(domain))
    cfg = GenerateConfig(families=fams, n=n, seed=seed, knobs=resolve_all_knobs(fams, parse_knob_args(knob or [])),
                         questions_per_image=questions_per_image, mc_fraction=mc_fraction, shard_size=shard_size,
                         balance_ratio=balance_ratio or None, template_dirs=_template_dirs(templates),
                         topic_files=[str(t.resolve()) for t in topics or []], topics_only=topics_only,
                         data_file=table.path if table else None,
                         data_sha256=file_sha256(table.path) if table else None)
    command = _reproduce_command(cfg, workers, out_dir, balance_ratio)
    with _progress_bar(cfg.n, quiet) as progress:
        manifest = run(cfg, out_dir, workers=workers, resume=resume, overwrite=overwrite, command=command,
                       progress=progress, executor=executor, ray_address=ray_address)
    c = manifest["counts"]
    out.print(f"wrote {c['items']} items over {c['images']} images to {out_dir} "
              f"({len(c['question_families'])} question families)")
    if manifest["rejections"]:
        out.print("rejected while generating: " + ", ".join(f"{k}={v}" for k, v in manifest["rejections"].items()))


def _reproduce_command(cfg: Any, workers: int, out_dir: Path, balance_ratio: float) -> str:
    """The command that reproduces a run, spelled out from what was resolved (all knobs included)."""
    parts = ["deltaprompts", "generate", "--family", ",".join(cfg.families), "--n", str(cfg.n), "--seed",
             str(cfg.seed), "--workers", str(workers), "--out", str(out_dir), "--questions-per-image",
             str(cfg.questions_per_image), "--mc-fraction", str(cfg.mc_fraction), "--shard-size",
             str(cfg.shard_size), "--balance-ratio", str(balance_ratio)]
    parts += [a for t in cfg.template_dirs for a in ("--templates", t)]
    parts += [a for t in cfg.topic_files for a in ("--topics", t)] + (["--topics-only"] if cfg.topics_only else [])
    parts += ["--data", cfg.data_file] if cfg.data_file else []
    parts += [a for f, ks in cfg.knobs.items() for k, v in ks.items() for a in ("--knob", f"{f}:{k}={v}")]
    return " ".join(shlex.quote(p) for p in parts)


@contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """Generate's `progress(done, total)` callback, drawn as a rich bar with an items/s rate on stderr."""
    t0, start = time.perf_counter(), []
    with Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=quiet, transient=False) as bar:
        task = bar.add_task("items", total=total, rate="")

        def progress(done: int, total: int) -> None:
            if not start:  # the rate counts only items made here, not those a resume found done
                start.append(done)
            rate = (done - start[0]) / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.1f} items/s")

        yield progress


@app.command("list")
@handles_errors
def list_(
    what: str = typer.Argument("all", help="families, knobs, questions, or all"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    templates: Optional[list[Path]] = typer.Option(None, "--templates", help=TEMPLATES_HELP + " Their question "
                                                   "families are listed with the built-in ones."),
) -> None:
    """Show registered families, their knobs, and the question families with their templates."""
    from deltaprompts.catalog import catalog
    from deltaprompts.errors import UnknownNameError

    choices = ("families", "knobs", "questions", "all")
    if what not in choices:
        raise UnknownNameError("listing", what, choices)
    dirs = tuple(_template_dirs(templates))
    cat = catalog(dirs)
    _mark_origins(cat["questions"], dirs)
    if as_json:
        out.print_json(json.dumps(cat if what == "all" else {what: cat[what]}))
        return
    if what in ("families", "all"):
        _print_families(cat["families"])
    if what in ("knobs", "all"):
        _print_knobs(cat["knobs"])
    if what in ("questions", "all"):
        _print_questions(cat["questions"], dirs)


def _mark_origins(questions: list[dict[str, Any]], dirs: tuple[str, ...]) -> None:
    """Add `origin` to each question family: "built-in", or the --templates folder it was loaded from."""
    from deltaprompts.questions import load_templates

    sources = {t.name: Path(t.source) for t in load_templates(dirs)}  # cached: the catalog loaded the same
    for q in questions:
        src = sources[q["name"]]
        q["origin"] = next((d for d in dirs if src.is_relative_to(d)), "built-in")


def _table(title: str, columns: tuple[str, ...], rows: list[list[str]]) -> Table:
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    return t


def _print_families(families: list[dict[str, Any]]) -> None:
    out.print(_table("families", ("family", "domain", "version", "description"),
                     [[f["name"], f["domain"], f["version"], f["description"] + (
                         f" (unavailable: {f['unavailable']})" if f.get("unavailable") else "")] for f in families]))


def _print_knobs(knobs: list[dict[str, Any]]) -> None:
    out.print(_table("knobs", ("family", "knob", "default", "allowed", "difficulty", "effect"),
                     [[k["family"], k["name"], str(k["default"]), k["allowed"], k["difficulty"], k["help"]]
                      for k in knobs]))


def _print_questions(questions: list[dict[str, Any]], dirs: tuple[str, ...]) -> None:
    """The question families table; with --templates, a `from` column and the families each folder added."""
    columns = ("question family", "answer", "steps", "skills", "applies to", "phrasings", "template file")
    rows = [[q["name"], q["answer_type"], str(q["steps"]), ", ".join(q["skills"]), ", ".join(q["applies_to"]),
             str(len(q["phrasings"])), q["file"]] for q in questions]
    if dirs:  # the folder's name in the table; its full path in the lines below
        columns += ("from",)
        for row, q in zip(rows, questions):
            row.append(q["origin"] if q["origin"] == "built-in" else Path(q["origin"]).name)
    out.print(_table("question families", columns, rows))
    for d in dirs:
        names = [q["name"] for q in questions if q["origin"] == d]
        out.print(f"from {d}: {', '.join(names) or '(no question families)'}", highlight=False)


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


@app.command("check")
@handles_errors
def check_run(
    run_dir: Path = typer.Argument(..., help="A run directory written by generate."),
    min_text_px: float = typer.Option(7.0, help="Smallest legible text height, px."),
    min_visible_px: int = typer.Option(100, help="Fewest visible pixels of a scene object a question names."),
    balance_ratio: float = typer.Option(1.1, help="Most frequent answer / runner-up, per question family."),
) -> None:
    """Rerun every item check on a run and print pass/fail by check and reason (exit 1 if any fail)."""
    import math

    from deltaprompts.errors import UserError
    from deltaprompts.verifiers.checks import CheckConfig
    from deltaprompts.verifiers.run_checks import check_run

    for name, value in (("--min-text-px", min_text_px), ("--balance-ratio", balance_ratio)):
        if not math.isfinite(value) or value < 0:
            raise UserError(f"{name} {value!r}: must be a finite number >= 0")
    report = check_run(run_dir, CheckConfig(min_text_px=min_text_px, min_visible_px=min_visible_px), balance_ratio)
    out.print(_table(f"checks over {report.items} items in {run_dir}", ("check", "pass", "fail", "reasons"),
                     [_check_row(name, report.passed[name], report.failed.get(name, {}))
                      for name in sorted(set(report.passed) | set(report.failed))]))
    out.print(f"{report.ill_posed} ill-posed item(s) kept out of {report.items}")
    for problem in report.problems:
        out.print(f"run integrity: {problem}", highlight=False, markup=False)
    if report.ill_posed or report.problems:
        raise typer.Exit(1)


def _check_row(name: str, passed: int, fails: dict[str, int]) -> list[str]:
    """One check's row: passes, failures and the failures by reason."""
    return [name, str(passed), str(sum(fails.values())), ", ".join(f"{r}={c}" for r, c in sorted(fails.items())) or "-"]


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
