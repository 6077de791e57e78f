"""SIMULATION: model calls and keep/drop agreement of adaptive sampling against fixed k=16.

Two `sim:` backends (no real model) answer N items from seeded answer mixtures; a share of the
items (69% by default) is zero-delta: both models share one mixture, often peaked (Dirichlet 0.1
over 4 classes). Adaptive sampling (the default rounds for k=16: 4 + 4 + 4 + 4) is compared with a
fixed k=16; sample i of an item is the same in both, so adaptive samples are a prefix of fixed ones.
Keep/drop is screen's default rule (not zero-delta, debiased Δ >= threshold) on each run's samples.
Target: at most half the calls of fixed k=16, at least 95% agreement on keep/drop decisions.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS, AdaptiveConfig, Outcome, keeps, sample_rounds, schedule
from deltaprompts.divergence.metrics import distribution
from deltaprompts.verifiers import answer_class
from deltaprompts.models.base import Message, Request, Sampling
from deltaprompts.models.simulated import load_simulated


def _requests(n: int) -> dict[str, Request]:
    reqs = [Request(id=f"sim-{i}", messages=[Message(role="user", content=[
        {"type": "text", "text": f"simulated question {i}"}])]) for i in range(n)]
    return {r.key: r for r in reqs}


def _draw(by_key, teacher, student, temperature):
    st, ss = Sampling(temperature=temperature, seed=1001), Sampling(temperature=temperature, seed=2002)

    def draw(keys, start, count):
        reqs = [by_key[k] for k in keys]
        idx = [list(range(start, start + count))] * len(reqs)
        classes = []
        for backend, sampling in ((teacher, st), (student, ss)):
            rows = backend.sample(reqs, sampling, idx)
            classes.append([[answer_class(c.text, "string") for c in row] for row in rows])
        return classes[0], classes[1]

    return draw


def _kept(o: Outcome, cfg: AdaptiveConfig) -> bool:
    """Screen's default rule on the samples drawn (no teacher-accuracy bar in the simulation)."""
    t, s = distribution(o.teacher), distribution(o.student)
    cls = sorted(set(t) | set(s))
    return keeps([t.get(c, 0) for c in cls], [s.get(c, 0) for c in cls], 0, cfg)


def run(n: int, metric: str, threshold: float, level: float, world: str, temperature: float) -> dict:
    """Score N simulated items adaptively and with fixed k=16; returns the figures."""
    by_key = _requests(n)
    keys = list(by_key)
    figures = {}
    cfg = AdaptiveConfig(rounds=schedule(16), threshold=threshold, metric=metric, level=level)
    for mode in ("fixed", "adaptive"):
        teacher = load_simulated(f"teacher?skill=0.8&{world}")
        student = load_simulated(f"student?skill=0.3&{world}")
        t0 = time.perf_counter()
        outcomes = sample_rounds(keys, _draw(by_key, teacher, student, temperature), cfg, adaptive=mode == "adaptive")
        figures[mode] = {"calls": teacher.completions + student.completions, "seconds": time.perf_counter() - t0,
                         "outcomes": outcomes}
    fixed, adapt = figures["fixed"]["outcomes"], figures["adaptive"]["outcomes"]
    keep_f = [_kept(o, cfg) for o in fixed]
    keep_a = [_kept(o, cfg) for o in adapt]
    return {
        "calls_fixed": figures["fixed"]["calls"], "calls_adaptive": figures["adaptive"]["calls"],
        "ratio": figures["adaptive"]["calls"] / figures["fixed"]["calls"],
        "agreement": sum(a == b for a, b in zip(keep_f, keep_a)) / n,
        "kept_fixed": sum(keep_f) / n, "kept_adaptive": sum(keep_a) / n,
        "zero_delta_fixed": sum(len(set(o.teacher) | set(o.student)) == 1 for o in fixed) / n,
        "reasons": Counter(o.reason for o in adapt), "rounds": Counter(o.rounds for o in adapt),
        "seconds": figures["adaptive"]["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="simulated items")
    ap.add_argument("--metric", default="tv", choices=sorted(DEFAULT_THRESHOLDS))
    ap.add_argument("--threshold", type=float, default=None, help="keep threshold (default: the metric's default)")
    ap.add_argument("--level", type=float, default=AdaptiveConfig().level, help="stopping confidence")
    ap.add_argument("--zero", type=float, default=0.69, help="share of zero-delta items in the simulation")
    ap.add_argument("--alpha", type=float, default=0.1, help="Dirichlet concentration: small = peaked mixtures")
    ap.add_argument("--seeds", default="0", help="simulation world seeds, comma-separated (one line each)")
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    threshold = DEFAULT_THRESHOLDS[args.metric] if args.threshold is None else args.threshold
    print(f"SIMULATION (sim: backends, no real model): adaptive sampling {'+'.join(map(str, schedule(16)))} vs "
          f"fixed k=16, {args.n} items, {args.zero:.0%} zero-delta by construction (Dirichlet {args.alpha}), "
          f"keep if {args.metric} >= {threshold}, stopping level {args.level}")
    ok = True
    for seed in [int(x) for x in args.seeds.split(",")]:
        world = f"seed={seed}&zero={args.zero}&alpha={args.alpha}"
        f = run(args.n, args.metric, threshold, args.level, world, args.temperature)
        ok &= f["ratio"] <= 0.5 and f["agreement"] >= 0.95
        print(f"SIMULATION world seed {seed}:")
        print(f"  model calls  fixed k=16: {f['calls_fixed']:>7}   adaptive: {f['calls_adaptive']:>7}   "
              f"ratio {f['ratio']:.3f}  (target <= 0.5)")
        print(f"  keep/drop agreement with fixed k=16: {f['agreement']:.2%}  (target >= 95%)")
        print(f"  kept: fixed {f['kept_fixed']:.1%}, adaptive {f['kept_adaptive']:.1%}; "
              f"all 16+16 samples on one class (fixed): {f['zero_delta_fixed']:.1%}")
        print(f"  adaptive stops: {dict(sorted(f['reasons'].items()))}; "
              f"rounds used: {dict(sorted(f['rounds'].items()))}")
        print(f"  adaptive wall time (simulated backends): {f['seconds']:.1f} s")
    print(f"SIMULATION target {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
