"""Does the toy VLM's image pathway survive training? The probe behind docs/lab.md "Third attempt".

A teacher-sized lab model learns to memorise a few items of one question family. Each row is one
`vision_lr` (the learning-rate scale of the vision tower and projector); it prints, at
initialisation, after 5 steps and at the end: the projector output's mean norm (the image tokens the
decoder reads), the share of its energy that differs between the images of a batch, and the largest
change of an answer logit when the batch's images are shuffled; then the accuracy on the memorised
items against their majority answer.

    python benchmarks/lab_collapse.py --work /tmp/lab-collapse --vision-lr 1 0.1
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path


def probe(args: argparse.Namespace, vision_lr: float) -> None:
    import torch

    from deltaprompts.lab import build, data
    from deltaprompts.store import RunStore

    items = [it for it in RunStore(args.work).iter_items() if it.question.family == args.family][:args.items]
    tok = build.train_tokenizer([data.prompt_text(it) for it in items] + [it.question.answer for it in items])
    cfg = build.BuildConfig()
    model, proc = build.new_model(tok, cfg.teacher, cfg.image_size, cfg.patch_size, seed=0)
    n_img = model.config.image_seq_length
    seen: dict[str, float] = {}

    def watch(module, inputs, out):  # a torch forward hook
        f = out.detach()
        seen["norm"] = f.norm(dim=-1).mean().item()
        seen["share"] = (f.var(dim=0).sum(-1).mean() / f.pow(2).sum(-1).mean()).item()

    model.model.multi_modal_projector.register_forward_hook(watch)
    examples = build.Examples([(args.work, items)], proc, (args.family,))
    fixed = examples.batch(random.Random(5), 32, 1, n_img)
    shuffled = {**fixed, "pixel_values": fixed["pixel_values"][torch.randperm(32, generator=torch.Generator().manual_seed(0))]}
    answer = (fixed["labels"] != -100)[:, 1:]

    def measure() -> str:
        model.eval()
        with torch.no_grad():
            change = (model(**shuffled).logits - model(**fixed).logits)[:, :-1][answer].abs().max().item()
        model.train()
        return f"norm {seen['norm']:7.2f}  differing {seen['share']:.4f}  logit change {change:.4f}"

    row = [f"init: {measure()}"]
    tcfg = build.TrainConfig(lr=2e-3, warmup=0, final_lr=1.0, vision_lr=vision_lr)  # a constant lr
    opt = build.make_optimizer(model, tcfg)
    build.set_lr(opt, 0, tcfg)  # x vision_lr on the vision side; clip 1.0 below
    rng = random.Random(0)
    t0 = time.time()
    model.train()
    for step in range(1, args.steps + 1):
        model(**examples.batch(rng, 32, 1, n_img)).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step in (5, args.steps):
            row.append(f"step {step}: {measure()}")
    acc = build.accuracy(items, build.greedy_answers(model, proc, args.work, items))["overall"]
    majority = Counter(it.question.answer for it in items).most_common(1)[0][1] / len(items)
    print(f"vision_lr {vision_lr}: " + " | ".join(row)
          + f" | memorised {acc:.2f} (majority {majority:.2f}) in {time.time() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="a lab scene run (made here if missing)")
    ap.add_argument("--family", default="scene.count_shape")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--vision-lr", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from deltaprompts.lab import data

    torch.set_num_threads(args.threads)
    data.make_run(args.work, 2000, 0, families=("scene.shapes", "scene.grid"), reuse=True)
    for v in args.vision_lr:
        probe(args, v)


if __name__ == "__main__":
    main()
