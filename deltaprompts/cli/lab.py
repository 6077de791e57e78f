"""The toy-lab commands: `lab build` and `distill`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from deltaprompts.cli.app import app, err, handles_errors, lab, out


def _check_device(device: str) -> None:
    """`--device` must name a torch device this machine has: cpu, cuda, cuda:N or mps."""
    import re

    from deltaprompts.errors import UserError

    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        raise UserError(f"--device {device!r}: unknown device; allowed: cpu, cuda, cuda:N, mps")
    if device != "cpu":
        import torch

        if device == "mps" and not torch.backends.mps.is_available():
            raise UserError("--device mps: no MPS device here; use --device cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device here; use --device cpu")
        if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")


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


@app.command()
@handles_errors
def distill(
    run_dir: Path = typer.Argument(..., help="Run directory whose items to distil on (e.g. a screened run)."),
    teacher: str = typer.Option(..., "--teacher", help="Teacher spec: hf:PATH or toy:teacher."),
    student: str = typer.Option(..., "--student", help="Student spec: hf:PATH or toy:student."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the distilled student (new or empty)."),
    mode: str = typer.Option(..., "--mode", help="off-policy (SFT on verified teacher samples) or on-policy "
                             "(reverse KL to the teacher on student samples)."),
    steps: int = typer.Option(200, "--steps", min=1),
    lr: float = typer.Option(5e-4, "--lr"),
    batch: int = typer.Option(16, "--batch", min=1, help="Items per step."),
    k: int = typer.Option(8, "--k", min=1, help="Off-policy: teacher samples per item (reused from the run's "
                          "scores/ when they came from this teacher)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (teacher off-policy, "
                                      "student on-policy)."),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", min=1),
    seed: int = typer.Option(0, "--seed"),
    eval_run: Optional[Path] = typer.Option(None, "--eval", help="Run to measure greedy accuracy on, before and after."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or mps."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 autocast (GPU; slower than fp32 on most CPUs)."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    lora_r: int = typer.Option(0, "--lora-r", min=0, help="Train LoRA adapters of this rank (needs peft), "
                               "merged into the saved model; 0 = full fine-tuning."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
) -> None:
    """Distil a teacher into a student on a run's items; saves the student and distill.json."""
    from deltaprompts.files import check_out_dir
    from deltaprompts.lab.distill import DistillConfig
    from deltaprompts.lab.distill import distill as run

    _check_device(device)
    check_out_dir(out_dir)
    _threads(threads)
    cfg = DistillConfig(mode=mode, steps=steps, batch=batch, lr=lr, k=k, temperature=temperature,  # type: ignore[arg-type]
                        max_new_tokens=max_new_tokens, seed=seed, device=device, bf16=bf16,
                        gradient_checkpointing=gradient_checkpointing, lora_r=lora_r)
    report = run(run_dir, teacher, student, out_dir, cfg, eval_run=eval_run, log=_log)
    losses = report["losses"]
    out.print(f"{mode}: {report['items']} items, {len(losses)} steps, loss {losses[0]:.4f} -> "
              f"{sum(losses[-10:]) / len(losses[-10:]):.4f} (mean of the last 10), {report['seconds']:.0f}s",
              highlight=False)
    if "before" in report:
        out.print(f"greedy accuracy on {eval_run}: {report['before']['overall']:.3f} -> "
                  f"{report['after']['overall']:.3f}", highlight=False)
    out.print(f"saved to {out_dir}", highlight=False)
