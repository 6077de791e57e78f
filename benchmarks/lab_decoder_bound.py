"""How far does the toy teacher's decoder get when perception is perfect? docs/lab.md "Fourth attempt".

The lab teacher's language model (the Llama decoder of `BuildConfig().teacher`, trained from scratch
with the build's optimiser and schedule) reads a scene as words instead of pixels, e.g.
`red star ; blue circle ; red cross ; how many red objects ? A:` -> `2`, one word per token. Every
step draws fresh scenes (2-5 objects, 3 colours and 3 shapes per scene out of the scene generator's
10 colours and 8 shapes), so nothing can be memorised and perception cannot fail: what is left is
whether this decoder learns the question's reasoning within a CPU build's steps. `--forms` sets how
a scene reaches the decoder:

- `words`: three tokens per object (`red star ;`, `big` after the largest one), as text would;
- `object`: one position per object whose input embedding is the sum of its words' embeddings
  (`E[red] + E[star]`), as an ideal image token carrying both attributes would be;
- `patches`: an 8 x 8 grid of such positions, each object covering a random 1 x 1 to 2 x 2 block and
  `E[none]` elsewhere: the lab's 64 image tokens with perfect per-patch features;
- `grid`: a 4 x 4 grid of such positions, each object in one random cell and `E[none]` elsewhere:
  a 4 x 4 `scene.grid` seen in 32-px patches, one object per image token (`--cells 64`: 8 x 8
  positions, as if only each object's centre patch carried it).

`--pool N` draws the training scenes from N fixed ones instead of fresh ones each step (the lab
trains on a fixed run of a few thousand images); `--present` asks count_color only of colours the
scene has (answers 1-5, as the lab's template; by default any of its three colours, so 0 too).
`--lr`, `--weight-decay`, `--heads`, `--rope-theta`, `--layers`, `--hidden` change the decoder and its
training (docs/lab.md "Sixth attempt": at a quarter of the build's learning rate it counts).

One row per task and form:

- `count_color`: how many objects have the named colour (lab `scene.count_color`);
- `query_shape`: the shape of the one object of the named colour (lab `scene.query_shape`);
- `exists`: is there an object of the named colour and shape (lab `scene.exists`);
- `largest_color`: the colour of the object marked `big` (one per scene; lab `scene.largest_color`).

It prints held-out accuracy (500 fixed scenes) at checkpoints against the majority answer of the
same held-out set.

    python benchmarks/lab_decoder_bound.py --steps 1500
    python benchmarks/lab_decoder_bound.py --tasks count_color --steps 4000 --layers 4
    python benchmarks/lab_decoder_bound.py --tasks count_color --forms grid --steps 1000 --pool 3000
    python benchmarks/lab_decoder_bound.py --tasks count_color --forms grid --steps 1000 --present \
        --objects 4 6 --pool 3000 --lr 5e-4
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from typing import Any

TASKS = ("count_color", "query_shape", "exists", "largest_color")
FORMS = ("words", "object", "patches", "grid")


def vocabulary() -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    from deltaprompts.generators.scenes import PALETTE, SHAPES

    colors = tuple(PALETTE)
    words = ["<pad>", "<eos>", "none", ";", "?", "A:", "how", "many", "objects", "what", "shape", "is", "the", "object",
             "any", "color", "big", "yes", "no", *colors, *SHAPES, *map(str, range(8))]
    return colors, tuple(SHAPES), words


Position = tuple[str, ...]  # the words whose embeddings are summed at one input position


def layout(rng: random.Random, objs: list[tuple[str, str]], big: int, form: str, cells: int = 16) -> list[Position]:
    """The scene's input positions in `form` (words / object / patches / grid of `cells` positions)."""
    marks = [(c, s, *(["big"] if i == big else [])) for i, (c, s) in enumerate(objs)]
    if form == "words":
        return [(w,) for m in marks for w in (*m, ";")]
    if form == "object":
        return marks
    if form == "grid":
        at: list[Position] = [("none",)] * cells
        for m, k in zip(marks, rng.sample(range(cells), len(marks))):
            at[k] = m
        return at
    grid: list[Position] = [("none",)] * 64
    for m in marks:
        while True:
            h, w = rng.choice([(1, 1), (1, 2), (2, 1), (2, 2)])
            y, x = rng.randrange(9 - h), rng.randrange(9 - w)
            block = [(y + i) * 8 + x + j for i in range(h) for j in range(w)]
            if all(grid[k] == ("none",) for k in block):
                break
        for k in block:
            grid[k] = m
    return grid


def scene(rng: random.Random, task: str, form: str, colors: tuple[str, ...],
          shapes: tuple[str, ...], present: bool = False, objects: tuple[int, int] = (2, 5),
          cells: int = 16) -> tuple[list[Position], str]:
    """One symbolic scene and question of `task`: (prompt positions, answer word). With `present`,
    count_color asks only colours the scene has (never 0, as the lab's template). `objects`: the
    fewest and most objects a scene draws; `cells`: the grid form's number of positions."""
    while True:
        cols, shs = rng.sample(colors, 3), rng.sample(shapes, 3)
        objs = [(rng.choice(cols), rng.choice(shs)) for _ in range(rng.randint(*objects))]
        big = rng.randrange(len(objs))
        scene_at = layout(rng, objs, big, form, cells)
        if task == "count_color":
            c = rng.choice(sorted({o[0] for o in objs}) if present else cols)
            return scene_at + phrase("how many", c, "objects ? A:"), str(sum(o[0] == c for o in objs))
        if task == "query_shape":
            unique = [c for c in cols if sum(o[0] == c for o in objs) == 1]
            if unique:
                c = rng.choice(unique)
                return scene_at + phrase("what shape is the", c, "object ? A:"), next(s for o, s in objs if o == c)
            continue
        if task == "exists":
            c, s = rng.choice(cols), rng.choice(shs)
            return scene_at + phrase("any", c, s, "? A:"), "yes" if (c, s) in objs else "no"
        return scene_at + phrase("what color is the big object ? A:"), objs[big][0]


def phrase(*parts: str) -> list[Position]:
    """Question words, one position each."""
    return [(w,) for p in parts for w in p.split()]


def run_task(task: str, form: str, args: argparse.Namespace) -> list[str]:
    import torch
    import transformers as T

    from deltaprompts.lab import build

    colors, shapes, words = vocabulary()
    ids = {w: i for i, w in enumerate(words)}
    size = build.BuildConfig().teacher
    hidden, layers = args.hidden or size.text_hidden, args.layers or size.text_layers
    heads = args.heads or size.heads
    cfg = T.LlamaConfig(vocab_size=len(words), hidden_size=hidden, intermediate_size=2 * hidden,
                        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                        max_position_embeddings=128, tie_word_embeddings=False, bos_token_id=None,
                        eos_token_id=ids["<eos>"], pad_token_id=ids["<pad>"], rope_theta=args.rope_theta)
    torch.manual_seed(args.seed)
    model = T.LlamaForCausalLM(cfg)

    def encode(rng: random.Random) -> tuple[list[Position], str]:
        return scene(rng, task, form, colors, shapes, args.present, tuple(args.objects), args.cells)

    def batch(rows: list[tuple[list[Position], str]]) -> tuple[Any, Any, Any]:
        """Input embeddings (the sum of each position's words), attention mask, labels."""
        n = max(len(p) for p, _ in rows) + 2
        x = torch.full((len(rows), n, 3), -1)  # up to 3 words per position, -1 = none
        y = torch.full((len(rows), n), -100)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for r, (p, a) in enumerate(rows):
            full = [*p, (a,), ("<eos>",)]
            for i, pos in enumerate(full):
                x[r, i, :len(pos)] = torch.tensor([ids[w] for w in pos])
            mask[r, :len(full)] = 1
            y[r, len(p):len(full)] = torch.tensor([ids[a], ids["<eos>"]])
        table = model.get_input_embeddings()
        embeds = (table(x.clamp(min=0)) * (x >= 0).unsqueeze(-1)).sum(2)
        return embeds, mask, y

    held = [encode(random.Random(10**6 + i)) for i in range(500)]
    majority = Counter(a for _, a in held).most_common(1)[0][1] / len(held)
    last = torch.tensor([len(p) - 1 for p, _ in held])

    def accuracy() -> float:
        model.eval()
        with torch.no_grad():
            hx, hmask, _ = batch(held)
            pred = model(inputs_embeds=hx, attention_mask=hmask).logits[torch.arange(len(held)), last].argmax(-1)
        model.train()
        return sum(words[int(p)] == a for p, (_, a) in zip(pred, held)) / len(held)

    tcfg = build.TrainConfig(steps=args.steps, batch=args.batch, **{k: v for k, v in
                             (("lr", args.lr), ("weight_decay", args.weight_decay)) if v is not None})
    opt = build.make_optimizer(model, tcfg)
    rng = random.Random(args.seed)
    marks, t0 = [], time.time()
    for step in range(args.steps):
        build.set_lr(opt, step, tcfg)
        x, mask, y = batch([encode(random.Random(rng.randrange(args.pool)) if args.pool else rng)
                            for _ in range(args.batch)])
        loss = model(inputs_embeds=x, attention_mask=mask, labels=y).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip)
        opt.step()
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            marks.append(f"{step + 1}: {accuracy():.3f}")
            print(f"  {task} {form} step {step + 1} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
    params = sum(p.numel() for p in model.parameters())
    return [task, form, f"{layers} x {hidden}, {heads} heads ({params / 1e6:.2f} M)", f"{majority:.3f}", "  ".join(marks),
            f"{time.time() - t0:.0f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--every", type=int, default=500, help="evaluate every N steps")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--layers", type=int, default=0, help="decoder layers (default: the lab teacher's)")
    ap.add_argument("--hidden", type=int, default=0, help="decoder width (default: the lab teacher's)")
    ap.add_argument("--heads", type=int, default=0, help="attention heads (default: the lab teacher's)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the build's)")
    ap.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default: the build's)")
    ap.add_argument("--rope-theta", type=float, default=10000.0, help="RoPE base (Llama's default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=0, help="train on N fixed scenes (default: fresh ones every step)")
    ap.add_argument("--present", action="store_true", help="count_color asks only colours present (answers >= 1)")
    ap.add_argument("--objects", type=int, nargs=2, default=[2, 5], metavar=("MIN", "MAX"), help="objects per scene")
    ap.add_argument("--cells", type=int, default=16, help="positions of the grid form (64: one per 16-px patch at 128 px)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = [run_task(t, f, args) for t in args.tasks for f in args.forms]
    head = ["task", "scene as", "decoder", "majority", "held-out accuracy at step", "seconds"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
