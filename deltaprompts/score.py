"""The score stage: sample teacher and student, one Delta per item (screen is `deltaprompts.screen`).

A scored run directory holds, under `scores/` (written through `store.ScoreStore`): `meta.json` (models, k, sampling, metric, seeds),
`samples-teacher.jsonl` and `samples-student.jsonl` (every completion, appended and fsynced as it
comes back), `forced.jsonl` (teacher-forced log-probs, when both models can score), and
`deltas.jsonl` (one Delta per item). Rerunning `score_run` skips items that have a Delta and asks
the models only for samples not on disk.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS, AdaptiveConfig, sample_rounds, schedule
from deltaprompts.divergence.metrics import DISTRIBUTION_METRICS, check_metric
from deltaprompts.divergence.null import SAME_LEVEL, check_level
from deltaprompts.divergence.records import (
    ForcedScore,
    Sample,
    SampleSet,
    make_delta,
)
from deltaprompts.errors import DeltaError, UserError, validation_message
from deltaprompts.models.base import Backend, Completion, Request, Sampling, Scorer
from deltaprompts.records import Item
from deltaprompts.rng import stable_int
from deltaprompts.store import JsonlLog, RunStore, ScoreStore

if TYPE_CHECKING:
    from deltaprompts.score_ray import RayScoring

ROLES = ("teacher", "student")


def role_seed(seed: int, role: str) -> int:
    """The sampling seed of one role: teacher and student never share one (a shared seed correlates
    their samples and fakes low divergence)."""
    return stable_int(f"{seed}|{role}", 4)


def check_threshold(value: float, name: str = "threshold") -> float:
    """Return `value` if it is a finite number >= 0; raises UserError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UserError(f"{name}={value!r} must be a finite number >= 0 (e.g. 0.3)")
    return float(value)


def is_simulated(backend: Backend) -> bool:
    """Whether a backend is a simulation (its identity says so)."""
    return "simulated" in backend.identity.lower()


class ScoreSummary(BaseModel):
    """What one `score_run` call did, and the state of the run's Deltas after it."""

    items: int
    already_scored: int = Field(description="Items that had a Delta before this call (skipped).")
    scored: int = Field(description="Items given a Delta by this call.")
    deltas: int
    zero_delta: int = Field(description="Deltas whose models are indistinguishable at the zero-delta test's level.")
    zero_delta_fraction: float
    identical: int = Field(description="Deltas whose two empirical answer distributions are identical.")
    completions: dict[str, int] = Field(description="Completions asked of each model by this call (the cache's "
                                        "answers included).")
    from_cache: dict[str, int] = Field(default_factory=lambda: {"teacher": 0, "student": 0},
                                       description="Of those, the completions the response cache answered.")
    stops: dict[str, int] = Field(description="Why sampling stopped, over the items scored by this call.")
    mean_samples: float = Field(description="Mean samples per model per item scored by this call.")
    repaired_bytes: int = Field(description="Bytes of partial lines (from a killed run) cut off on resume.")
    simulated: bool
    scores_dir: str


def _meta(teacher: Backend, student: Backend, k: int, adaptive: bool, cfg: AdaptiveConfig, sampling: Sampling,
          prompt_format: str, bootstrap: int, ci_level: float, seed: int) -> dict[str, Any]:
    samplings = {r: sampling.model_copy(update={"seed": role_seed(sampling.seed, r)}).model_dump() for r in ROLES}
    return {"teacher": teacher.identity, "student": student.identity, "k": k, "adaptive": adaptive,
            "rounds": list(cfg.rounds), "metric": cfg.metric,
            # the stopping rule only matters to adaptive runs; a fixed run may be screened at any threshold
            "threshold": cfg.threshold if adaptive else None, "level": cfg.level if adaptive else None,
            # new stopping settings are recorded only when they differ from the defaults, so runs
            # scored before they existed still resume
            "min_teacher_acc": cfg.min_teacher_acc if adaptive and cfg.min_teacher_acc else None,
            "zero_level": cfg.zero_level if adaptive and cfg.zero_level != SAME_LEVEL else None,
            "sampling": samplings, "prompt_format": prompt_format, "bootstrap": bootstrap, "ci_level": ci_level,
            "seed": seed, "simulated": is_simulated(teacher) or is_simulated(student)}


def _check_meta(scores: ScoreStore, meta: dict[str, Any]) -> None:
    old = scores.meta()
    if not old:
        scores.write_meta(meta)
        return
    diff = sorted(k for k in set(meta) | set(old) if meta.get(k) != old.get(k))
    if diff:
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {meta.get(k)!r}" for k in diff)
        raise UserError(f"{scores.root} holds scores made with other settings ({shown}); use the same settings to "
                        f"resume, or move {scores.root} away to score again")


PREFETCH = 2  # batches whose first round is asked ahead, so the servers never wait for a batch to finish
DEFAULT_BATCH_SIZE = 256  # items per batch: with teacher and student at once, enough to fill 128 connections each


def _concurrently(*calls: Callable[[], Any], at_once: bool = True) -> list[Any]:
    """Run the calls on threads at once and wait for all of them; raises the first call's error first.
    Without `at_once`, one after the other (a failure stops the rest)."""
    if not at_once:
        return [c() for c in calls]
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(c) for c in calls]
    return [f.result() for f in futures]


class _Sampler:
    """Asks one model for the samples an item lacks and logs each completion before using it."""

    def __init__(self, role: str, backend: Backend, sampling: Sampling, log: JsonlLog, items: dict[str, Item],
                 requests: dict[str, Request], serial: threading.Lock):
        self.role, self.backend, self.sampling, self.log = role, backend, sampling, log
        self.items, self.requests = items, requests
        self.asked = 0
        self.correct: dict[str, set[str]] = {}  # item -> answer classes seen scoring 1
        self._graded: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()  # ensure() and fetch() may run on several threads (prefetch)
        # a backend that is not known to be thread-safe (a local model) is called by one thread at a time
        self.serial = contextlib.nullcontext() if getattr(backend, "concurrent", False) else serial

    def _record(self, item_id: str, c: Completion) -> Sample:
        from deltaprompts.verifiers import item_answer_class, score_item_answer

        graded = self._graded.get((item_id, c.text))
        if graded is None:  # short answers repeat: grade each distinct text of an item once
            item = self.items[item_id]
            graded = self._graded[(item_id, c.text)] = (item_answer_class(item, c.text), score_item_answer(item, c.text))
        return Sample(item=item_id, index=c.index, text=c.text, answer_class=graded[0], score=graded[1],
                      logprob=c.logprob, finish_reason=c.finish_reason,
                      tokens=len(c.token_logprobs) if c.token_logprobs else None)

    def _keep(self, ids: Sequence[str], asked: Sequence[Sequence[int]],
              results: Sequence[Sequence[Completion]]) -> None:
        with self._lock:
            self.log.append(self._record(i, c) for i, idx, comps in zip(ids, asked, results) for c in comps
                        if c.index in idx)
        for item_id, idx, comps in zip(ids, asked, results):
            extra = sorted({c.index for c in comps} - set(idx))
            if extra:
                raise DeltaError(f"{self.role} model {self.backend.identity} returned sample indices {extra} for "
                                 f"item {item_id}, which were not asked for ({list(idx)}); the rest are kept")

    def fetch(self, ids: Sequence[str], start: int, count: int) -> None:
        """Ask the model for samples start..start+count-1 of each item that are not logged yet, and log
        them; the same calls, seeds and indices whichever thread makes them. Raises PartialResults
        (what came back is logged first)."""
        from deltaprompts.models.wrappers import PartialResults

        with self._lock:
            wanted = {i: [j for j in range(start, start + count) if (i, j) not in self.log] for i in ids}
        todo = [i for i in ids if wanted[i]]
        if todo:
            asked = [wanted[i] for i in todo]
            with self._lock:
                self.asked += sum(map(len, asked))
            try:
                with self.serial:
                    results = self.backend.sample([self.requests[i] for i in todo], self.sampling, asked)
            except PartialResults as e:  # keep what did come back, then let the error through
                self._keep(todo, asked, e.completions)
                raise
            self._keep(todo, asked, results)

    def ensure(self, ids: Sequence[str], start: int, count: int) -> list[list[str]]:
        """The answer classes of samples start..start+count-1 of each item, asking only for missing ones."""
        self.fetch(ids, start, count)
        out = []
        for i in ids:
            missing = [j for j in range(start, start + count) if (i, j) not in self.log]
            if missing:
                raise DeltaError(f"{self.role} model {self.backend.identity} returned no sample {missing} for item {i}")
            recs = [self.log.records[(i, j)] for j in range(start, start + count)]
            self.correct.setdefault(i, set()).update(r.answer_class for r in recs if r.score >= 1.0)
            out.append([r.answer_class for r in recs])
        return out

    def sample_set(self, item_id: str, n: int) -> SampleSet:
        return SampleSet(item=item_id, role=self.role, samples=[self.log.records[(item_id, j)] for j in range(n)])


def _forced(teacher: Backend, student: Backend, sets: Sequence[SampleSet], requests: dict[str, Request],
            log: JsonlLog, locks: Sequence[Any] = (contextlib.nullcontext(), contextlib.nullcontext())) -> None:
    """Teacher-forced log-probs of the teacher's samples under both models, for those not on disk;
    each model is called under its lock in `locks` (a local model is not thread-safe, and the
    prefetch thread may be sampling it meanwhile)."""
    todo = [(s.item, x) for s in sets for x in s.samples if (s.item, x.index) not in log]
    if not todo:
        return
    reqs = [requests[i] for i, _ in todo]
    answers = [x.text for _, x in todo]
    with locks[0]:
        t_scores = teacher.score(reqs, answers)  # type: ignore[attr-defined]
    with locks[1]:
        s_scores = student.score(reqs, answers)  # type: ignore[attr-defined]
    log.append(ForcedScore(item=i, index=x.index, teacher_logprob=t.logprob, student_logprob=s.logprob)
               for (i, x), t, s in zip(todo, t_scores, s_scores))


def score_run(
    run_dir: Path | str, teacher: Backend, student: Backend, k: int = 16, adaptive: bool = False,
    sampling: Sampling | None = None, prompt_format: str = "plain", cache_path: Path | str | None = None,
    metric: str = "tv", threshold: float | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None, *, bootstrap: int = 1000, ci_level: float = 0.95,
    seed: int = 0, zero_level: float = SAME_LEVEL, min_teacher_acc: float = 0.0,
    scores_root: Path | str | None = None, executor: RayScoring | None = None,
) -> ScoreSummary:
    """Sample k answers per item from teacher and student (adaptively: in rounds that stop early)
    and write one Delta per item under `run_dir/scores/`; see the module docstring.

    `sampling.seed` is the base seed: the teacher and student each sample with their own seed derived
    from it. `threshold` is the keep threshold adaptive stopping aims at (default per metric; screen
    with the same value); `min_teacher_acc` is the teacher-accuracy bar it aims at (screen with the
    same; items the teacher keeps failing stop early). `zero_level` is the level of each Delta's
    zero-delta test (p_same > zero_level). `scores_root` puts the scores in `scores_root/scores/`
    instead of `run_dir/scores/` (a second pair's scores beside the first's: audit --teacher/--student
    transfer). `cache_path` wraps both models in the SQLite response cache. `executor` (a
    `deltaprompts.score_ray.RayScoring`) scores the batches in Ray workers instead of here; this
    process still writes every file, and the files are the same.
    `progress(done, total)` is called per batch. Returns a ScoreSummary. Raises UserError for a bad
    run directory, k, metric or batch size, or scores made with other settings; DeltaError when a
    model fails (what it returned so far is kept).
    """
    check_metric(metric, DISTRIBUTION_METRICS)
    if k < 1 or batch_size < 1:
        raise UserError(f"k={k} and batch_size={batch_size} must both be at least 1")
    check_level(zero_level, "zero_level")
    check_level(ci_level, "ci_level")
    if threshold is not None:
        check_threshold(threshold)
    store = RunStore(run_dir)
    from deltaprompts.verifiers.run_checks import verify_run

    # never score against an edited answer, a duplicated line or a shard emptied since the run was made
    items = {it.id: it for it in verify_run(run_dir)}
    sampling = sampling or Sampling()
    try:
        cfg = AdaptiveConfig(rounds=schedule(k) if adaptive else (k,), metric=metric, seed=seed,
                             threshold=DEFAULT_THRESHOLDS[metric] if threshold is None else threshold,
                             zero_level=zero_level, min_teacher_acc=min_teacher_acc)
    except ValidationError as e:
        raise UserError(validation_message(e)) from None
    scores = ScoreStore(run_dir if scores_root is None else scores_root, writer=True)
    meta = _meta(teacher, student, k, adaptive, cfg, sampling, prompt_format, bootstrap, ci_level, seed)
    _check_meta(scores, meta)
    if executor is not None:
        executor.use(teacher, student, cache_path)  # the workers load the models and wrap them in the cache
        summary = _score(store, scores, items, teacher, student, cfg, meta, sampling, prompt_format, batch_size,
                         progress, adaptive, bootstrap, ci_level, zero_level, executor)
        summary.from_cache = executor.from_cache
        return summary
    closers = []
    if cache_path is not None:
        from deltaprompts.models.cache import CachedBackend

        teacher, student = CachedBackend(teacher, cache_path), CachedBackend(student, cache_path)
        closers = [teacher.close, student.close]
    try:
        summary = _score(store, scores, items, teacher, student, cfg, meta, sampling, prompt_format, batch_size, progress,
                         adaptive, bootstrap, ci_level, zero_level)
        if closers:  # completions the cache answered reached no model
            summary.from_cache = {"teacher": teacher.sample_hits, "student": student.sample_hits}  # type: ignore[attr-defined]
        return summary
    finally:
        for close in closers:
            close()


class BatchScorer:
    """Scores batches of items against two models: asks each for the samples an item lacks (logged
    before use), samples in rounds, scores the teacher's samples under both (when both can) and
    makes one Delta per item. The local loop and the Ray workers (`deltaprompts.score_ray`) both run
    it, so the same batch makes the same calls and records wherever it runs. `logs` are the samples
    logs by role and `forced` the teacher-forced log; anything with JsonlLog's records/append/in.
    """

    def __init__(self, root: Path, items: dict[str, Item], teacher: Backend, student: Backend, cfg: AdaptiveConfig,
                 sampling: Sampling, prompt_format: str, logs: dict[str, Any], forced: Any, *, adaptive: bool,
                 bootstrap: int, ci_level: float, zero_level: float, simulated: bool):
        self.root, self.items, self.teacher, self.student, self.cfg = root, items, teacher, student, cfg
        self.prompt_format, self.forced, self.adaptive = prompt_format, forced, adaptive
        self.bootstrap, self.ci_level, self.zero_level, self.simulated = bootstrap, ci_level, zero_level, simulated
        self.requests: dict[str, Request] = {}
        serial = threading.Lock()
        self.samplers = [_Sampler(role, backend, sampling.model_copy(update={"seed": role_seed(sampling.seed, role)}),
                                  logs[role], items, self.requests, serial)
                         for role, backend in zip(ROLES, (teacher, student))]
        self.can_score = isinstance(teacher, Scorer) and isinstance(student, Scorer)
        # teacher and student are asked at once when both may be (HTTP servers); otherwise the teacher
        # first, and a teacher failure asks the student nothing
        self.both = all(getattr(m, "concurrent", False) for m in (teacher, student))
        self.stops: Counter = Counter()
        self.n_samples = 0

    def prepare(self, batch: Sequence[str]) -> None:
        """Build the batch's requests and ask both models for its first round (the same calls the
        rounds would make), while earlier batches are still being sampled."""
        from deltaprompts.models.prompts import build_request

        for i in batch:
            self.requests[i] = build_request(self.items[i], self.root, self.prompt_format)
        first = self.cfg.rounds[0]
        _concurrently(lambda: self.samplers[0].fetch(batch, 0, first),
                      lambda: self.samplers[1].fetch(batch, 0, first), at_once=self.both)

    def _draw(self, ids: Sequence[str], start: int, count: int) -> tuple[list[list[str]], list[list[str]]]:
        t, s = self.samplers
        _concurrently(lambda: t.fetch(ids, start, count), lambda: s.fetch(ids, start, count), at_once=self.both)
        return t.ensure(ids, start, count), s.ensure(ids, start, count)

    def _correct(self, key: str) -> set[str]:
        return self.samplers[0].correct.get(key, set()) | self.samplers[1].correct.get(key, set())

    def finish(self, batch: Sequence[str]) -> list[Any]:
        """Sample a prepared batch's rounds and return its Deltas (in batch order)."""
        cfg, forced = self.cfg, self.forced
        outcomes = sample_rounds(batch, self._draw, cfg, adaptive=self.adaptive, correct=self._correct)
        t_s, s_s = self.samplers
        sets = [(t_s.sample_set(o.key, len(o.teacher)), s_s.sample_set(o.key, len(o.student))) for o in outcomes]
        if self.can_score:
            _forced(self.teacher, self.student, [t for t, _ in sets], self.requests, forced,
                    [t_s.serial, s_s.serial])
        new = []
        for o, (t, s) in zip(outcomes, sets):
            item = self.items[o.key]
            fs = [forced.records[(o.key, x.index)] for x in t.samples] if self.can_score else []
            new.append(make_delta(t, s, family=item.family, question_family=item.question.question_family,
                                  metric=cfg.metric, forced=fs, bootstrap=self.bootstrap, level=self.ci_level,
                                  seed=cfg.seed, rounds=o.rounds, stop=o.reason, simulated=self.simulated,
                                  zero_level=self.zero_level))
            self.stops[o.reason] += 1
            self.n_samples += len(o.teacher) + len(o.student)
        for i in batch:
            self.requests.pop(i, None)
        return new


def _summary(items: dict[str, Item], before: int, todo: Sequence[str], deltas: Any, asked: dict[str, int],
             stops: Counter, n_samples: int, repaired: int, simulated: bool, root: Path) -> ScoreSummary:
    zero = sum(d.zero_delta for d in deltas.records.values())
    return ScoreSummary(
        items=len(items), already_scored=before, scored=len(todo), deltas=len(deltas), zero_delta=zero,
        zero_delta_fraction=zero / len(deltas) if len(deltas) else 0.0,
        identical=sum(d.identical for d in deltas.records.values()),
        completions=asked, stops=dict(sorted(stops.items())),
        mean_samples=n_samples / (2 * len(todo)) if todo else 0.0, repaired_bytes=repaired,
        simulated=simulated, scores_dir=str(root),
    )


def _score(store: RunStore, scores: ScoreStore, items: dict[str, Item], teacher: Backend, student: Backend, cfg: AdaptiveConfig,
           meta: dict[str, Any], sampling: Sampling, prompt_format: str, batch_size: int,
           progress: Callable[[int, int], None] | None, adaptive: bool, bootstrap: int,
           ci_level: float, zero_level: float, executor: RayScoring | None = None) -> ScoreSummary:
    deltas = scores.delta_log()
    logs = {role: scores.sample_log(role) for role in ROLES}
    forced = scores.forced_log()
    repaired = scores.repaired
    before = sum(i in deltas for i in items)
    todo = [i for i in items if i not in deltas]
    if progress:
        progress(before, len(items))
    batches = [todo[b:b + batch_size] for b in range(0, len(todo), batch_size)]

    def done(n: int) -> None:
        if progress:
            progress(before + sum(map(len, batches[:n + 1])), len(items))

    opts = dict(adaptive=adaptive, bootstrap=bootstrap, ci_level=ci_level, zero_level=zero_level,
                simulated=meta["simulated"])
    if executor is not None:  # Ray workers score the batches; this process writes what they return
        asked, stops, n_samples = executor.score_batches(store.root.resolve(), items, batches, logs, forced, deltas,
                                                          cfg, sampling, prompt_format, opts, done)
        return _summary(items, before, todo, deltas, asked, stops, n_samples, repaired, meta["simulated"], scores.root)
    scorer = BatchScorer(store.root, items, teacher, student, cfg, sampling, prompt_format, logs, forced, **opts)
    ahead: dict[int, Future] = {}
    # one prefetch thread: batches are asked for in order, so which call fails first does not depend on
    # thread timing (the batches before a failure keep their Deltas)
    with ThreadPoolExecutor(1, thread_name_prefix="deltaprompts-prefetch") as pool:
        try:
            for n, batch in enumerate(batches):
                for m in range(n, min(n + 1 + PREFETCH, len(batches))):
                    if m not in ahead:
                        ahead[m] = pool.submit(scorer.prepare, batches[m])
                ahead.pop(n).result()
                deltas.append(scorer.finish(batch))
                done(n)
        finally:  # a failure starts no new batch; those in flight finish and keep what they got
            for f in ahead.values():
                f.cancel()
    asked = {s.role: s.asked for s in scorer.samplers}
    return _summary(items, before, todo, deltas, asked, scorer.stops, scorer.n_samples, repaired, meta["simulated"],
                    scores.root)
