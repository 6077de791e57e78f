"""Does high-Δ data teach more? Distil the toy student on equal budgets chosen by Δ, at random, or by lowest Δ.

One uniform pool of lab items is scored by the toy teacher and student (k samples each, fixed);
for each seed, equal budgets of pool items are chosen by (a) top Δ, (b) random, (c) lowest Δ
and (d) targeted synthesis (the pipeline of examples/pipeline.toml run on the same models until it
keeps as many items, or an existing run named by --synth); the same student is distilled for the
same number of steps on each, and evaluated (greedy) on a disjoint held-out run. Prints accuracy
and relative improvement over the undistilled student, with 95% confidence intervals over seeds
(t distribution). Also measures adaptive against fixed-k sampling (model calls, keep/drop
agreement) on the same pool. Real models (toy:), CPU; about 15-25 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS

from deltaprompts.lab import build
from deltaprompts.lab.data import make_run
from deltaprompts.distill import DistillConfig, distill, load_model
from deltaprompts.models.base import Sampling
from deltaprompts.models.specs import load_backend
from deltaprompts.score import score_run
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def ci95(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t interval of xs (half-width 0 for one value)."""
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, T975.get(len(xs) - 1, 1.96) * statistics.stdev(xs) / math.sqrt(len(xs))


RULES = ("top", "random", "low", "top_mix", "top_strat")


def select(deltas: dict, how: str, budget: int, seed: int) -> list[str]:
    """Item ids of one selection rule (ties broken at random by seed): `top` / `low` Δ, `random`,
    `top_mix` (half top Δ, half random from the rest: a replay share), `top_strat` (top Δ within
    each question family, an equal share per family)."""
    rng = random.Random(seed)
    ids = sorted(deltas)
    rng.shuffle(ids)
    if how == "random":
        return ids[:budget]
    # ranked by the debiased Δ (the plug-in one ranks sampling noise too); stable: ties stay shuffled
    order = sorted(ids, key=lambda i: deltas[i].debiased[deltas[i].metric], reverse=how != "low")
    if how == "top_mix":
        top = order[:budget // 2]
        rest = [i for i in ids if i not in set(top)]
        return top + rest[:budget - len(top)]
    if how == "top_strat":
        fams = sorted({deltas[i].question_family for i in ids})
        per = {f: [i for i in order if deltas[i].question_family == f] for f in fams}
        out: list[str] = []
        while len(out) < budget and any(per.values()):
            for f in fams:
                if per[f] and len(out) < budget:
                    out.append(per[f].pop(0))
        return out
    return order[:budget]


def targeted_run(work: Path, teacher: str, student: str, budget: int, k: int, seed_items: int,
                 rounds: int) -> Path:
    """(d) targeted synthesis: the pipeline of examples/pipeline.toml (lab families and knobs, the
    object count varied for mining) on these models, from a `seed_items` seed set, for up to `rounds`
    rounds of `budget` rendered items each, until `budget` items are kept (screened: high Δ, teacher
    right; seed items not counted). Resumes a run left in `work`. Returns the run root."""
    from deltaprompts.pipeline.config import load_config
    from deltaprompts.pipeline.rounds import run_pipeline

    base = load_config(Path(__file__).resolve().parent.parent / "examples" / "pipeline.toml")
    root = work / "targeted"
    cfg = base.model_copy(update={
        "out": str(root), "rounds": rounds, "target": budget,
        "models": base.models.model_copy(update={"teacher": teacher, "student": student, "k": k,
                                                 "max_new_tokens": 8, "batch_size": 64}),
        "seed": base.seed.model_copy(update={"generate": base.seed.generate.model_copy(update={"n": seed_items})}),
        "synthesize": base.synthesize.model_copy(update={"budget": budget, "teacher_questions": False}),
        "screen": base.screen.model_copy(update={"keep_seed": False})})
    resume = (root / "manifest.json").exists()
    t0 = time.time()
    man = run_pipeline(cfg, resume=resume, overwrite=not resume, log=print, command="benchmarks/delta_selection.py")
    print(f"targeted synthesis: {man.get('counts', {}).get('items', '?')} items kept in {root} "
          f"({time.time() - t0:.0f}s)")
    return root


def select_targeted(synth_run: Path, budget: int, seed: int) -> tuple[Path, list[str]]:
    """(d) targeted synthesis: `budget` items of a run made for the student's failure patterns (a
    pipeline run root, or any run), chosen as `select` top Δ when the run is scored, else at
    random. Returns (run dir, item ids)."""
    items = [it.id for it in RunStore(synth_run).iter_items()]
    if (synth_run / "scores" / "deltas.jsonl").exists():
        kept = set(items)
        deltas = {i: d for i, d in ScoreStore(synth_run).deltas(required=True).items() if i in kept}
        return synth_run, select(deltas, "top", budget, seed)
    return synth_run, random.Random(seed).sample(items, min(budget, len(items)))


def adaptive_vs_fixed(pool: Path, work: Path, teacher, student, k: int, sampling: Sampling, threshold: float) -> dict:
    """Score a copy of the pool adaptively; compare its calls and keep/drop decisions with the fixed run."""
    copy = work / "pool_adaptive"
    if not (copy / "scores" / "deltas.jsonl").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(pool, copy, ignore=shutil.ignore_patterns("scores"))
    t0 = time.time()
    res = score_run(copy, teacher, student, k=k, adaptive=True, sampling=sampling, threshold=threshold)
    fixed, adapt = ScoreStore(pool).deltas(required=True), ScoreStore(copy).deltas(required=True)
    # keep/drop by screen's default rule (the one adaptive stopping predicts)
    agree = sum((fixed[i].decide("debiased", "tv", threshold) == "kept") == (adapt[i].decide("debiased", "tv", threshold)
                                                                           == "kept") for i in fixed)
    calls_fixed = 2 * k * len(fixed)
    calls_adaptive = sum(d.n_teacher + d.n_student for d in adapt.values())
    return {"items": len(fixed), "calls_fixed": calls_fixed, "calls_adaptive": calls_adaptive,
            "call_ratio": round(calls_adaptive / calls_fixed, 3), "agreement": round(agree / len(fixed), 4),
            "stops": res.stops, "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/delta_selection"), help="Working folder (reused).")
    ap.add_argument("--teacher", default="toy:teacher?batch_size=64")
    ap.add_argument("--student", default="toy:student?batch_size=64")
    ap.add_argument("--pool", type=int, default=1000, help="Items in the uniform pool.")
    ap.add_argument("--eval", type=int, default=500, help="Items in the held-out eval run.")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--budget", type=int, default=150, help="Items selected per rule.")
    ap.add_argument("--steps", type=int, default=60, help="Distillation steps per run.")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--mode", default="off-policy", choices=["off-policy", "on-policy"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    ap.add_argument("--synth", type=Path, default=None, help="(d) an existing targeted-synthesis run to use "
                    "instead of running the pipeline.")
    ap.add_argument("--no-targeted", action="store_true", help="Leave out (d) targeted synthesis.")
    ap.add_argument("--synth-seed-items", type=int, default=300, help="(d) seed set of the pipeline run.")
    ap.add_argument("--synth-rounds", type=int, default=6, help="(d) most synthesis rounds (each renders --budget).")
    ap.add_argument("--skip-adaptive", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    pool, ev = work / "pool", work / "eval"
    t0 = time.time()
    if not (pool / "manifest.json").exists():
        make_run(pool, args.pool, 777, overwrite=True)
    if not (ev / "manifest.json").exists():
        make_run(ev, args.eval, 888, overwrite=True)
    shared = {it.image.sha256 for it in RunStore(pool).iter_items()} & {it.image.sha256 for it in RunStore(ev).iter_items()}
    print(f"pool {args.pool} items, eval {args.eval} items, shared images: {len(shared)} ({time.time() - t0:.0f}s)")
    teacher, student = load_backend(args.teacher), load_backend(args.student)
    sampling = Sampling(temperature=1.0, top_k=0, max_new_tokens=8, seed=0)
    t0 = time.time()
    res = score_run(pool, teacher, student, k=args.k, sampling=sampling)
    print(f"scored: zero-delta {res.zero_delta}/{res.deltas} = {res.zero_delta_fraction:.3f} "
          f"(k={args.k}, score_run, {time.time() - t0:.0f}s)")
    deltas = ScoreStore(pool).deltas(required=True)
    by_fam: dict[str, list] = {}
    for d in deltas.values():
        by_fam.setdefault(d.question_family, []).append(d)
    print(f"{'question family':32s} {'n':>4s} {'zero-Δ':>7s} {'mean Δ':>7s} {'teacher':>8s} {'student':>8s}")
    for f, ds in sorted(by_fam.items()):
        print(f"{f:32s} {len(ds):4d} {sum(d.zero_delta for d in ds) / len(ds):7.2f} "
              f"{statistics.fmean(d.value for d in ds):7.3f} {statistics.fmean(d.teacher_accuracy for d in ds):8.3f} "
              f"{statistics.fmean(d.student_accuracy for d in ds):8.3f}")
    if not args.skip_adaptive:
        thr = DEFAULT_THRESHOLDS["tv"]
        a = adaptive_vs_fixed(pool, work, teacher, student, args.k, sampling, thr)
        print(f"adaptive vs fixed k={args.k} (tv keep >= {thr}): calls {a['calls_adaptive']} vs {a['calls_fixed']} "
              f"({a['call_ratio']:.2f}x), keep/drop agreement {a['agreement']:.3f}, stops {a['stops']}")
    ev_items = list(RunStore(ev).iter_items())
    base_model, base_proc = load_model(student.path)
    base = build.accuracy(ev_items, build.greedy_answers(base_model, base_proc, ev, ev_items))["overall"]
    synth = args.synth
    if synth is None and not args.no_targeted:
        synth = targeted_run(work, args.teacher, args.student, args.budget, args.k, args.synth_seed_items,
                             args.synth_rounds)
    rules = list(args.rules) + (["targeted"] if synth else [])
    results: dict[str, list[float]] = {r: [] for r in rules}
    per_family: dict[str, list[dict]] = {r: [] for r in rules}
    for seed in range(args.seeds):
        for rule in rules:
            if rule == "targeted":
                run, ids = select_targeted(synth, args.budget, seed)
            else:
                run, ids = pool, select(deltas, rule, args.budget, seed)
            out = work / "distilled" / f"{args.mode}-{rule}-{seed}"
            if (out / "distill.json").exists():  # done by an earlier call with the same settings
                rep = json.loads((out / "distill.json").read_text())
                done = (rep["config"]["steps"], rep["config"]["lr"], rep["config"]["batch"], rep["items"])
                if done == (args.steps, args.lr, args.batch, len(ids)):
                    results[rule].append(rep["after"]["overall"])
                    per_family[rule].append({f: v["acc"] for f, v in rep["after"]["families"].items()})
                    continue
            shutil.rmtree(out, ignore_errors=True)
            cfg = DistillConfig(mode=args.mode, steps=args.steps, batch=args.batch, lr=args.lr, k=args.k, seed=seed)
            t0 = time.time()
            rep = distill(run, args.teacher, args.student, out, cfg, item_ids=ids, eval_run=ev)
            results[rule].append(rep["after"]["overall"])
            per_family[rule].append({f: v["acc"] for f, v in rep["after"]["families"].items()})
            run_deltas = deltas if run == pool else ScoreStore(run).deltas(required=True)
            mean_delta = statistics.fmean(run_deltas[i].value for i in ids) if ids else float("nan")
            print(f"seed {seed} {rule:8s}: mean Δ {mean_delta:.3f}, train rows {rep['data'].get('rows', '-')}, "
                  f"accuracy {rep['after']['overall']:.3f} ({time.time() - t0:.0f}s)", flush=True)
            (out / "model.safetensors").unlink(missing_ok=True)  # keep distill.json only
    print(f"\nundistilled student: {base:.3f} on {len(ev_items)} held-out items; budget {args.budget} items, "
          f"{args.steps} steps x {args.batch}, {args.mode}, {args.seeds} seeds")
    print(f"{'selection':10s} {'accuracy (95% CI)':>22s} {'relative improvement (95% CI)':>32s}")
    for rule in rules:
        m, h = ci95(results[rule])
        rm, rh = ci95([(x - base) / base for x in results[rule]])
        print(f"{rule:10s} {m:14.3f} ± {h:.3f} {100 * rm:22.1f}% ± {100 * rh:.1f}%")
    fams = sorted(per_family[rules[0]][0])
    print("\nper question family (mean over seeds): " + " ".join(f"{f.split('.')[1][:14]:>14s}" for f in fams))
    base_fam = build.accuracy(ev_items, build.greedy_answers(base_model, base_proc, ev, ev_items))["families"]
    print(f"{'student':10s}" + " ".join(f"{base_fam[f]['acc']:14.2f}" for f in fams))
    for rule in rules:
        print(f"{rule:10s}" + " ".join(f"{statistics.fmean(p[f] for p in per_family[rule]):14.2f}" for f in fams))
    (work / "results.json").write_text(json.dumps({"base": base, "results": results, "per_family": per_family, "args": {
        k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    main()
