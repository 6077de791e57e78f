"""The `distill` command: a teacher into a student on a run's items, with TRL (deltaprompts/distill.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from deltaprompts.cli.app import app, err, handles_errors, out


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


def _log(message: str) -> None:
    err.print(message, highlight=False)


@app.command()
@handles_errors
def distill(
    run_dir: Path = typer.Argument(..., help="Run directory whose items to distil on (e.g. a screened run)."),
    teacher: str = typer.Option(..., "--teacher", help="Teacher spec: hf:PATH or toy:teacher."),
    student: str = typer.Option(..., "--student", help="Student spec: hf:PATH or toy:student."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the distilled student (new or empty)."),
    mode: str = typer.Option(..., "--mode", help="off-policy (TRL SFTTrainer on verified teacher responses) or "
                             "on-policy (TRL DistillationTrainer: generalised JSD on student samples)."),
    steps: int = typer.Option(200, "--steps", min=1),
    lr: float = typer.Option(5e-4, "--lr"),
    batch: int = typer.Option(16, "--batch", min=1, help="Items per step."),
    k: int = typer.Option(8, "--k", min=1, help="Off-policy: verified teacher responses per item (reused from the "
                          "run's scores/ when they came from this teacher, else sampled)."),
    lmbda: float = typer.Option(1.0, "--lmbda", help="On-policy: share of batches the student samples (GKD λ); "
                                "only 1.0 with vision models (docs/distillation.md)."),
    beta: float = typer.Option(1.0, "--beta", help="On-policy: generalised JSD weight; 0 forward KL, 0.5 JSD, "
                               "1 reverse KL."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (teacher off-policy, "
                                      "student on-policy)."),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", min=1),
    seed: int = typer.Option(0, "--seed"),
    eval_run: Optional[Path] = typer.Option(None, "--eval", help="Run to measure greedy accuracy on, before and after."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or mps."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 mixed precision (GPU)."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    lora_r: int = typer.Option(0, "--lora-r", min=0, help="Train LoRA adapters of this rank (peft), merged into "
                               "the saved model; 0 = full fine-tuning."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
) -> None:
    """Distil a teacher into a student on a run's items with TRL; saves the student and distill.json."""
    from deltaprompts.distill import DistillConfig, check_config
    from deltaprompts.distill import distill as run
    from deltaprompts.files import check_out_dir

    cfg = DistillConfig(mode=mode, steps=steps, batch=batch, lr=lr, k=k, lmbda=lmbda, beta=beta,  # type: ignore[arg-type]
                        temperature=temperature, max_new_tokens=max_new_tokens, seed=seed, device=device, bf16=bf16,
                        gradient_checkpointing=gradient_checkpointing, lora_r=lora_r)
    check_config(cfg)
    _check_device(device)
    check_out_dir(out_dir)
    if threads:
        import torch

        torch.set_num_threads(threads)
    report = run(run_dir, teacher, student, out_dir, cfg, eval_run=eval_run, log=_log)
    losses = report["losses"]
    out.print(f"{mode} ({report['trainer']}, trl {report['trl']}): {report['items']} items, {len(losses)} steps, "
              f"loss {losses[0]:.4f} -> {sum(losses[-10:]) / len(losses[-10:]):.4f} (mean of the last 10), "
              f"{report['seconds']:.0f}s", highlight=False)
    if "before" in report:
        out.print(f"greedy accuracy on {eval_run}: {report['before']['overall']:.3f} -> "
                  f"{report['after']['overall']:.3f}", highlight=False)
    out.print(f"saved to {out_dir}", highlight=False)
