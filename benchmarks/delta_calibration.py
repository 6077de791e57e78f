"""Is Δ a measurement? Calibration of the zero-delta test, the debiased Δ and adaptive sampling.

Three parts, each printing its figures (rates with their sample size and Wilson 95% interval):

1. SIMULATION (`sim:` backends, where the true answer distributions are known): bias and RMSE of
   the plug-in and the debiased Δ (tv) against the true Δ for k = 4, 8, 16, 32, overall and by
   true Δ; and the false-keep rate of screen's default rule (items with true Δ = 0 kept).
2. Noise floor ("how to choose k"): the plug-in and debiased metrics between two k-sample sets of
   ONE distribution (true Δ = 0), for a peaked, a two-way and a flat answer distribution.
3. The shipped toy pair (real models, CPU): a pool of lab items scored with a fixed k = 16 twice,
   teacher against itself (two sampling seeds) and teacher against student. Zero-delta shares at
   k = 4, 8, 16 (the first k samples of each), and adaptive sampling replayed on the same samples
   (sample i of an item is the same in adaptive and fixed runs, so the replay is exact): calls
   against fixed k = 16 and keep/drop agreement, without and with screen's teacher-accuracy bar.
   Scoring takes 5-20 minutes per run on 2 cores; --runs keeps the scored runs for a rerun.

    python benchmarks/delta_calibration.py --part sim,floor          # seconds
    python benchmarks/delta_calibration.py --part toy --runs runs/calibration --pool 300 --pool-seed 4242
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS, AdaptiveConfig, keeps, sample_rounds, schedule
from deltaprompts.divergence.metrics import metric_from_counts
from deltaprompts.divergence.null import SAME_LEVEL, p_same, posterior
from deltaprompts.models.base import Message, Request
from deltaprompts.models.simulated import load_simulated
from deltaprompts.pipeline.stats import wilson

KS = (4, 8, 16, 32)


def rate(k: int, n: int) -> str:
    lo, hi = wilson(k, n, 0.95)
    return f"{k / n:6.1%} ({k}/{n}, 95% CI {lo:.1%}-{hi:.1%})"


def tv_counts(ct: np.ndarray, cs: np.ndarray) -> float:
    return float(0.5 * np.abs(ct / ct.sum() - cs / cs.sum()).sum())


# ------------------------------------------------------------------------------ 1. simulation


def simulation(n: int, seed: int, threshold: float) -> None:
    """Bias/RMSE of plug-in and debiased TV by k, and the default rule's false-keep rate."""
    world = f"seed={seed}&zero=0.69&alpha=0.1"
    teacher = load_simulated(f"teacher?skill=0.8&{world}")
    student = load_simulated(f"student?skill=0.3&{world}")
    reqs = [Request(id=f"sim-{i}", messages=[Message(role="user", content=[
        {"type": "text", "text": f"simulated question {i}"}])]) for i in range(n)]
    p = np.array([teacher.mixture(r) for r in reqs])
    q = np.array([student.mixture(r) for r in reqs])
    true = 0.5 * np.abs(p - q).sum(axis=1)
    zero = true < 1e-12
    rng = np.random.default_rng(seed)
    print(f"1. SIMULATION (sim: backends, no real model): {n} items, {zero.mean():.0%} with true Δ = 0 (shared "
          f"answer mixtures, Dirichlet 0.1: often peaked), teacher skill 0.8, student 0.3; true Δ = TV of the mixtures")
    print(f"   {'k':>3} {'estimator':<10} {'bias':>7} {'RMSE':>6} {'bias|Δ=0':>9} {'bias|0<Δ<.3':>12} "
          f"{'bias|Δ>=.3':>11}   false keeps (true Δ = 0) at the default rule")
    strata = (zero, (~zero) & (true < 0.3), true >= 0.3)
    cfg = AdaptiveConfig(threshold=threshold)
    for k in KS:
        ct = np.array([rng.multinomial(k, row) for row in p])
        cs = np.array([rng.multinomial(k, row) for row in q])
        plug = np.array([tv_counts(a, b) for a, b in zip(ct, cs)])
        deb = np.array([posterior("tv", a, b)[0] for a, b in zip(ct, cs)])
        kept = np.array([keeps(a, b, 0, cfg) for a, b in zip(ct, cs)])
        for name, est in (("plug-in", plug), ("debiased", deb)):
            e = est - true
            cells = " ".join(f"{e[m].mean():>+{w}.3f}" for m, w in zip(strata, (9, 12, 11)))
            extra = ""
            if name == "debiased":
                extra = f"   {rate(int(kept[zero].sum()), int(zero.sum()))}"
            else:
                extra = f"   plug-in >= {threshold}: {rate(int((plug[zero] >= threshold).sum()), int(zero.sum()))}"
            print(f"   {k:>3} {name:<10} {e.mean():>+7.3f} {np.sqrt((e ** 2).mean()):>6.3f} {cells}{extra}")


# ------------------------------------------------------------------------------ 2. noise floor


def noise_floor(reps: int, seed: int) -> None:
    """Plug-in and debiased metrics between two samples of one distribution, and how often each
    rule would keep such an item."""
    rng = np.random.default_rng(seed)
    dists = {"peaked 90/10": [0.9, 0.1], "two-way 60/40": [0.6, 0.4], "flat 4 classes": [0.25] * 4}
    cfg = AdaptiveConfig()
    print(f"2. NOISE FLOOR: two k-sample sets of ONE answer distribution (true Δ = 0), {reps} pairs each; mean "
          f"plug-in / debiased metric, and the share kept by the plug-in rule (tv >= 0.3) and the default rule")
    print(f"   {'distribution':<16} {'k':>3} {'tv':>13} {'js':>13} {'kl':>13}  {'plug-in keeps':>14} "
          f"{'default keeps':>14} {'zero-delta':>10}")
    for name, probs in dists.items():
        for k in KS:
            pairs = [(rng.multinomial(k, probs), rng.multinomial(k, probs)) for _ in range(reps)]
            cols = []
            for metric in ("tv", "js", "kl"):
                plug = np.mean([float(metric_from_counts(metric, a, b)) for a, b in pairs])
                deb = np.mean([posterior(metric, a, b)[0] for a, b in pairs])
                cols.append(f"{plug:.3f} / {deb:.3f}")
            plug_keep = np.mean([tv_counts(a, b) >= 0.3 for a, b in pairs])
            rule_keep = np.mean([keeps(a, b, 0, cfg) for a, b in pairs])
            zd = np.mean([p_same(a, b) > SAME_LEVEL for a, b in pairs])
            print(f"   {name:<16} {k:>3} {cols[0]:>13} {cols[1]:>13} {cols[2]:>13}  {plug_keep:>14.1%} "
                  f"{rule_keep:>14.1%} {zd:>10.1%}")


# ------------------------------------------------------------------------------ 3. toy pair


def scored_pair(root: Path, pool: int, pool_seed: int, sampling_seed: int) -> dict[str, Path]:
    """Score the pool with the toy pair twice at fixed k = 16 (resumable)."""
    from deltaprompts.lab.data import make_run
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run

    make_run(root / "pool", pool, pool_seed, reuse=True)
    teacher = load_backend("toy:teacher")
    runs = {}
    for name, other in (("teacher-vs-teacher", "toy:teacher"), ("teacher-vs-student", "toy:student")):
        run = root / name
        if not (run / "manifest.json").exists():
            shutil.copytree(root / "pool", run, dirs_exist_ok=True)
        t0 = time.time()
        res = score_run(run, teacher, teacher if other == "toy:teacher" else load_backend(other), k=16,
                        sampling=Sampling(temperature=1.0, max_new_tokens=16, seed=sampling_seed))
        print(f"   scored {name}: {res.scored} new items, {time.time() - t0:.0f} s", flush=True)
        runs[name] = run
    return runs


def load_samples(run: Path) -> dict[str, dict[str, dict[int, tuple[str, float]]]]:
    out: dict[str, dict[str, dict[int, tuple[str, float]]]] = {}
    for role in ("teacher", "student"):
        rows: dict[str, dict[int, tuple[str, float]]] = defaultdict(dict)
        for line in (run / "scores" / f"samples-{role}.jsonl").read_text().splitlines():
            r = json.loads(line)
            rows[r["item"]][r["index"]] = (r["answer_class"], r["score"])
        out[role] = rows
    return out


def decision(s: dict, key: str, n: int, cfg: AdaptiveConfig) -> bool:
    t = [s["teacher"][key][j][0] for j in range(n)]
    u = [s["student"][key][j][0] for j in range(n)]
    classes = sorted(set(t) | set(u))
    right = sum(s["teacher"][key][j][1] >= 1 for j in range(n))
    return keeps([t.count(c) for c in classes], [u.count(c) for c in classes], right, cfg)


def toy(root: Path, pool: int, pool_seed: int, sampling_seed: int, level: float) -> None:
    print(f"3. SHIPPED TOY PAIR (toy:teacher, toy:student; real models on the CPU): {pool} lab items "
          f"(pool seed {pool_seed}), fixed k = 16, temperature 1")
    runs = scored_pair(root, pool, pool_seed, sampling_seed)
    for name, run in runs.items():
        s = load_samples(run)
        keys = sorted(s["teacher"])
        n = len(keys)
        for k in (4, 8, 16):
            zero = identical = 0
            for key in keys:
                t = [s["teacher"][key][j][0] for j in range(k)]
                u = [s["student"][key][j][0] for j in range(k)]
                classes = sorted(set(t) | set(u))
                ct, cu = [t.count(c) for c in classes], [u.count(c) for c in classes]
                zero += p_same(ct, cu) > SAME_LEVEL
                identical += Counter(t) == Counter(u)
            print(f"   {name} k={k:<2}: zero-delta {rate(zero, n)}; identical distributions {rate(identical, n)}")
        for bar in (0.0, 0.5):
            cfg = AdaptiveConfig(rounds=schedule(16), level=level, min_teacher_acc=bar,
                                 threshold=DEFAULT_THRESHOLDS["tv"])

            drawn: dict[str, int] = {}

            def draw(ks, start, count, s=s, drawn=drawn):
                drawn.update({x: start + count for x in ks})
                return ([[s["teacher"][x][j][0] for j in range(start, start + count)] for x in ks],
                        [[s["student"][x][j][0] for j in range(start, start + count)] for x in ks])

            def correct(x, s=s, drawn=drawn):  # what the score stage knows: classes drawn so far that scored 1
                return {s[r][x][j][0] for r in ("teacher", "student") for j in range(drawn[x]) if s[r][x][j][1] >= 1}

            t0 = time.time()
            outs = sample_rounds(keys, draw, cfg, correct=correct)
            calls = sum(len(o.teacher) + len(o.student) for o in outs)
            fixed = [decision(s, x, 16, cfg) for x in keys]
            adapt = [decision(s, o.key, len(o.teacher), cfg) for o in outs]
            agree = sum(a == b for a, b in zip(fixed, adapt))
            print(f"   {name} adaptive (level {level}, teacher bar {bar}): calls {calls}/{n * 32} = "
                  f"{calls / (n * 32):.3f} of fixed k=16; keep/drop agreement {rate(agree, n)}; kept fixed "
                  f"{sum(fixed)}, adaptive {sum(adapt)}; stops {dict(sorted(Counter(o.reason for o in outs).items()))}"
                  f"; decisions {time.time() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="sim,floor,toy", help="comma-separated: sim, floor, toy")
    ap.add_argument("--n", type=int, default=2000, help="simulated items (part sim)")
    ap.add_argument("--reps", type=int, default=400, help="sample pairs per distribution and k (part floor)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=Path("runs/calibration"), help="where the toy runs are kept")
    ap.add_argument("--pool", type=int, default=300, help="lab items in the toy pool")
    ap.add_argument("--pool-seed", type=int, default=4242)
    ap.add_argument("--sampling-seed", type=int, default=0, help="base sampling seed of the toy runs")
    ap.add_argument("--level", type=float, default=AdaptiveConfig().level, help="adaptive stopping level")
    args = ap.parse_args()
    parts = set(args.part.split(","))
    if "sim" in parts:
        simulation(args.n, args.seed, DEFAULT_THRESHOLDS["tv"])
    if "floor" in parts:
        noise_floor(args.reps, args.seed)
    if "toy" in parts:
        toy(args.runs, args.pool, args.pool_seed, args.sampling_seed, args.level)


if __name__ == "__main__":
    main()
