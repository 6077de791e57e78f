"""`deltaprompts run CONFIG`: seed -> mine -> (synthesize -> score -> screen) x rounds, under one run root.

The run root is itself a run directory holding the kept items: shard r holds round r's kept items
(round 0: the screened seed set), `scores/` their Deltas, `rounds.json` the yield per round and
`bandit.json` the arms' posteriors; each stage works in its own folder (`seed/`, `mine/`,
`round-NN/{plan.json, gen/, teacher.jsonl, kept/}`). Every stage skips what is on disk and every
file appears whole, so a killed run resumes (`resume=True`) with nothing lost or duplicated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend, Sampling
from deltaprompts.pipeline.config import PipelineConfig
from deltaprompts.pipeline.runroot import (BANDIT_FILE, consolidate, prepare_root, read_rounds, round_row,
                                           update_manifest)
from deltaprompts.store import RunStore, atomic_write

if TYPE_CHECKING:
    from deltaprompts.score_ray import RayScoring

Hook = Callable[[str], None]


def cache_path(cfg: PipelineConfig) -> Path | None:
    """The run's response cache (`ROOT/cache.sqlite`), or None when models.cache is off."""
    return Path(cfg.out) / "cache.sqlite" if cfg.models.cache else None


def score_stage(cfg: PipelineConfig, run_dir: Path, teacher: Backend, student: Backend,
                executor: RayScoring | None = None) -> Any:
    """score_run with the config's settings (resumable: only missing samples are asked for), on
    `executor`'s Ray cluster when given."""
    from deltaprompts.score import score_run

    m = cfg.models
    sampling = Sampling(temperature=m.temperature, max_new_tokens=m.max_new_tokens, seed=cfg.random_seed)
    return score_run(run_dir, teacher, student, k=m.k, adaptive=m.adaptive, metric=m.metric,
                     threshold=cfg.keep_threshold(), sampling=sampling,
                     prompt_format=m.prompt_format, cache_path=cache_path(cfg), batch_size=m.batch_size,
                     seed=cfg.random_seed, min_teacher_acc=cfg.screen.min_teacher_acc if m.adaptive else 0.0,
                     executor=executor)


def screen_stage(cfg: PipelineConfig, run_dir: Path, out: Path) -> Any:
    """screen_run into `out`, or the report of a screen already there."""
    from deltaprompts.divergence.records import ScreenReport
    from deltaprompts.screen import screen_run

    done = out / "report" / "screen.json"
    if RunStore(out).is_run() and done.exists():
        return ScreenReport.model_validate_json(done.read_text())
    return screen_run(run_dir, out, cfg.keep_threshold(), cfg.screen.min_teacher_acc, overwrite=out.exists(),
                      rule=cfg.screen.rule)


def mine_stage(cfg: PipelineConfig, root: Path, teacher: Backend | None) -> Any:
    """Mine the scored seed set into `mine/`, or read the patterns already there."""
    from deltaprompts.pipeline.mine import MINE_DIR, PATTERNS_FILE, MineReport, mine_run

    path = root / MINE_DIR / PATTERNS_FILE
    if path.exists():
        return MineReport.model_validate_json(path.read_text())
    describer, close = teacher, None
    if teacher is not None and cfg.mine.describe and cache_path(cfg) is not None:
        from deltaprompts.models.cache import CachedBackend

        describer = CachedBackend(teacher, cache_path(cfg))
        close = describer.close
    try:
        return mine_run(root / "seed", root / MINE_DIR, cfg.mine, min_delta=cfg.keep_threshold(),
                        min_teacher_acc=cfg.screen.min_teacher_acc, describe_with=describer, seed=cfg.random_seed,
                        rule=cfg.screen.rule)
    finally:
        if close:
            close()


def load_models(cfg: PipelineConfig, teacher: Backend | None = None,
                student: Backend | None = None) -> tuple[Backend, Backend]:
    """The config's teacher and student (or the ones given); raises UserError for a bad spec."""
    from deltaprompts.models.specs import load_backend

    return teacher or load_backend(cfg.models.teacher), student or load_backend(cfg.models.student)


class _Stop(Exception):
    """Raised by the step marker at `stop_after`; ends the run early, cleanly."""


def run_pipeline(cfg: PipelineConfig, *, resume: bool = False, overwrite: bool = False, teacher: Backend | None = None,
                 student: Backend | None = None, hook: Hook | None = None, log: Callable[[str], None] | None = None,
                 command: str = "", stop_after: str | None = None,
                 executor: RayScoring | None = None) -> dict[str, Any]:
    """Run (or, with `resume`, finish) the whole pipeline of `cfg` under `cfg.out`; return the run
    root's manifest. `hook(point)` is called after each step ("seed", "score:seed", "mine",
    "round:0", "plan:R", "cell:ID", "teacher:CELL:BATCH", "synthesize:R", "score:R", "screen:R", "round:R"):
    tests raise from it to simulate a kill. `stop_after` ends the run after the first step named
    so ("seed", "mine", "synthesize" (the next round's), "round:2", ...), its status left "running".
    Raises UserError for a bad config, a non-empty root without resume/overwrite, or a resume with
    another config; DeltaError when a model fails (everything obtained so far is kept). With
    `executor` (a RayScoring, closed by the caller) every score stage runs on its Ray cluster and
    the cells render as Ray tasks there (`generate --executor ray`)."""
    from deltaprompts.models.prompts import load_format
    from deltaprompts.pipeline.cells import GENERATE_EXECUTOR

    teacher, student = load_models(cfg, teacher, student)  # a bad spec fails before anything is written
    load_format(cfg.models.prompt_format)  # so does a bad prompt format, not after the seed stage's renders
    root = prepare_root(cfg, resume, overwrite, command)

    def mark(point: str) -> None:
        if hook:
            hook(point)
        if stop_after and (point == stop_after or point.partition(":")[0] == stop_after):
            raise _Stop(point)

    if executor is not None:
        executor.connect()  # generate then uses this Ray as it is
    token = GENERATE_EXECUTOR.set("ray" if executor is not None else "local")
    try:
        return _run(cfg, root, teacher, student, mark, hook, log or (lambda _msg: None), executor)
    except _Stop as e:
        return update_manifest(cfg, root, "running", stopped=f"after {e}")
    finally:
        GENERATE_EXECUTOR.reset(token)


def _run(cfg: PipelineConfig, root: Path, t: Backend, s: Backend, mark: Hook, hook: Hook | None,
         say: Callable[[str], None], executor: RayScoring | None) -> dict[str, Any]:
    from deltaprompts.generators.base import FAMILIES
    from deltaprompts.pipeline.bandit import make_arms, posteriors, state
    from deltaprompts.pipeline.seed import seed_stage
    from deltaprompts.pipeline.synthesize import load_or_make_plan, round_dir, synthesize_round

    seed_dir = root / "seed"
    seed_manifest = seed_stage(root, cfg.seed, cfg.random_seed, hook)
    if not seed_manifest["counts"]["items"]:
        raise UserError(f"the seed set in {seed_dir} has no items (rejections: {seed_manifest.get('rejections')})")
    say(f"seed: {seed_manifest['counts']['items']} items in {seed_dir}")
    mark("seed")
    summary = score_stage(cfg, seed_dir, t, s, executor)
    say(f"score: seed zero-delta fraction {summary.zero_delta_fraction:.1%}")
    mark("score:seed")
    report = mine_stage(cfg, root, t)
    say(f"mine: {len(report.patterns)} patterns (base rate {report.base_rate:.1%})")
    mark("mine")
    if 0 not in {row["round"] for row in read_rounds(root)}:
        kept = round_dir(root, 0) / "kept"
        rep = screen_stage(cfg, seed_dir, kept)
        consolidate(cfg, root, 0, kept, round_row(0, seed_manifest, rep, None, kept, None))
        update_manifest(cfg, root, "running")
        mark("round:0")
    syn = cfg.synthesize
    arms = make_arms(report, syn.arms, syn.prior_strength, syn.families, FAMILIES.names())
    stopped = None
    for r in range(1, cfg.rounds + 1):
        rows = read_rounds(root)
        history = [row for row in rows if row["round"] >= 1]
        atomic_write(root / BANDIT_FILE, json.dumps(state(arms, history), indent=2) + "\n")
        if r in {row["round"] for row in rows}:
            continue
        if cfg.target is not None and sum(row.get("added", 0) for row in rows) >= cfg.target:
            stopped = "target"
            break
        plan = load_or_make_plan(cfg, root, r, arms, posteriors(arms, history))
        mark(f"plan:{r}")
        gen, kept = round_dir(root, r) / "gen", round_dir(root, r) / "kept"
        gen_manifest = synthesize_round(cfg, root, plan, arms, t if syn.teacher_questions else None, hook,
                                       cache_path(cfg))
        mark(f"synthesize:{r}")
        rep = None
        if gen_manifest["counts"]["items"]:
            score_stage(cfg, gen, t, s, executor)
            mark(f"score:{r}")
            rep = screen_stage(cfg, gen, kept)
            mark(f"screen:{r}")
        row = round_row(r, gen_manifest, rep, gen, kept if rep else None, round_dir(root, r) / "teacher.jsonl")
        consolidate(cfg, root, r, kept if rep else None, row)
        update_manifest(cfg, root, "running")
        say(f"round {r}: generated {row['generated']}, kept {row['kept']} "
            f"(zero-delta {row['zero_delta_fraction'] or 0:.1%})")
        mark(f"round:{r}")
    rows = read_rounds(root)
    atomic_write(root / BANDIT_FILE, json.dumps(state(arms, [x for x in rows if x["round"] >= 1]), indent=2) + "\n")
    return update_manifest(cfg, root, "complete", stopped or ("rounds" if cfg.rounds else None))

