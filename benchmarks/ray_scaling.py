"""Items/s of `score` and `generate` with --executor local vs ray, on 1 and 2 CPUs (docs/scaling.md).

    .venv/bin/python benchmarks/ray_scaling.py [--items 400] [--k 16] [--toy-items 24] [--repeats 2] [--out DIR]

Each measurement is a fresh process pinned to the first 1 or 2 CPUs (sched_setaffinity, inherited
by the Ray processes it starts), so "1 CPU" means the driver and every worker share one core.
Ray's start-up is left out: the process starts its local cluster (num_cpus = the CPUs), then the
clock runs around `score_run` / `generate` alone, the first actors' start included. score uses
the sim: backends (fixed k) and the toy: models (hf, k 4, 8 new tokens; on Ray one actor per
model, so only on 2 CPUs); generate renders scene.shapes and document.invoice. Every score run's
scores/ files are checked to be the same bytes as the first local run's. `--one sim --warm` (run by
hand: `--one sim --executor ray --cpus 2 --run COPY_OF_A_RUN --k 16 --warm`) times a second score
run in the same process, on workers already up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIM = ("sim:t?skill=0.9&zero=0.3", "sim:s?skill=0.2&zero=0.3")
TOY = ("toy:teacher?threads=1", "toy:student?threads=1")
FAMILIES = ["scene.shapes", "document.invoice"]


def one(args: argparse.Namespace) -> None:
    """Run one measurement in this process and print a JSON line: seconds, items."""
    os.sched_setaffinity(0, set(range(args.cpus)))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    pool = None
    if args.executor == "ray":
        import ray

        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    if args.what == "generate":
        from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs

        cfg = GenerateConfig(families=FAMILIES, knobs=resolve_all_knobs(FAMILIES, {}), n=args.items, seed=1,
                             shard_size=25)
        t0 = time.perf_counter()
        m = generate(cfg, args.run, workers=args.cpus, executor=args.executor)
        print(json.dumps({"seconds": time.perf_counter() - t0, "items": m["counts"]["items"]}))
        return
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run
    from deltaprompts.score_ray import RayScoring

    teacher, student = SIM if args.what == "sim" else TOY
    t, s = load_backend(teacher), load_backend(student)
    if args.executor == "ray":
        pool = RayScoring()
    if args.warm:  # score a copy first: the clock then runs on workers that are up (sim: backends keep them)
        warm = args.run.with_name(args.run.name + "-warm")
        shutil.copytree(args.run, warm)
        score_run(warm, t, s, k=args.k, sampling=Sampling(max_new_tokens=8), batch_size=args.batch_size,
                  executor=pool)
        shutil.rmtree(warm)
    t0 = time.perf_counter()
    res = score_run(args.run, t, s, k=args.k, sampling=Sampling(max_new_tokens=8), batch_size=args.batch_size,
                    executor=pool)
    print(json.dumps({"seconds": time.perf_counter() - t0, "items": res.scored}))


def measure(what: str, executor: str, cpus: int, run: Path, k: int, items: int, batch_size: int) -> dict:
    cmd = [sys.executable, __file__, "--one", what, "--executor", executor, "--cpus", str(cpus), "--run", str(run),
           "--k", str(k), "--items", str(items), "--batch-size", str(batch_size)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def digest(run: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted((run / "scores").glob("*")))).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--toy-items", type=int, default=24)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one", choices=["sim", "toy", "generate"])
    ap.add_argument("--executor", default="local")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--warm", action="store_true", help="with --one sim: time a second score run (workers up)")
    args = ap.parse_args()
    if args.one:
        args.what = args.one
        return one(args)
    work = args.out or Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    bases = {"sim": work / "base", "toy": work / "base-toy"}
    for what, n in (("sim", args.items), ("toy", args.toy_items)):
        if not bases[what].exists():
            subprocess.run([sys.executable, "-m", "deltaprompts.cli", "generate", "--family", ",".join(FAMILIES),
                            "--n", str(n), "--seed", "1", "--quiet", "--out", str(bases[what])], check=True)
    plan = [("sim", e, c, args.k, args.items, 32) for e in ("local", "ray") for c in (1, 2)]
    plan += [("toy", "local", 1, 4, args.toy_items, 8), ("toy", "local", 2, 4, args.toy_items, 8),
             ("toy", "ray", 2, 4, args.toy_items, 8)]
    plan += [("generate", e, c, 0, args.items, 0) for e in ("local", "ray") for c in (1, 2)]
    refs: dict[str, str] = {}
    for what, executor, cpus, k, n, bs in plan:
        for rep in range(args.repeats):
            run = work / f"{what}-{executor}-{cpus}-{rep}"
            shutil.rmtree(run, ignore_errors=True)
            if what == "generate":
                got = measure(what, executor, cpus, run, k, n, bs)
            else:
                shutil.copytree(bases[what], run, ignore=shutil.ignore_patterns("scores"))
                got = measure(what, executor, cpus, run, k, n, bs)
                same = refs.setdefault(what, digest(run)) == digest(run)
                got["same_bytes"] = same
            print(json.dumps({"what": what, "executor": executor, "cpus": cpus, "rep": rep, **got,
                              "items_per_s": round(got["items"] / got["seconds"], 2)}), flush=True)
            if what != "generate":
                shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
