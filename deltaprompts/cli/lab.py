"""The toy-lab command: `lab build` (distillation is `deltaprompts distill`, cli/distill.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from deltaprompts.cli.app import err, handles_errors, lab, out


def _threads(threads: Optional[int]) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _log(message: str) -> None:
    err.print(message, highlight=False)


@lab.command("build")
@handles_errors
def lab_build(
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for teacher/ and student/ (required "
                                           "unless --into-package)."),
    into_package: bool = typer.Option(False, "--into-package", help="Replace the package's shipped toy models "
                                      "(used by toy:NAME) instead of writing to --out."),
    minutes: float = typer.Option(20.0, "--minutes", help="Wall-clock budget; training stops early to keep it."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data runs and of both models."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's)."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep the generated runs here "
                                            "(default: a temporary folder, removed)."),
) -> None:
    """Train the toy teacher and student from scratch on lab runs and save them with accuracy.json."""
    from deltaprompts.lab.build import build, shipped_dir

    _threads(threads)
    report = build(out_dir, into_package=into_package, minutes=minutes, seed=seed, work_dir=work_dir, log=_log)
    target = shipped_dir() if into_package else out_dir
    for role in ("teacher", "student"):
        out.print(_model_line(role, report[role]), highlight=False)
    out.print(f"saved to {target} in {report['timings']['total']:.0f}s", highlight=False)


def _model_line(role: str, r: dict[str, Any]) -> str:
    """One built model: size, steps and eval accuracy overall and per family."""
    fams = ", ".join(f"{f.split('.', 1)[1]} {v['acc']:.2f}" for f, v in r["eval"]["families"].items())
    return (f"{role}: {r['params']:,} params, {r['train']['steps']} steps, eval accuracy "
            f"{r['eval']['overall']:.3f} (n={r['eval']['n']}): {fams}")
