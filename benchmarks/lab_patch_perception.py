"""Does the toy VLM's vision side see colour and shape? docs/lab.md "Fourth attempt".

A teacher-sized lab model's vision tower and projector, with the training-only patch heads of
`build.PatchProbe`, are trained on the patch labels alone (each patch's object colour and shape
from the scene Facts, `data.patch_targets`; no questions, no decoder). At checkpoints it prints how
often the heads name the right colour and the right shape on the patches an object covers, over
128 held-out scene images, against the shape a guess would get right.

    python benchmarks/lab_patch_perception.py --work /tmp/lab-perception
    python benchmarks/lab_patch_perception.py --work /tmp/lab-perception --vocabulary basic --patch 16 32
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

SCENES = ("scene.shapes", "scene.grid")


def runs(work: Path, vocabulary: str, n: int) -> tuple[Path, Path]:
    """A training and an eval scene run with the lab knobs and this scene vocabulary (made if missing)."""
    from deltaprompts.lab import data

    for family in SCENES:
        data.KNOBS[f"{family}:vocabulary"] = vocabulary
    base = work / vocabulary
    data.make_run(base / "train", n, 0, families=SCENES, reuse=True, workers=2)
    data.make_run(base / "eval", 300, 10001, families=SCENES, reuse=True, workers=1)
    return base / "train", base / "eval"


def probe(train_dir: Path, eval_dir: Path, patch: int, args: argparse.Namespace) -> str:
    import torch

    from deltaprompts.lab import build, data
    from deltaprompts.store import RunStore

    train = list(RunStore(train_dir).iter_items())
    held = list(RunStore(eval_dir).iter_items())
    tok = build.train_tokenizer([data.prompt_text(it) for it in train] + [it.question.answer for it in train])
    cfg = build.BuildConfig()
    model, proc = build.new_model(tok, cfg.teacher, cfg.image_size, patch, seed=0)
    families = tuple(sorted({it.question.family for it in train}))
    examples = build.Examples([(train_dir, train)], proc, families, patch_size=patch)
    held_batch = build.Examples([(eval_dir, held)], proc, families, patch_size=patch).batch(
        random.Random(5), 128, 1, model.config.image_seq_length)
    heads = build.PatchProbe(model)
    vision = build.vision_params(model)
    opt = torch.optim.AdamW(vision + list(heads.heads.parameters()), lr=2e-3, betas=(0.9, 0.98))

    def scores() -> str:
        model.eval()
        with torch.no_grad():
            build.image_tokens(model, held_batch["pixel_values"])  # the projector hook feeds the heads
            out = []
            for k, head in enumerate(heads.heads):
                target = held_batch["patch_labels"][:, k]
                on_object = (target >= 0) & (target < head.out_features - 1)  # the last class is "none"
                right = (head(heads.features).argmax(-1) == target) & on_object
                out.append(right.sum().item() / max(1, on_object.sum().item()))
        model.train()
        return f"{out[0]:.2f} / {out[1]:.2f}"

    rng, marks, t0 = random.Random(0), [], time.time()
    for step in range(1, args.steps + 1):
        batch = examples.batch(rng, 32, 1, model.config.image_seq_length)
        build.image_tokens(model, batch["pixel_values"])
        loss = heads.loss(batch["patch_labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.every == 0 or step == args.steps:
            marks.append(f"{step}: {scores()}")
    heads.close()
    shapes = {e.attrs["shape"] for it in held for e in it.facts.entities}
    return f"| {patch} px | {'  '.join(marks)} | {1 / len(shapes):.2f} | {time.time() - t0:.0f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the scene runs (made here if missing)")
    ap.add_argument("--vocabulary", choices=("full", "basic"), default="full", help="the scene knob")
    ap.add_argument("--patch", type=int, nargs="+", default=[16], help="patch sizes (the build uses 16)")
    ap.add_argument("--items", type=int, default=4000, help="training questions (about a third as many images)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    train_dir, eval_dir = runs(args.work, args.vocabulary, args.items)
    print(f"vocabulary {args.vocabulary}: patch heads right on object patches, colour / shape at step")
    print("| patches | colour / shape right at step | shape by chance | seconds |\n|---|---|---|---|")
    for patch in args.patch:
        print(probe(train_dir, eval_dir, patch, args), flush=True)


if __name__ == "__main__":
    main()
