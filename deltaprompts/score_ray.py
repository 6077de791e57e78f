"""`score --executor ray`: batches of items scored by Ray worker actors, `hf:` models in actors of their own.

The driver (the process that called `score_run`) keeps every file: it hands each batch, with the
samples already on disk for its items, to a worker actor, which runs the same `BatchScorer` as a
local run over an in-memory log and returns the new records; the driver appends them in batch
order through the run's `ScoreStore`. So a Ray run writes the same `scores/` bytes as a local one,
and resumes the same way. An `hf:` model is loaded once, in an actor of its own (`model_actors`
per model, `gpus_per_model` GPUs each, else on a CPU); the workers send it their batches' calls
whole, so its batches are the ones a local run makes. Any other backend is built in each worker.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltaprompts.divergence.records import Delta, ForcedScore, Sample
from deltaprompts.errors import DeltaError, UnknownNameError, UserError
from deltaprompts.generate import _TaskError
from deltaprompts.models.base import Backend, Scorer
from deltaprompts.models.hf import HFBackend
from deltaprompts.records import Item
from deltaprompts.score import ROLES, BatchScorer

EXECUTORS = ("local", "ray")


def make_executor(name: str, address: str | None = None, workers: int = 1, gpus_per_model: float = 0.0,
                  model_actors: int = 1) -> RayScoring | None:
    """The scoring executor an `--executor` option names: None for "local", a RayScoring for "ray".
    Raises UnknownNameError for another name, UserError for --ray-address without ray, Ray options
    out of range, or "ray" without Ray installed."""
    if name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    if name == "local":
        given = [flag for flag, on in (("--ray-address", address), ("--workers", workers != 1),
                                       ("--gpus-per-model", gpus_per_model), ("--model-actors", model_actors != 1))
                 if on]
        if given:
            raise UserError(f"{', '.join(given)}: options of --executor ray; add --executor ray, or drop them")
        return None
    if workers < 1 or model_actors < 1 or not gpus_per_model >= 0:
        raise UserError(f"--workers ({workers}) and --model-actors ({model_actors}) must be >= 1 and "
                        f"--gpus-per-model ({gpus_per_model}) >= 0")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'deltaprompts[ray]'") from None
    return RayScoring(address, workers, gpus_per_model, model_actors)


class MemoryLog:
    """JsonlLog's interface (records, `in`, append) over memory: a worker's view of one batch's
    records, `new` holding those appended since it was made, in order."""

    def __init__(self, key: Callable[[Any], Hashable], known: Iterable[Any] = ()):
        self.key = key
        self.records: dict[Hashable, Any] = {key(r): r for r in known}
        self.new: list[Any] = []

    def append(self, records: Iterable[Any]) -> list[Any]:
        out = []
        for rec in records:
            k = self.key(rec)
            if k not in self.records:
                self.records[k] = rec
                out.append(rec)
        self.new += out
        return out

    def __contains__(self, key: Hashable) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)


def _sample_key(s: Any) -> tuple[str, int]:
    return (s.item, s.index)


@dataclass
class BatchResult:
    """What a worker returns for one batch: the new records in the order a local run logs them,
    its counters, and the DeltaError that stopped it (what came back before it is kept)."""

    samples: dict[str, list[Sample]]
    forced: list[ForcedScore]
    deltas: list[Delta]
    stops: Counter = field(default_factory=Counter)
    n_samples: int = 0
    asked: dict[str, int] = field(default_factory=dict)
    from_cache: dict[str, int] = field(default_factory=dict)
    error: _TaskError | None = None


# ------------------------------------------------------------------ worker side


def _recipe(backend: Backend) -> Any:
    """How a worker builds `backend`: the object itself when it pickles (an `hf:` model without its
    weights), else its model spec (an `openai:` client holds locks). Raises UserError."""
    from ray import cloudpickle

    if isinstance(backend, HFBackend):
        backend = copy.copy(backend)
        backend._model = backend._processor = None  # loaded where it runs, never shipped
    try:
        cloudpickle.dumps(backend)
        return backend
    except Exception:
        spec = getattr(backend, "spec", None)
        if not spec:
            raise UserError(f"model {backend.identity} cannot be sent to Ray workers; load it from a model spec "
                            "(deltaprompts.models.specs.load_backend)") from None
        return spec


def _same_as(recipe: Any) -> str:
    """Equal for two recipes that build the same backend with the same options (batch size, threads...)."""
    return recipe if isinstance(recipe, str) else repr(sorted(vars(recipe).items()))


def _build(recipe: Any) -> Backend:
    if isinstance(recipe, str):
        from deltaprompts.models.specs import load_backend

        return load_backend(recipe)
    return recipe


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except DeltaError as e:
        return _TaskError(e)


def _unwrap(value: Any) -> Any:
    if isinstance(value, _TaskError):
        raise value.rebuild()
    return value


class ModelActor:
    """One model, loaded once (on its first call) in a Ray actor; a DeltaError comes back as a value."""

    def __init__(self, recipe: Any, gpus: float):
        self.backend = _call(lambda: _build(recipe))  # a bad spec comes back from describe()
        if gpus and isinstance(self.backend, HFBackend) and self.backend.device == "cpu":
            self.backend.device = "cuda"  # the GPUs Ray gave this actor (CUDA_VISIBLE_DEVICES)

    def describe(self) -> Any:
        if isinstance(self.backend, _TaskError):
            return self.backend
        return self.backend.identity, isinstance(self.backend, Scorer)

    def sample(self, requests: Any, sampling: Any, indices: Any) -> Any:
        return _call(lambda: self.backend.sample(requests, sampling, indices))

    def score(self, requests: Any, answers: Any) -> Any:
        return _call(lambda: self.backend.score(requests, answers))  # type: ignore[attr-defined]


class RemoteModel:
    """A worker's handle on a ModelActor, as a Backend: each call goes to the actor whole."""

    concurrent = False  # as the local model: one call at a time, the teacher's before the student's

    def __init__(self, actor: Any, identity: str):
        self.actor, self.identity = actor, identity

    def sample(self, requests: Any, sampling: Any, indices: Any) -> Any:
        import ray

        return _unwrap(ray.get(self.actor.sample.remote(list(requests), sampling, list(indices))))


class RemoteScorer(RemoteModel):
    """A RemoteModel whose model scores answers (a Scorer)."""

    def score(self, requests: Any, answers: Any) -> Any:
        import ray

        return _unwrap(ray.get(self.actor.score.remote(list(requests), list(answers))))


class ScoreWorker:
    """Scores batches in a Ray actor: its teacher and student are built once (remote ones reach a
    ModelActor), wrapped in the response cache when there is one."""

    def __init__(self, recipes: dict[str, Any], cache_path: str | None):
        self.models: dict[str, Any] = {}
        self.error = _call(lambda: self._build(recipes, cache_path))  # a bad spec comes back from identities()

    def _build(self, recipes: dict[str, Any], cache_path: str | None) -> None:
        for role in ROLES:
            r = recipes[role]
            if isinstance(r, tuple):  # ("actor", handle, identity, can_score)
                self.models[role] = (RemoteScorer if r[3] else RemoteModel)(r[1], r[2])
            else:
                self.models[role] = _build(r)
        if cache_path:
            from deltaprompts.models.cache import CachedBackend

            self.models = {role: CachedBackend(m, cache_path) for role, m in self.models.items()}

    def close(self) -> None:
        """Close the response cache (before the actor is ended)."""
        for m in self.models.values():
            getattr(m, "close", lambda: None)()

    def identities(self) -> Any:
        if self.error is not None:
            return self.error
        return self.models["teacher"].identity, self.models["student"].identity

    def run(self, root: str, items: dict[str, Item], batch: list[str], known: dict[str, list[Any]], cfg: Any,
            sampling: Any, prompt_format: str, opts: dict[str, Any]) -> BatchResult:
        """Score one batch; return its new records (a DeltaError is returned in `error`)."""
        logs = {role: MemoryLog(_sample_key, known[role]) for role in ROLES}
        forced = MemoryLog(_sample_key, known["forced"])
        hits = {role: getattr(m, "sample_hits", 0) for role, m in self.models.items()}
        scorer = BatchScorer(Path(root), items, self.models["teacher"], self.models["student"], cfg, sampling,
                             prompt_format, logs, forced, **opts)
        deltas: list[Delta] = []
        error = None
        try:
            scorer.prepare(batch)
            deltas = scorer.finish(batch)
        except DeltaError as e:
            error = _TaskError(e)
        return BatchResult(samples={role: logs[role].new for role in ROLES}, forced=forced.new, deltas=deltas,
                           stops=scorer.stops, n_samples=scorer.n_samples,
                           asked={s.role: s.asked for s in scorer.samplers},
                           from_cache={role: getattr(m, "sample_hits", 0) - hits[role]
                                       for role, m in self.models.items()},
                           error=error)


# ------------------------------------------------------------------ driver side


class RayScoring:
    """Scores runs on a Ray cluster: at `address` (or $RAY_ADDRESS), else a local one of `workers`
    CPUs started here (a Ray already initialised in this process is used as it is). Workers are
    kept for the next `score_batches` with the same models (a pipeline's next stage); `hf:` model
    actors (each model loaded once per actor) end with the call that made them, so the CPUs and
    GPUs they hold are free for the next stage (a pipeline's rendering). `close()` (or leaving the
    `with`) ends every actor and the Ray connection or local cluster started here."""

    def __init__(self, address: str | None = None, workers: int = 1, gpus_per_model: float = 0.0,
                 model_actors: int = 1):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers, self.gpus, self.model_actors = workers, gpus_per_model, model_actors
        self.from_cache = {role: 0 for role in ROLES}
        self._started = False
        self._want: tuple[Backend, Backend, str | None] | None = None
        self._key: Any = None
        self._actors: list[Any] = []
        self._score_workers: list[Any] = []
        self._keep = False

    def __enter__(self) -> RayScoring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def use(self, teacher: Backend, student: Backend, cache_path: Path | str | None) -> None:
        """The models (and response cache) the next `score_batches` scores with."""
        self._want = (teacher, student, str(Path(cache_path).resolve()) if cache_path is not None else None)

    def connect(self, min_cpus: int = 1) -> Any:
        """Join or start the cluster (once: a local one of `workers` CPUs, at least `min_cpus`); return `ray`."""
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": self.address} if self.address else {
                "num_cpus": max(self.workers, min_cpus), "include_dashboard": False}
            ray.init(**kwargs, logging_level=logging.WARNING)
            self._started = True
        return ray

    def close(self) -> None:
        """Stop this object's actors, and the Ray connection or local cluster it started."""
        self._drop()
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    def _drop(self) -> None:
        if self._actors or self._score_workers:
            import ray

            with contextlib.suppress(Exception):  # the cache's SQLite files closed cleanly, where it can
                ray.get([w.close.remote() for w in self._score_workers], timeout=10)
            for a in [*self._score_workers, *self._actors]:
                with contextlib.suppress(Exception):  # a cluster already gone must not hide the error
                    ray.kill(a)
        self._actors, self._score_workers, self._key = [], [], None

    def _pool(self) -> list[Any]:
        """The worker actors for the models `use` named, made (with their model actors) when they change."""
        teacher, student, cache = self._want  # type: ignore[misc]
        key = (teacher.identity, student.identity, cache)
        if key == self._key and self._score_workers:
            return self._score_workers
        self._drop()
        remote = {role: isinstance(m, HFBackend) for role, m in zip(ROLES, (teacher, student))}
        models = len({_same_as(_recipe(m)) for role, m in zip(ROLES, (teacher, student)) if remote[role]})
        ray = self.connect(models * self.model_actors)
        if cache and sum(bool(n.get("Alive")) for n in ray.nodes()) > 1:
            raise UserError(f"the response cache {cache} is one SQLite file, which workers on several nodes cannot "
                            "share safely; score without --cache (models.cache = false) on a multi-node cluster")
        self._check_resources(ray, models)
        model_cls = ray.remote(ModelActor)
        recipes: list[dict[str, Any]] = [{} for _ in range(self.model_actors)]
        made: dict[tuple[str, int], tuple[Any, ...]] = {}  # a teacher that is the student model shares its actors
        for role, m in zip(ROLES, (teacher, student)):
            recipe = _recipe(m)
            for r in range(self.model_actors):
                if not remote[role]:
                    recipes[r][role] = recipe
                    continue
                same = (_same_as(recipe), r)
                if same not in made:
                    actor = model_cls.options(num_cpus=1, num_gpus=self.gpus).remote(recipe, self.gpus)
                    self._actors.append(actor)
                    made[same] = ("actor", actor, *self._unwrap(actor.describe.remote()))
                recipes[r][role] = made[same]
        # with model actors the workers mostly wait on them: two per actor; else one per CPU of the cluster.
        # They reserve no CPU (spread over the nodes instead), so that kept between stages they block no render.
        n = 2 * self.model_actors if any(remote.values()) else self._cpus(ray)
        worker_cls = ray.remote(ScoreWorker).options(num_cpus=0, scheduling_strategy="SPREAD")
        self._score_workers = [worker_cls.remote(recipes[w % self.model_actors], cache) for w in range(n)]
        self._keep = not any(remote.values())  # model actors hold CPUs or GPUs: ended after each stage
        for w in self._score_workers:
            got = self._unwrap(w.identities.remote())
            if got != (teacher.identity, student.identity):
                self._drop()
                raise DeltaError(f"a Ray worker loads the models as {got[0]} and {got[1]}, this process as "
                                 f"{teacher.identity} and {student.identity}: give every node the same model files")
        self._key = key
        return self._score_workers

    def _unwrap(self, ref: Any) -> Any:
        """An actor's answer; a DeltaError it returned is raised (its actors ended first)."""
        import ray

        value = ray.get(ref)
        if isinstance(value, _TaskError):
            self._drop()
            raise value.rebuild()
        return value

    def _cpus(self, ray: Any) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", self.workers)))

    def _check_resources(self, ray: Any, remote_models: int) -> None:
        """Refuse, before an actor waits forever, model actors the cluster cannot place."""
        have = ray.cluster_resources()
        need_cpu, need_gpu = remote_models * self.model_actors, remote_models * self.model_actors * self.gpus
        if need_gpu > have.get("GPU", 0) or need_cpu > have.get("CPU", 0):
            raise UserError(f"{remote_models} hf model(s) x {self.model_actors} actor(s) need {need_cpu} CPUs and "
                            f"{need_gpu:g} GPUs; the Ray cluster has {have.get('CPU', 0):g} CPUs and "
                            f"{have.get('GPU', 0):g} GPUs (lower --model-actors or --gpus-per-model)")

    def score_batches(self, root: Path, items: dict[str, Item], batches: Sequence[list[str]], logs: dict[str, Any],
                      forced: Any, deltas: Any, cfg: Any, sampling: Any, prompt_format: str, opts: dict[str, Any],
                      done: Callable[[int], None]) -> tuple[dict[str, int], Counter, int]:
        """Score `batches` on the workers and append what they return to `logs`, `forced` and
        `deltas` (JsonlLogs) in batch order, calling `done(n)` after batch n. Returns the
        completions asked per role, the stop reasons and the number of samples. A DeltaError in a
        batch is raised after the batches before it, and what that batch obtained, are written."""
        asked = {role: 0 for role in ROLES}
        self.from_cache = {role: 0 for role in ROLES}
        stops: Counter = Counter()
        n_samples = 0
        if not batches:
            return asked, stops, n_samples
        workers = self._pool()
        import ray

        known = _known(logs, forced, {i for b in batches for i in b})
        shared = [str(root), None, None, None, ray.put(cfg), sampling, prompt_format, opts]
        pending: dict[Any, tuple[int, Any]] = {}
        results: dict[int, BatchResult] = {}
        submitted, written, failed, ok = 0, 0, None, False

        def submit(worker: Any) -> None:
            nonlocal submitted
            b = batches[submitted]
            args = list(shared)
            args[1:4] = [{i: items[i] for i in b}, b, {k: [r for i in b for r in known[k].get(i, ())] for k in known}]
            pending[worker.run.remote(*args)] = (submitted, worker)
            submitted += 1

        idle = [*workers, *workers]  # two batches queued per worker: none waits for the driver
        try:
            while True:
                # submit while there is room; results waiting for an earlier batch stay bounded
                while idle and failed is None and submitted < len(batches) and submitted - written < 4 * len(workers):
                    submit(idle.pop(0))
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1)
                n, worker = pending.pop(ready[0])
                idle.append(worker)
                results[n] = res = ray.get(ready[0])
                if res.error is not None and (failed is None or n < failed):
                    failed = n
                while written in results and (failed is None or written <= failed):
                    res = results.pop(written)
                    for role in ROLES:
                        logs[role].append(res.samples[role])
                        asked[role] += res.asked.get(role, 0)
                        self.from_cache[role] += res.from_cache.get(role, 0)
                    forced.append(res.forced)
                    if res.error is not None:
                        raise res.error.rebuild()
                    deltas.append(res.deltas)
                    stops.update(res.stops)
                    n_samples += res.n_samples
                    done(written)
                    written += 1
            ok = True
        finally:  # an error or interrupt stops this run's work; model actors free their CPUs and GPUs
            if not (ok and self._keep):
                self._drop()
        return asked, stops, n_samples


def _known(logs: dict[str, Any], forced: Any, ids: set[str]) -> dict[str, dict[str, list[Any]]]:
    """The records on disk of the items `ids`, by kind (role or "forced") and item: what resumes them."""
    out: dict[str, dict[str, list[Any]]] = {}
    for kind, log in [*logs.items(), ("forced", forced)]:
        by_item: dict[str, list[Any]] = {}
        for rec in log.records.values():
            if rec.item in ids:
                by_item.setdefault(rec.item, []).append(rec)
        out[kind] = by_item
    return out
