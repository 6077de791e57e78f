"""Distil a teacher VLM into a student: off-policy (SFT on verified teacher samples) or on-policy (reverse KL)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from deltaprompts.errors import UserError
from deltaprompts.lab import data
from deltaprompts.records import Item
from deltaprompts.store import ScoreStore

MODES = ("off-policy", "on-policy")


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run. `k` teacher samples per item make the off-policy data (those that verify
    as correct are kept); on-policy draws one student sample per item per step at `temperature`."""

    mode: Literal["off-policy", "on-policy"] = "off-policy"
    steps: int = 200
    batch: int = 16
    lr: float = 5e-4
    warmup: int = 10
    k: int = 8
    temperature: float = 1.0
    max_new_tokens: int = 8
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    gradient_checkpointing: bool = False
    lora_r: int = 0
    prompt_format: str = "plain"


def check_config(cfg: DistillConfig) -> None:
    """Raise UserError naming the first bad field of a DistillConfig."""
    if cfg.mode not in MODES:
        raise UserError(f"--mode {cfg.mode!r} is not allowed; allowed: {', '.join(MODES)}")
    for name in ("steps", "batch", "k", "max_new_tokens"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if not cfg.lr > 0 or not cfg.temperature > 0 or cfg.lora_r < 0:
        raise UserError(f"--lr ({cfg.lr}) and --temperature ({cfg.temperature}) must be > 0 and --lora-r "
                        f"({cfg.lora_r}) >= 0")


def model_dir(spec: str) -> Path:
    """The local folder of a model spec that names a transformers model (hf:PATH, toy:NAME);
    raises UserError for any other backend."""
    from deltaprompts.models.hf import HFBackend
    from deltaprompts.models.specs import load_backend

    backend = load_backend(spec)
    if not isinstance(backend, HFBackend):
        raise UserError(f"distill needs local transformers models (hf:PATH or toy:NAME); {spec!r} is {backend.identity}")
    return backend.path


def load_model(path: Path, device: str = "cpu", trainable: bool = False, cfg: DistillConfig | None = None) -> tuple[Any, Any]:
    """(model, processor) of a saved folder on `device`; a trainable one gets gradient checkpointing
    and LoRA adapters if the config asks for them."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).to(device)
    if trainable and cfg is not None:
        if cfg.gradient_checkpointing:  # renamed activation checkpointing in recent transformers
            getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
        if cfg.lora_r:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError:
                raise UserError("--lora-r needs the peft package: pip install peft") from None
            model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules=[
                "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train(trainable)
    return model, processor


class Pixels:
    """The uint8 pixels of a run's images for one processor, fetched by item."""

    def __init__(self, run_dir: Path | str, items: Sequence[Item], processor: Any):
        self.processor = processor
        self.paths = sorted({it.image.path for it in items})
        self.where = {p: i for i, p in enumerate(self.paths)}
        self.u8 = data.load_pixels(run_dir, self.paths, processor)

    def of(self, items: Sequence[Item]) -> Any:
        import torch

        return data.to_pixels(self.u8[torch.tensor([self.where[it.image.path] for it in items])], self.processor)


# ------------------------------------------------------------------ losses


def sft_batch(encoder: data.Encoder, pixels: Pixels, n_img: int, rows: Sequence[tuple[Item, str]], fmt: str) -> dict[str, Any]:
    """Inputs and labels of (item, answer) pairs, single-turn, loss on the answer and end of turn."""
    enc = [encoder.encode([(data.prompt_text(it, fmt), a)], n_img) for it, a in rows]
    ids, mask, labels = data.collate(enc, encoder.tok.pad_token_id)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": pixels.of([it for it, _ in rows])}


def sft_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy of the answer tokens."""
    return model(**{k: v.to(model.device) for k, v in batch.items()}).loss


def _prompt_ids(encoder: data.Encoder, items: Sequence[Item], n_img: int, fmt: str) -> list[list[int]]:
    return [encoder.encode([(data.prompt_text(it, fmt), None)], n_img)[0] for it in items]


def sample_student(student: Any, encoder: data.Encoder, pixels: Pixels, items: Sequence[Item], cfg: DistillConfig,
                   generator_seed: int) -> list[list[int]]:
    """One sampled answer (token ids, end of turn included when it stopped) per item from the student.
    The image placeholder token is never sampled: fed back with the prompt it would ask for an image
    feature that does not exist (an untrained student does emit it)."""
    import torch

    n_img = student.config.image_seq_length
    rows = _prompt_ids(encoder, items, n_img, cfg.prompt_format)
    n = max(map(len, rows))
    pad, eos = encoder.tok.pad_token_id, encoder.tok.eos_token_id
    ids = torch.full((len(rows), n), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, n - len(row):] = torch.tensor(row)
        mask[r, n - len(row):] = 1
    was_training = student.training
    student.eval()
    dev = student.device
    with torch.no_grad(), torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(generator_seed)
        out = student.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), pixel_values=pixels.of(items).to(dev),
                               do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0,
                               max_new_tokens=cfg.max_new_tokens, eos_token_id=eos, pad_token_id=pad,
                               suppress_tokens=[student.config.image_token_index])
    student.train(was_training)
    samples = []
    for row in out[:, n:].cpu().tolist():
        samples.append(row[:row.index(eos) + 1] if eos in row else row)
    return samples


def kl_batch(encoder: data.Encoder, pixels: Pixels, n_img: int, items: Sequence[Item], samples: Sequence[list[int]],
             fmt: str) -> dict[str, Any]:
    """One model's inputs for prompt + sampled answer, with a mask of the positions that predict
    the answer tokens (the sampled ids are reused, never re-tokenised, so both models see the same)."""
    prompts = _prompt_ids(encoder, items, n_img, fmt)
    rows = [(p + list(s), [-100] * len(p) + list(s)) for p, s in zip(prompts, samples)]
    ids, mask, labels = data.collate(rows, encoder.tok.pad_token_id)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels.of(items), "targets": labels}


def _answer_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Logits at the positions that predict each answer token, flattened in order: [n_tokens, vocab]."""
    inputs = {k: v.to(model.device) for k, v in batch.items() if k != "targets"}
    logits = model(**inputs).logits[:, :-1].float()
    where = batch["targets"][:, 1:].to(model.device) != -100
    return logits[where], batch["targets"][:, 1:].to(model.device)[where]


def reverse_kl_loss(student: Any, teacher: Any, s_batch: dict[str, Any], t_batch: dict[str, Any]) -> Any:
    """Mean over the student's sampled answer tokens of KL(student || teacher) over the vocabulary
    at that position (the GKD / on-policy distillation objective with λ = 1)."""
    import torch

    s_logits, s_tok = _answer_logits(student, s_batch)
    with torch.no_grad():
        t_logits, t_tok = _answer_logits(teacher, t_batch)
    if s_tok.shape != t_tok.shape or not torch.equal(s_tok.cpu(), t_tok.cpu()):
        raise UserError("teacher and student inputs disagree on the sampled answer tokens")
    log_s = torch.log_softmax(s_logits, -1)
    log_t = torch.log_softmax(t_logits.to(log_s.device), -1)
    return (log_s.exp() * (log_s - log_t)).sum(-1).mean()


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map every token to the same id (needed for token-level KL)."""
    return a.get_vocab() == b.get_vocab()


# ------------------------------------------------------------------ driver


def teacher_answers(run_dir: Path | str, items: Sequence[Item], teacher_spec: str, cfg: DistillConfig) -> tuple[list[tuple[Item, str]], str]:
    """The teacher's correct answers to items (with multiplicity): samples already in the run's
    scores/samples-teacher.jsonl when they came from this very teacher (no new model calls), and
    k fresh samples each for the items that have none there (e.g. a pipeline run root, whose scores
    hold only Δ records). Returns (item, answer) pairs and where they came from."""
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.prompts import build_request
    from deltaprompts.models.specs import load_backend
    from deltaprompts.verifiers import score_item_answer

    backend = load_backend(teacher_spec)
    scores = ScoreStore(run_dir)
    meta = scores.meta()
    stored: dict[str, list[tuple[str, float]]] = {}
    if meta.get("teacher") == backend.identity and meta.get("prompt_format") == cfg.prompt_format:
        for smp in scores.samples("teacher").values():
            stored.setdefault(smp.item, []).append((smp.text, smp.score))
    out = [(it, a) for it in items for a, score in stored.get(it.id, []) if score >= 1.0]
    fresh = [it for it in items if it.id not in stored]
    if not fresh:
        return out, ScoreStore.samples_file("teacher")
    sampling = Sampling(temperature=cfg.temperature, top_k=0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    requests = [build_request(it, run_dir, cfg.prompt_format) for it in fresh]
    for s in range(0, len(fresh), 32):
        comps = backend.sample(requests[s:s + 32], sampling, [list(range(cfg.k))] * len(requests[s:s + 32]))
        for it, cs in zip(fresh[s:s + 32], comps):
            out += [(it, c.text) for c in cs if score_item_answer(it, c.text) >= 1.0]
    if stored:
        return out, f"{ScoreStore.samples_file('teacher')}, and {cfg.k} fresh teacher samples for {len(fresh)} items"
    return out, f"{cfg.k} fresh teacher samples per item"


def distill(run_dir: Path | str, teacher_spec: str, student_spec: str, out_dir: Path | str, cfg: DistillConfig, *,
            item_ids: Sequence[str] | None = None, eval_run: Path | str | None = None,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Distil the teacher into (a copy of) the student on the items of `run_dir` (or those of
    `item_ids`) and save the student to `out_dir` with distill.json (config, data, loss curve, and
    greedy accuracy on `eval_run` before and after, if given). Returns that report.

    Raises UserError for a bad config, unknown item ids, a non-empty out_dir, models that are not
    local transformers folders, or (on-policy) models whose vocabularies differ.
    """
    import torch

    from deltaprompts.lab import build
    from deltaprompts.store import RunStore

    check_config(cfg)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"output directory {out} is not empty; choose a new one")
    items = list(RunStore(run_dir).iter_items())
    if item_ids is not None:
        by_id = {it.id: it for it in items}
        missing = [i for i in item_ids if i not in by_id]
        if missing:
            raise UserError(f"{len(missing)} item ids are not in {run_dir}, e.g. {missing[0]}")
        items = [by_id[i] for i in item_ids]
    if not items:
        raise UserError(f"no items to distil on in {run_dir}")
    t0 = time.time()
    teacher_dir = model_dir(teacher_spec) if cfg.mode == "on-policy" else None  # off-policy: any backend samples
    student, s_proc = load_model(model_dir(student_spec), cfg.device, trainable=True, cfg=cfg)
    s_enc, s_pix = data.Encoder(s_proc), Pixels(run_dir, items, s_proc)
    n_img = student.config.image_seq_length
    report: dict[str, Any] = {"run": str(run_dir), "teacher": teacher_spec, "student": student_spec,
                              "config": asdict(cfg), "items": len(items)}
    if eval_run is not None:
        ev = list(RunStore(eval_run).iter_items())
        report["before"] = build.accuracy(ev, build.greedy_answers(student, s_proc, eval_run, ev))
    if cfg.mode == "off-policy":
        rows, source = teacher_answers(run_dir, items, teacher_spec, cfg)
        if not rows:
            raise UserError(f"the teacher answered none of the {len(items)} items correctly; nothing to train on")
        report["data"] = {"source": source, "rows": len(rows), "items_with_correct_answer": len({it.id for it, _ in rows})}
    else:
        teacher, t_proc = load_model(teacher_dir, cfg.device)
        if not same_vocabulary(s_proc.tokenizer, t_proc.tokenizer):
            raise UserError("on-policy distillation compares token distributions: teacher and student need the same "
                            "tokenizer vocabulary")
        t_enc, t_pix = data.Encoder(t_proc), Pixels(run_dir, items, t_proc)
        report["data"] = {"source": "student samples", "items": len(items)}
    sched = build.TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup=min(cfg.warmup, cfg.steps), vision_lr=1.0)
    opt = build.make_optimizer(student, sched)
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    dev = torch.device(cfg.device)
    losses = []
    student.train()
    for step in range(cfg.steps):
        build.set_lr(opt, step, sched)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            if cfg.mode == "off-policy":
                loss = sft_loss(student, sft_batch(s_enc, s_pix, n_img, rng.choices(rows, k=cfg.batch), cfg.prompt_format))
            else:
                part = rng.choices(items, k=cfg.batch)
                samples = sample_student(student, s_enc, s_pix, part, cfg, cfg.seed * 1_000_003 + step)
                loss = reverse_kl_loss(student, teacher,
                                       kl_batch(s_enc, s_pix, n_img, part, samples, cfg.prompt_format),
                                       kl_batch(t_enc, t_pix, teacher.config.image_seq_length, part, samples,
                                                cfg.prompt_format))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
        if log and (step % 25 == 0 or step == cfg.steps - 1):
            log(f"{cfg.mode} step {step} loss {sum(losses[-25:]) / len(losses[-25:]):.4f}")
    student.eval()
    if cfg.lora_r:
        student = student.merge_and_unload()
    if eval_run is not None:
        report["after"] = build.accuracy(ev, build.greedy_answers(student, s_proc, eval_run, ev))
    report.update(losses=losses, seconds=round(time.time() - t0, 1))
    out.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out)
    s_proc.save_pretrained(out)
    (out / "distill.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
