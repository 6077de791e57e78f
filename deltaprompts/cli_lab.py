"""The `lab build` and `distill` commands; `register(app)` adds them to the deltaprompts CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the `lab` group (`lab build`) and the `distill` command to a typer app."""
    from deltaprompts.cli import err, handles_errors, out

    lab = typer.Typer(no_args_is_help=True, help="The toy lab: a tiny trained teacher-student VLM pair.")
    app.add_typer(lab, name="lab")

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

    @lab.command("build")
    @handles_errors
    def lab_build(
        out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for teacher/ and student/ "
                                               "(default: the package's shipped toy models, used by toy:NAME)."),
        minutes: float = typer.Option(20.0, "--minutes", help="Wall-clock budget; training stops early to keep it."),
        seed: int = typer.Option(0, "--seed", help="Seed of the data runs and of both models."),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's)."),
        work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep the generated runs here "
                                                "(default: a temporary folder, removed)."),
    ) -> None:
        """Train the toy teacher and student from scratch on lab runs and save them with accuracy.json."""
        from importlib import resources

        from deltaprompts.lab.build import build

        _threads(threads)
        target = out_dir or Path(str(resources.files("deltaprompts.lab") / "models"))
        report = build(target, minutes=minutes, seed=seed, work_dir=work_dir, log=lambda m: err.print(m, highlight=False))
        for role in ("teacher", "student"):
            r = report[role]
            fams = ", ".join(f"{f.split('.', 1)[1]} {v['acc']:.2f}" for f, v in r["eval"]["families"].items())
            out.print(f"{role}: {r['params']:,} params, {r['train']['steps']} steps, eval accuracy "
                      f"{r['eval']['overall']:.3f} (n={r['eval']['n']}): {fams}", highlight=False)
        out.print(f"saved to {target} in {report['timings']['total']:.0f}s", highlight=False)

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
        report = run(run_dir, teacher, student, out_dir, cfg, eval_run=eval_run,
                     log=lambda m: err.print(m, highlight=False))
        losses = report["losses"]
        out.print(f"{mode}: {report['items']} items, {len(losses)} steps, loss {losses[0]:.4f} -> "
                  f"{sum(losses[-10:]) / len(losses[-10:]):.4f} (mean of the last 10), {report['seconds']:.0f}s", highlight=False)
        if "before" in report:
            out.print(f"greedy accuracy on {eval_run}: {report['before']['overall']:.3f} -> {report['after']['overall']:.3f}",
                      highlight=False)
        out.print(f"saved to {out_dir}", highlight=False)
