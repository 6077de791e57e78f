"""Train the toy teacher-student VLM pair from scratch on lab runs (LLaVA with a SigLIP tower, offline tokenizer)."""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.generators.scenes import PALETTE, SHAPES
from deltaprompts.lab import data
from deltaprompts.records import Item


@dataclass(frozen=True)
class ModelSize:
    """Widths and depths of one tiny VLM (SigLIP vision tower, Llama decoder)."""

    vision_hidden: int = 96
    vision_layers: int = 2
    text_hidden: int = 128
    text_layers: int = 2
    heads: int = 4


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained: steps, batch of images, questions asked per image (as a multi-turn
    chat), AdamW with warm-up and cosine decay to `final_lr` x lr, and the question families it sees.

    `vision_lr` scales the learning rate of the vision tower and projector (see docs/lab.md: a tenth
    keeps the image tokens distinct early on, but slowed learning on the full lab task).
    `patch_labels` > 0 adds that weight x an auxiliary loss: linear heads on the projector's output
    predict each patch's object colour and shape from the scene Facts (`data.patch_targets`), a dense
    signal the answer tokens alone do not give the tower. The heads are dropped after training: the
    saved model is a plain LLaVA.
    `chart_share` > 0 draws that share of each batch's images from the chart images (the rest from
    the scenes; 0: every image equally likely, so charts come in proportion to their number).
    `vision_steps` > 0 first trains the vision tower and projector alone on those patch labels for
    that many steps (constant lr, no decoder), then holds them frozen while the decoder trains for
    `steps`: the tower sees shape before the decoder settles (docs/lab.md, "What we tried").
    `bar_labels` adds two heads for the bar charts' patch labels (each bar's value rank and position
    from the left) to those of `patch_labels` / `vision_steps` (docs/lab.md, "What we tried").
    """

    steps: int = 1000
    batch: int = 32
    turns: int = 3
    lr: float = 2e-3
    warmup: int = 60
    final_lr: float = 0.1
    weight_decay: float = 0.01
    clip: float = 1.0
    question_families: tuple[str, ...] = data.QUESTION_FAMILIES
    first: tuple[str, ...] = ()
    augment: float = 0.0
    vision_lr: float = 1.0
    patch_labels: float = 0.0
    vision_steps: int = 0
    chart_share: float = 0.0
    bar_labels: bool = False

    @property
    def uses_patch_labels(self) -> bool:
        """Whether training needs the per-patch targets (Examples made with patch_size)."""
        return bool(self.patch_labels or self.vision_steps)


STUDENT_WITHHELD = ("scene.query_color", "scene.largest_color", "chart.bars_beside_min")


@dataclass(frozen=True)
class BuildConfig:
    """The whole build: data sizes, image resolution, both models and their training. The teacher is
    built in two stages (`vision_steps`: its tower learns the patch labels first, docs/lab.md "How it
    is built"); the student is smaller, trains jointly for fewer steps and never sees STUDENT_WITHHELD
    (so it fails them)."""

    seed: int = 0
    image_size: int = 128
    patch_size: int = 16
    train_scene_items: int = 16000
    train_chart_items: int = 1000
    eval_items: int = 600
    check_items: int = 100
    teacher: ModelSize = ModelSize(vision_hidden=96, vision_layers=2, text_hidden=128, text_layers=2)
    student: ModelSize = ModelSize(vision_hidden=64, vision_layers=2, text_hidden=96, text_layers=2)
    teacher_train: TrainConfig = TrainConfig(steps=1800, vision_steps=3000)
    student_train: TrainConfig = TrainConfig(steps=500, question_families=tuple(
        q for q in data.QUESTION_FAMILIES if q not in STUDENT_WITHHELD))


SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>", "<image>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
                 "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}"
                 "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def train_tokenizer(texts: Sequence[str]) -> Any:
    """A byte-level BPE over `texts` (questions, prompts, answers) with the chat special tokens;
    every word seen becomes one token, anything else still encodes byte by byte."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(list(texts) + ["user\nassistant\n"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<pad>")


def new_model(tok: Any, size: ModelSize, image_size: int, patch_size: int, seed: int,
              image_mean: float = 0.5) -> tuple[Any, Any]:
    """A randomly initialised LLaVA (SigLIP tower, Llama decoder) and its processor.

    `image_mean` is the pixel value normalised to 0 (std 0.5). SigLIP's 0.5 learned colour faster
    on the lab scenes than 1.0 (white -> 0), although 1.0 won on white single-object images; see
    docs/lab.md, "What we tried".
    """
    import torch
    import transformers as T

    ids = tok.convert_tokens_to_ids
    n_img = (image_size // patch_size) ** 2
    ip = T.SiglipImageProcessorPil(size={"height": image_size, "width": image_size}, image_mean=[image_mean] * 3,
                                   image_std=[0.5] * 3)
    proc = T.LlavaProcessor(image_processor=ip,
                            tokenizer=tok, patch_size=patch_size, vision_feature_select_strategy="full",
                            num_additional_image_tokens=0, chat_template=CHAT_TEMPLATE, image_token="<image>")
    vision = T.SiglipVisionConfig(hidden_size=size.vision_hidden, intermediate_size=2 * size.vision_hidden,
                                  num_hidden_layers=size.vision_layers, num_attention_heads=size.heads,
                                  image_size=image_size, patch_size=patch_size)
    text = T.LlamaConfig(vocab_size=len(tok), hidden_size=size.text_hidden, intermediate_size=2 * size.text_hidden,
                         num_hidden_layers=size.text_layers, num_attention_heads=size.heads,
                         num_key_value_heads=size.heads, max_position_embeddings=512, tie_word_embeddings=False,
                         bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<pad>"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T.LlavaForConditionalGeneration(T.LlavaConfig(
            vision_config=vision, text_config=text, image_token_index=ids("<image>"), image_seq_length=n_img,
            vision_feature_select_strategy="full", vision_feature_layer=-1))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, proc


# Scene questions whose answer no flip or quarter turn of the image changes (the lab's captions
# and chart questions name left/right or reading order, so their images are never transformed).
INVARIANT = ("scene.count_shape", "scene.count_color", "scene.query_color", "scene.query_shape", "scene.exists",
             "scene.compare_color_counts", "scene.largest_color")


class Examples:
    """Training items grouped by image, with their uint8 pixels, for sampling batches.

    `runs` pairs run directories with their items. Items of the `first` question families (the
    caption curriculum) open an image's chat whenever the image has one; the other turns are drawn
    from the rest. With probability `augment`, a batch row asks only INVARIANT questions and shows
    its image flipped / turned by a random one of the seven non-trivial symmetries of the square.
    With `chart_share` > 0, that share of a batch's images (in expectation) are charts.
    """

    def __init__(self, runs: Sequence[tuple[Path | str, Sequence[Item]]], processor: Any,
                 question_families: Sequence[str], first: Sequence[str] = (), augment: float = 0.0,
                 patch_size: int | None = None, chart_share: float = 0.0):
        import torch

        keep, lead = set(question_families), set(first)
        self.items: list[tuple[list[Item], list[Item]]] = []
        pixels = []
        for run_dir, items in runs:
            by_image: dict[str, tuple[list[Item], list[Item]]] = defaultdict(lambda: ([], []))
            for it in items:
                if it.question.question_family in lead:
                    by_image[it.image.path][0].append(it)
                elif it.question.question_family in keep:
                    by_image[it.image.path][1].append(it)
            paths = sorted(p for p, (_, rest) in by_image.items() if rest)
            self.items += [by_image[p] for p in paths]
            if paths:
                pixels.append(data.load_pixels(run_dir, paths, processor))
        if not self.items:
            raise UserError(f"no training items of question families {sorted(keep)} in {[str(r) for r, _ in runs]}")
        self.pixels = torch.cat(pixels)
        self.chart_share = chart_share
        kinds: dict[bool, list[int]] = {True: [], False: []}
        for i, (lead, rest) in enumerate(self.items):
            kinds[(lead + rest)[0].family.startswith("chart.")].append(i)
        self.charts, self.scenes = kinds[True], kinds[False]
        if chart_share and not (self.charts and self.scenes):
            raise UserError(f"chart_share={chart_share} needs both chart and scene training images "
                            f"(have {len(self.charts)} charts, {len(self.scenes)} scenes)")
        self.encoder = data.Encoder(processor)
        self.augment = augment
        self.targets = None  # per-patch colour / shape labels of each image, when patch_size is given
        if patch_size:
            size = self.pixels.shape[-1]
            self.targets = torch.stack([data.patch_targets((lead + rest)[0], size, patch_size, PATCH_COLORS, PATCH_SHAPES)
                                        for lead, rest in self.items])

    def __len__(self) -> int:
        return len(self.items)

    def _pick(self, rng: random.Random) -> int:
        """The index of one image: a chart with probability chart_share when it is set, else any."""
        if not self.chart_share:
            return rng.randrange(len(self.items))
        pool = self.charts if rng.random() < self.chart_share else self.scenes
        return pool[rng.randrange(len(pool))]

    def batch(self, rng: random.Random, size: int, turns: int, n_image_tokens: int) -> dict[str, Any]:
        """A batch of `size` images, each with up to `turns` of its questions as one chat."""
        import torch

        rows, images, targets = [], [], []
        for i in [self._pick(rng) for _ in range(size)]:
            lead, rest = self.items[i]
            img = self.pixels[i]
            if self.targets is not None:
                targets.append(self.targets[i])
            safe = [it for it in rest if it.question.question_family in INVARIANT]
            if safe and rng.random() < self.augment:
                if targets:
                    targets[-1] = torch.full_like(targets[-1], -100)  # labels of the untransformed image
                j = rng.randrange(1, 8)  # quarter turns j % 4, mirrored when j >= 4
                img = torch.rot90(img.flip(-1) if j >= 4 else img, j % 4, dims=(-2, -1))
                lead, rest = [], safe
            qs = rng.sample(lead, min(turns, len(lead)))
            qs += rng.sample(rest, min(turns - len(qs), len(rest)))
            rows.append(self.encoder.encode([(data.prompt_text(it), it.question.answer) for it in qs], n_image_tokens))
            images.append(img)
        ids, mask, labels = data.collate(rows, self.encoder.tok.pad_token_id)
        out = {"input_ids": ids, "attention_mask": mask, "labels": labels,
               "pixel_values": data.to_pixels(torch.stack(images), self.encoder.processor)}
        if targets:
            out["patch_labels"] = torch.stack(targets)
        return out


PATCH_COLORS = tuple(PALETTE)
PATCH_SHAPES = SHAPES


class PatchProbe:
    """Training-only linear heads on the projector's output (one image token per patch) that predict
    rows of `data.patch_targets` for every patch: a scene object's colour and shape, and with `bars`
    a bar's value rank and position (each with a "none" class); `loss(targets)` after a forward pass
    of the model sums the heads' cross-entropies over their labelled patches (0 for a batch with none)."""

    def __init__(self, model: Any, bars: bool = False):
        import torch

        width = model.config.text_config.hidden_size
        sizes = (len(PATCH_COLORS) + 1, len(PATCH_SHAPES) + 1) + ((data.MAX_BARS + 1,) * 2 if bars else ())
        self.heads = torch.nn.ModuleList([torch.nn.Linear(width, n) for n in sizes]).to(model.device)
        self.features: Any = None
        projector = model.model.multi_modal_projector if hasattr(model, "model") else model.multi_modal_projector
        self.hook = projector.register_forward_hook(lambda module, args, out: setattr(self, "features", out))

    def loss(self, targets: Any) -> Any:
        import torch.nn.functional as F

        f = self.features
        total = f.sum() * 0.0
        for k, h in enumerate(self.heads):
            t = targets[:, k].reshape(-1).to(f.device)
            if (t != -100).any():  # a head with no labelled patch in the batch adds nothing (not NaN)
                total = total + F.cross_entropy(h(f).reshape(-1, h.out_features), t, ignore_index=-100)
        return total

    def close(self) -> None:
        self.hook.remove()


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from lr to final_lr x lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.final_lr + (1 - cfg.final_lr) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


VISION_PARTS = ("vision_tower", "multi_modal_projector")


def is_vision(name: str) -> bool:
    """Whether a parameter name belongs to the vision tower or the projector."""
    return any(v in name for v in VISION_PARTS)


def vision_params(model: Any) -> list[Any]:
    """The trainable parameters of the vision tower and projector."""
    return [p for n, p in model.named_parameters() if p.requires_grad and is_vision(n)]


def image_tokens(model: Any, pixel_values: Any) -> Any:
    """The projector's output for these images (tower + projector only; the decoder does not run)."""
    return model.get_image_features(pixel_values=pixel_values.to(model.device), vision_feature_layer=-1,
                                    vision_feature_select_strategy="full")


def recent(values: Sequence[float], n: int = 50) -> float:
    """Mean of the last n values (0 for none): the running loss the logs and stats report."""
    return sum(values[-n:]) / max(1, len(values[-n:]))


def make_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW (betas 0.9/0.98), no weight decay on norms and biases; the vision tower and projector
    at `vision_lr` x the rate (each group's "scale" multiplies the schedule's lr: see set_lr)."""
    import torch

    groups: dict[tuple[bool, bool], list[Any]] = defaultdict(list)
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups[(is_vision(n), p.ndim >= 2)].append(p)
    return torch.optim.AdamW([{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
                               "scale": cfg.vision_lr if vision else 1.0}
                              for (vision, decay), ps in sorted(groups.items())], lr=cfg.lr, betas=(0.9, 0.98))


def set_lr(opt: Any, step: int, cfg: TrainConfig) -> None:
    """Set every parameter group of a make_optimizer optimizer to the schedule's lr at `step` x its scale."""
    for g in opt.param_groups:
        g["lr"] = lr_at(step, cfg) * g["scale"]


def train(model: Any, examples: Examples, cfg: TrainConfig, n_image_tokens: int, seed: int,
          deadline: float | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Supervised training on answer tokens; stops at cfg.steps or at `deadline` (time.time()).
    Returns {steps, seconds, loss (mean of the last 50 steps), stopped_early}."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    if cfg.uses_patch_labels and examples.targets is None:
        raise UserError("patch_labels and vision_steps need Examples made with patch_size")
    first, frozen = {}, []
    if cfg.vision_steps:  # stage 1, then the tower and projector stay as it left them
        first = train_vision(model, examples, cfg, n_image_tokens, rng, deadline, log)
        frozen = vision_params(model)
        for p in frozen:
            p.requires_grad_(False)
    opt = make_optimizer(model, cfg)
    probe = None
    if cfg.patch_labels:
        probe = PatchProbe(model, cfg.bar_labels)
        opt.add_param_group({"params": list(probe.heads.parameters()), "weight_decay": 0.0, "scale": 1.0})
    model.train()
    losses: list[float] = []
    aux: list[float] = []
    t0 = time.time()
    step = 0
    for step in range(cfg.steps):
        if deadline is not None and time.time() > deadline:
            break
        set_lr(opt, step, cfg)
        batch = examples.batch(rng, cfg.batch, cfg.turns, n_image_tokens)
        targets = batch.pop("patch_labels", None)
        loss = model(**{k: v.to(model.device) for k, v in batch.items()}).loss
        losses.append(loss.item())
        if probe is not None:
            extra = probe.loss(targets)
            aux.append(extra.item())
            loss = loss + cfg.patch_labels * extra
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if log and (step % 100 == 0 or step == cfg.steps - 1):
            log(f"step {step} loss {recent(losses):.3f} lr {lr_at(step, cfg):.2e} "
                + (f"patch loss {recent(aux):.3f} " if aux else "") + f"{time.time() - t0:.0f}s")
    else:
        step = cfg.steps
    if probe is not None:
        probe.close()
    for p in frozen:
        p.requires_grad_(True)
    model.eval()
    out = {**first, "steps": step, "seconds": round(time.time() - t0, 1), "loss": round(recent(losses), 4),
           "stopped_early": step < cfg.steps}
    if aux:
        out["patch_loss"] = round(recent(aux), 4)
    return out


def train_vision(model: Any, examples: Examples, cfg: TrainConfig, n_image_tokens: int, rng: random.Random,
                 deadline: float | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The vision tower and projector alone, trained for cfg.vision_steps on the patch labels (PatchProbe
    heads; the decoder does not run); returns {vision_steps, vision_seconds, vision_patch_loss}."""
    import torch

    probe = PatchProbe(model, cfg.bar_labels)
    params = vision_params(model)
    opt = torch.optim.AdamW(params + list(probe.heads.parameters()), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    model.train()
    losses: list[float] = []
    t0 = time.time()
    step = 0
    for step in range(cfg.vision_steps):
        if deadline is not None and time.time() > deadline:
            break
        batch = examples.batch(rng, cfg.batch, 1, n_image_tokens)
        image_tokens(model, batch["pixel_values"])  # the projector hook feeds the probe
        loss = probe.loss(batch["patch_labels"])
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if log and (step % 100 == 0 or step == cfg.vision_steps - 1):
            log(f"vision step {step} patch loss {recent(losses):.3f} {time.time() - t0:.0f}s")
    else:
        step = cfg.vision_steps
    probe.close()
    return {"vision_steps": step, "vision_seconds": round(time.time() - t0, 1),
            "vision_patch_loss": round(recent(losses), 4)}


def greedy_answers(model: Any, processor: Any, run_dir: Path | str, items: Sequence[Item], batch: int = 64,
                   max_new_tokens: int = 8) -> list[str]:
    """Greedy answers of an in-memory model to items (single-turn, prompt format plain), batched."""
    import torch

    enc = data.Encoder(processor)
    n_img = model.config.image_seq_length
    paths = sorted({it.image.path for it in items})
    pixels = data.load_pixels(run_dir, paths, processor)
    where = {p: i for i, p in enumerate(paths)}
    out: list[str] = []
    eos, pad = processor.tokenizer.eos_token_id, processor.tokenizer.pad_token_id
    model.eval()
    for s in range(0, len(items), batch):
        part = items[s:s + batch]
        rows = [enc.encode([(data.prompt_text(it), None)], n_img)[0] for it in part]
        n = max(map(len, rows))
        ids = torch.full((len(rows), n), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(rows):  # left padding, as for generation
            ids[r, n - len(row):] = torch.tensor(row)
            mask[r, n - len(row):] = 1
        px = data.to_pixels(pixels[torch.tensor([where[it.image.path] for it in part])], processor)
        dev = model.device
        with torch.no_grad():
            gen = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), pixel_values=px.to(dev, model.dtype),
                                 do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad)
        for row in gen[:, n:].cpu().tolist():
            row = row[:row.index(eos)] if eos in row else row
            out.append(processor.tokenizer.decode(row, skip_special_tokens=True))
    return out


def accuracy(items: Sequence[Item], answers: Sequence[str]) -> dict[str, Any]:
    """Greedy accuracy overall and per question family: {overall, n, families: {name: {acc, n}}}."""
    from deltaprompts.verifiers import score_item_answer

    per: dict[str, list[float]] = defaultdict(list)
    for it, a in zip(items, answers):
        per[it.question.question_family].append(score_item_answer(it, a))
    total = [x for xs in per.values() for x in xs]
    return {"overall": round(sum(total) / max(1, len(total)), 4), "n": len(total),
            "families": {f: {"acc": round(sum(xs) / len(xs), 4), "n": len(xs)} for f, xs in sorted(per.items())}}


# ------------------------------------------------------------------ the build


def run_seeds(seed: int) -> dict[str, int]:
    """The generate seeds of the build's runs: training, held-out eval, and the fixed 100-item check."""
    return {"train": seed, "train_charts": seed + 5_003, "eval": seed + 10_001, "check": seed + 20_002}


def hf_accuracy(model_dir: Path, run_dir: Path, batch_size: int = 50) -> dict[str, Any]:
    """Greedy accuracy of a saved model through the hf backend (as `hf:`/`toy:` specs load it)."""
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.hf import HFBackend
    from deltaprompts.models.prompts import build_request
    from deltaprompts.store import RunStore

    items = list(RunStore(run_dir).iter_items())
    backend = HFBackend(str(model_dir), batch_size=batch_size)
    comps = backend.sample([build_request(it, run_dir) for it in items], Sampling(temperature=0.0, max_new_tokens=8),
                           [[0]] * len(items))
    return accuracy(items, [c[0].text for c in comps])


def shipped_dir() -> Path:
    """The package's folder of the shipped pair (`models/teacher`, `models/student`), which `toy:NAME` loads."""
    from importlib import resources

    return Path(str(resources.files("deltaprompts.lab") / "models"))


def build(out_dir: Path | str | None, *, into_package: bool = False, minutes: float = 20.0, seed: int = 0,
          cfg: BuildConfig = BuildConfig(), work_dir: Path | str | None = None, log: Callable[[str], None] = print,
          families: Sequence[str] = data.FAMILIES) -> dict[str, Any]:
    """Generate the lab runs, train the teacher and the student from scratch, save them as
    `out_dir/teacher` and `out_dir/student` (HF folders with accuracy.json), and return the
    build report (also in each accuracy.json).

    `out_dir` is required unless `into_package` is set: then (with `out_dir` None or `shipped_dir()`)
    the pair replaces the package's shipped one (what `toy:teacher` / `toy:student` load). Training
    stops early if the `minutes` budget would be overrun (the report says so). Runs go to `work_dir`
    (a temporary folder by default, removed afterwards). Raises UserError for a bad budget, for neither
    or both of `out_dir` and `into_package`, or for an `out_dir` inside the package without `into_package`.
    """
    import shutil
    import tempfile

    if minutes <= 0:
        raise UserError(f"--minutes must be > 0, got {minutes}")
    if into_package and out_dir is not None and Path(out_dir).resolve() != shipped_dir().resolve():
        raise UserError(f"--into-package writes to {shipped_dir()}; it excludes --out {out_dir}: pick one")
    if not into_package and out_dir is None:
        raise UserError("lab build needs an output folder: pass --out DIR, or --into-package to replace the "
                        f"shipped toy pair in {shipped_dir()}")
    out = shipped_dir() if into_package else Path(out_dir)  # type: ignore[arg-type]
    package = shipped_dir().resolve().parent
    if not into_package and (out.resolve() == package or package in out.resolve().parents):
        raise UserError(f"--out {out_dir} lies inside the package ({package}); pass --into-package "
                        "to replace the shipped toy pair, or choose a folder outside it")
    t0 = time.time()
    end = t0 + minutes * 60
    cfg = replace(cfg, seed=seed)
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="deltaprompts-lab-"))
    seeds = run_seeds(seed)
    timings: dict[str, float] = {}
    try:
        from deltaprompts.store import RunStore

        runs = {name: tmp / name for name in seeds}
        scenes = tuple(f for f in families if f.startswith("scene."))
        charts = tuple(f for f in families if not f.startswith("scene."))
        curriculum = tuple(dict.fromkeys(cfg.teacher_train.first + cfg.student_train.first))
        todo = [("train", cfg.train_scene_items, scenes, data.QUESTION_FAMILIES + curriculum),
                ("train_charts", cfg.train_chart_items if charts else 0, charts, data.QUESTION_FAMILIES),
                ("eval", cfg.eval_items, families, data.QUESTION_FAMILIES),
                ("check", cfg.check_items, families, data.QUESTION_FAMILIES)]
        train_items: dict[str, list[Item]] = {"train": [], "train_charts": []}
        for name, n, fams, qfams in todo:
            if not n or not fams:
                continue
            s = time.time()
            # training images in two processes: they are the bulk of the build's rendering
            data.make_run(runs[name], n, seeds[name], families=fams, question_families=qfams, reuse=True,
                          workers=2 if name.startswith("train") else 1)
            timings[f"data_{name}"] = round(time.time() - s, 1)
            log(f"{name} run: {n} items, {timings[f'data_{name}']}s")
            if name in train_items:
                train_items[name] = list(RunStore(runs[name]).iter_items())
        items = train_items["train"] + train_items["train_charts"]
        tok = train_tokenizer([data.prompt_text(it) for it in items] + [it.question.answer for it in items])
        report: dict[str, Any] = {"config": asdict(cfg), "seeds": seeds, "timings": timings}
        models = {}
        for role, size, tcfg, share in (("teacher", cfg.teacher, cfg.teacher_train, 0.8),
                                        ("student", cfg.student, cfg.student_train, 1.0)):
            s = time.time()
            model, proc = new_model(tok, size, cfg.image_size, cfg.patch_size, seed)
            examples = Examples([(runs[r], train_items[r]) for r in ("train", "train_charts")], proc, tcfg.question_families,
                                tcfg.first, tcfg.augment, cfg.patch_size if tcfg.uses_patch_labels else None,
                                tcfg.chart_share)
            left = end - s - 90  # keep time to save and evaluate
            stats = train(model, examples, tcfg, model.config.image_seq_length, seed, deadline=s + share * left,
                          log=lambda m, r=role: log(f"{r}: {m}"))
            timings[role] = round(time.time() - s, 1)
            models[role] = (model, proc, stats)
        out.mkdir(parents=True, exist_ok=True)
        for role, (model, proc, stats) in models.items():
            folder = out / role
            if folder.exists():
                shutil.rmtree(folder)
            model.save_pretrained(folder)
            proc.save_pretrained(folder)
            s = time.time()
            acc = {"eval": {"seed": seeds["eval"], **hf_accuracy(folder, runs["eval"])},
                   "check": {"seed": seeds["check"], **hf_accuracy(folder, runs["check"])}}
            timings[f"eval_{role}"] = round(time.time() - s, 1)
            acc.update(train=stats, params=sum(p.numel() for p in model.parameters()),
                       question_families=list(getattr(cfg, f"{role}_train").question_families))
            report[role] = acc
            log(f"{role}: eval accuracy {acc['eval']['overall']:.3f}, check {acc['check']['overall']:.3f}")
        timings["total"] = round(time.time() - t0, 1)
        for role in models:
            (out / role / "accuracy.json").write_text(json.dumps(
                {**report[role], "build": {k: v for k, v in report.items() if k not in ("teacher", "student")}},
                indent=1) + "\n")
        return report
    finally:
        if not work_dir:
            shutil.rmtree(tmp, ignore_errors=True)
