"""Distil a teacher VLM into a student with TRL: off-policy (SFTTrainer on the teacher's verified
responses) or on-policy (DistillationTrainer: generalised JSD to the teacher on the student's own samples).

Any pair of local transformers folders works (`hf:PATH`, and `toy:teacher` / `toy:student`, which
resolve to the shipped toy folders). Needs the `distill` extra (trl, peft, accelerate). Why the
on-policy mode uses TRL's DistillationTrainer (with GKD's λ added: `MixedDistillation`) and not
GKDTrainer: docs/distillation.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.store import RunStore, ScoreStore

MODES = ("off-policy", "on-policy")
DISTILL_FILE = "distill.json"
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run.

    Off-policy trains on up to `k` verified teacher responses per item (those stored in the run's
    scores/ when they came from this teacher, else `k` fresh samples). On-policy samples one student
    answer per item at `temperature` and matches the teacher under the generalised JSD of weight
    `beta` (0 forward KL, 0.5 JSD, 1 reverse KL); `lmbda` is GKD's share of on-policy batches.
    """

    mode: Literal["off-policy", "on-policy"] = "off-policy"
    steps: int = 200
    batch: int = 16  # items per optimiser step
    lr: float = 5e-4
    warmup: int = 10  # linear warm-up steps
    k: int = 8
    lmbda: float = 1.0
    beta: float = 1.0
    temperature: float = 1.0
    max_new_tokens: int = 8
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    gradient_checkpointing: bool = False
    lora_r: int = 0  # LoRA rank (peft), merged into the saved model; 0 = full fine-tuning
    prompt_format: str = "plain"


def check_config(cfg: DistillConfig) -> None:
    """Raise UserError naming the first bad field of a DistillConfig."""
    if cfg.mode not in MODES:
        raise UserError(f"--mode {cfg.mode!r} is not allowed; allowed: {', '.join(MODES)}")
    for name in ("steps", "batch", "k", "max_new_tokens"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not cfg.lr > 0 or not cfg.temperature > 0 or cfg.lora_r < 0 or cfg.warmup < 0:
        raise UserError(f"--lr ({cfg.lr}) and --temperature ({cfg.temperature}) must be > 0, --lora-r "
                        f"({cfg.lora_r}) and --warmup ({cfg.warmup}) >= 0")
    if not 0 <= cfg.beta <= 1:
        raise UserError(f"--beta {cfg.beta} must be in [0, 1] (0 forward KL, 0.5 JSD, 1 reverse KL)")
    if not 0 <= cfg.lmbda <= 1:
        raise UserError(f"--lmbda {cfg.lmbda} must be in [0, 1]")


def model_dir(spec: str) -> Path:
    """The local folder of a model spec that names a transformers model (hf:PATH, toy:NAME);
    raises UserError for any other backend."""
    from deltaprompts.models.hf import HFBackend
    from deltaprompts.models.specs import load_backend

    backend = load_backend(spec)
    if not isinstance(backend, HFBackend):
        raise UserError(f"distill needs local transformers models (hf:PATH or toy:NAME); {spec!r} is {backend.identity}")
    return backend.path


def _trl() -> Any:
    try:
        import trl
    except ImportError:
        raise UserError("distill needs TRL: pip install 'deltaprompts[distill]'") from None
    return trl


def prompt_messages(item: Item, fmt: str) -> list[dict[str, Any]]:
    """The user turn of an item: its image(s), then the question as score_run asks it."""
    from deltaprompts.models.prompts import render_prompt

    parts = [{"type": "image"} for _ in item.images]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": render_prompt(item.question, fmt)}]}]


def teacher_answers(run_dir: Path | str, items: Sequence[Item], teacher_spec: str, cfg: DistillConfig) -> tuple[list[tuple[Item, str]], str]:
    """The teacher's correct answers to items (with multiplicity, up to k per item): the verified samples of
    the run's scores/samples-teacher.jsonl when they came from this very teacher (exports.targets, no
    model calls), and k fresh samples each for the items that have none there (e.g. a pipeline run
    root, whose scores hold only Δ records). Returns (item, answer) pairs and where they came from."""
    from deltaprompts.exports.targets import teacher_targets
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.prompts import build_request
    from deltaprompts.models.specs import load_backend
    from deltaprompts.verifiers import score_item_answer

    backend = load_backend(teacher_spec)
    scores = ScoreStore(run_dir)
    meta = scores.meta()
    sampled: set[str] = set()
    out: list[tuple[Item, str]] = []
    if meta.get("teacher") == backend.identity and meta.get("prompt_format") == cfg.prompt_format:
        sampled = {s.item for s in scores.samples("teacher").values()}
        if sampled:
            targets, _ = teacher_targets([it for it in items if it.id in sampled], Path(run_dir), "all", cfg.k)
            out = [(it, t.text) for it in items for t in targets.get(it.id, [])]
    fresh = [it for it in items if it.id not in sampled]
    if not fresh:
        return out, ScoreStore.samples_file("teacher")
    sampling = Sampling(temperature=cfg.temperature, top_k=0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    requests = [build_request(it, run_dir, cfg.prompt_format) for it in fresh]
    for s in range(0, len(fresh), 32):
        comps = backend.sample(requests[s:s + 32], sampling, [list(range(cfg.k))] * len(requests[s:s + 32]))
        for it, cs in zip(fresh[s:s + 32], comps):
            out += [(it, c.text) for c in cs if score_item_answer(it, c.text) >= 1.0]
    if sampled:
        return out, f"{ScoreStore.samples_file('teacher')}, and {cfg.k} fresh teacher samples for {len(fresh)} items"
    return out, f"{cfg.k} fresh teacher samples per item"


def mixed_trainer(trl: Any) -> type:
    """TRL's DistillationTrainer with GKD's λ for vision models: with probability 1 − λ (a seeded draw
    per generation batch) the batch's completions are the teacher's verified responses (the rows'
    `given` text) instead of the student's own samples; the generalised JSD (β) to the teacher is
    then taken on those tokens, exactly as on the student's. TRL 1.16's GKDTrainer, which mixes the
    two, passes no images to a vision model (docs/distillation.md)."""
    import random

    class MixedDistillation(trl.DistillationTrainer):
        def __init__(self, *args: Any, lmbda: float = 1.0, mix_seed: int = 0, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.lmbda, self._draw, self._given = lmbda, random.Random(mix_seed), None
            self.batches = {"on_policy": 0, "teacher": 0}

        def _generate_and_score_completions(self, inputs: Any) -> Any:
            self._given = [x.get("given") for x in inputs]
            try:
                return super()._generate_and_score_completions(inputs)
            finally:
                self._given = None

        def _generate_single_turn(self, prompt_ids: Any, images: Any, multimodal_fields: Any,
                                  has_tool_images: bool = False) -> Any:
            given = self._given
            if self.lmbda < 1.0 and given and all(g is not None for g in given) and self._draw.random() >= self.lmbda:
                self.batches["teacher"] += 1
                tok = getattr(self.processing_class, "tokenizer", self.processing_class)
                return [tok(g, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for g in given]
            self.batches["on_policy"] += 1
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, has_tool_images)

    return MixedDistillation


def _dataset(run_dir: Path | str, rows: Sequence[tuple[Item, str | None]], fmt: str,
             given: dict[str, str] | None = None) -> Any:
    """A datasets.Dataset in TRL's conversational prompt(-completion) form, the image in `images`;
    with `given`, each row also holds the teacher's response of its item (or None) for GKD's mixing."""
    from datasets import Dataset
    from PIL import Image

    recs = []
    for it, answer in rows:
        images = []
        for ref in it.images:
            with Image.open(Path(run_dir) / ref.path) as im:
                images.append(im.convert("RGB"))
        rec: dict[str, Any] = {"prompt": prompt_messages(it, fmt), "images": images}
        if answer is not None:
            rec["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": answer}]}]
        if given is not None:
            rec["given"] = given.get(it.id)
        recs.append(rec)
    return Dataset.from_list(recs)


def _args(cfg: DistillConfig, work: str, **extra: Any) -> dict[str, Any]:
    """The TrainingArguments both trainers share."""
    return dict(output_dir=work, max_steps=cfg.steps, per_device_train_batch_size=cfg.batch, learning_rate=cfg.lr,
                warmup_steps=min(cfg.warmup, cfg.steps), max_grad_norm=1.0, seed=cfg.seed, bf16=cfg.bf16,
                use_cpu=cfg.device == "cpu", gradient_checkpointing=cfg.gradient_checkpointing, logging_steps=1,
                save_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0, **extra)


def load_model(path: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, processor) of a saved transformers folder on `device`, in eval mode."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path).to(device)
    return model.eval(), AutoProcessor.from_pretrained(path)


def _load(path: Path, cfg: DistillConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if cfg.device.startswith("cuda:"):  # accelerate places a single-process run on the current CUDA device
        import torch

        torch.cuda.set_device(int(cfg.device[5:]))
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _trainer(cfg: DistillConfig, run_dir: Path | str, items: Sequence[Item], teacher_spec: str, student: Any,
             processor: Any, work: str, report: dict[str, Any]) -> Any:
    """The TRL trainer of the mode, its data summary written into `report`."""
    trl = _trl()
    peft_config = None
    if cfg.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules=LORA_MODULES)
    if cfg.mode == "off-policy":
        rows, source = teacher_answers(run_dir, items, teacher_spec, cfg)
        if not rows:
            raise UserError(f"the teacher answered none of the {len(items)} items correctly; nothing to train on")
        report["data"] = {"source": source, "rows": len(rows), "items_with_correct_answer": len({it.id for it, _ in rows})}
        args = trl.SFTConfig(**_args(cfg, work, max_length=None, completion_only_loss=True))
        return trl.SFTTrainer(model=student, args=args, train_dataset=_dataset(run_dir, rows, cfg.prompt_format),
                              processing_class=processor, peft_config=peft_config)
    teacher, t_proc = _load(model_dir(teacher_spec), cfg)
    if processor.tokenizer.get_vocab() != t_proc.tokenizer.get_vocab():
        raise UserError("on-policy distillation compares token distributions: teacher and student need the same "
                        "tokenizer vocabulary")
    given: dict[str, str] | None = None
    report["data"] = {"source": "student samples", "items": len(items)}
    if cfg.lmbda < 1.0:  # GKD: a share 1 - λ of the batches trains on the teacher's own verified responses
        rows, source = teacher_answers(run_dir, items, teacher_spec, cfg)
        given = {}
        for it, text in rows:
            given.setdefault(it.id, text)
        report["data"] = {"source": f"student samples (λ = {cfg.lmbda}) and {source}", "items": len(items),
                          "items_with_teacher_response": len(given)}
    args = trl.DistillationConfig(**_args(cfg, work, beta=cfg.beta, temperature=cfg.temperature, top_k=0, top_p=1.0,
                                          max_completion_length=cfg.max_new_tokens))
    return mixed_trainer(trl)(model=student, teacher_model=teacher, args=args, processing_class=processor,
                              train_dataset=_dataset(run_dir, [(it, None) for it in items], cfg.prompt_format, given),
                              peft_config=peft_config, lmbda=cfg.lmbda, mix_seed=cfg.seed)


def _select(run_dir: Path | str, item_ids: Sequence[str] | None) -> list[Item]:
    items = list(RunStore(run_dir).iter_items())
    if item_ids is not None:
        by_id = {it.id: it for it in items}
        missing = [i for i in item_ids if i not in by_id]
        if missing:
            raise UserError(f"{len(missing)} item ids are not in {run_dir}, e.g. {missing[0]}")
        items = [by_id[i] for i in item_ids]
    if not items:
        raise UserError(f"no items to distil on in {run_dir}")
    return items


def _accuracy(model: Any, processor: Any, eval_run: Path | str) -> dict[str, Any]:
    from deltaprompts.lab import build

    ev = list(RunStore(eval_run).iter_items())
    return build.accuracy(ev, build.greedy_answers(model, processor, eval_run, ev))


def distill(run_dir: Path | str, teacher_spec: str, student_spec: str, out_dir: Path | str, cfg: DistillConfig, *,
            item_ids: Sequence[str] | None = None, eval_run: Path | str | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Distil the teacher into (a copy of) the student on the items of `run_dir` (or those of
    `item_ids`) and save the student to `out_dir` with distill.json (config, TRL trainer and version,
    data, per-step losses, timings, greedy accuracy on `eval_run` before and after, if given).
    Returns that report.

    Raises UserError for a bad config, unknown item ids, a non-empty out_dir, models that are not
    local transformers folders, a missing TRL, or (on-policy) models whose vocabularies differ.
    """
    import torch
    from transformers import PrinterCallback, TrainerCallback

    check_config(cfg)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"output directory {out} is not empty; choose a new one")
    items = _select(run_dir, item_ids)
    if cfg.mode == "on-policy":
        model_dir(teacher_spec)  # fail before loading anything
    trl = _trl()
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    student, processor = _load(model_dir(student_spec), cfg)
    report: dict[str, Any] = {"run": str(run_dir), "teacher": teacher_spec, "student": student_spec,
                              "config": asdict(cfg), "items": len(items), "trl": trl.__version__}
    if eval_run is not None:
        report["before"] = _accuracy(student, processor, eval_run)
    losses: list[float] = []

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(round(float(logs["loss"]), 5))
                if log and (state.global_step % 25 == 1 or state.global_step == cfg.steps):
                    log(f"{cfg.mode} step {state.global_step} loss {losses[-1]:.4f}")

    with tempfile.TemporaryDirectory(prefix="distill-") as work:
        trainer = _trainer(cfg, run_dir, items, teacher_spec, student, processor, work, report)
        report["trainer"] = "SFTTrainer" if cfg.mode == "off-policy" else "DistillationTrainer"
        trainer.remove_callback(PrinterCallback)  # without tqdm, transformers prints every log dict
        trainer.add_callback(_Log())
        t1 = time.time()
        trainer.train()
        t2 = time.time()
    if hasattr(trainer, "batches"):  # on-policy: how many generation batches were the student's, the teacher's
        report["batches"] = dict(trainer.batches)
    student = trainer.model
    if cfg.lora_r:
        student = student.merge_and_unload()
    student.eval()
    if eval_run is not None:
        report["after"] = _accuracy(student, processor, eval_run)
    report.update(losses=losses, timings={"setup": round(t1 - t0, 2), "train": round(t2 - t1, 2),
                                          "total": round(time.time() - t0, 2)}, seconds=round(time.time() - t0, 1))
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out)
    processor.save_pretrained(out)
    (out / DISTILL_FILE).write_text(json.dumps(report, indent=1) + "\n")
    return report
