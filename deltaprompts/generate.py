"""The generate stage: plan items over families, render in a process pool, write shards.

Item `t` of a run is fixed by (seed, family, family index, knobs, version) alone, so the bytes
written do not depend on the worker count, the shard order, or an interruption and resume.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from importlib import metadata
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer

import deltaprompts
from deltaprompts import augment, engine
from deltaprompts.errors import DeltaError, LayoutError, ProgramError, RenderError, UnknownNameError, UserError
from deltaprompts.generators.base import FAMILIES, Generator, Rendered
from deltaprompts.knobs import resolve_knobs
from deltaprompts.questions import QuestionTemplate, load_templates, make_question, ops_count, templates_for
from deltaprompts.records import ImageRef, Item, Scalar, Spec
from deltaprompts.rng import base_values, extensible_choice, item_rng
from deltaprompts.store import MAX_ITEMS, RunStore, ShardStats, atomic_write, now
from deltaprompts.files import read_text, text_lines
from deltaprompts.verifiers.checks import balance, check_item

DOMAINS = ("chart", "document", "scene")


class GenerateConfig(BaseModel):
    """What a generate run makes; stored in the manifest and compared on --resume."""

    model_config = ConfigDict(extra="forbid")
    families: list[str]
    n: int = Field(gt=0, le=MAX_ITEMS, description="Number of items (questions) to write.")
    seed: int = 0
    knobs: dict[str, dict[str, Scalar]] = Field(default_factory=dict, description="Resolved knobs per family.")
    questions_per_image: int = Field(default=1, ge=1, le=20)
    mc_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    shard_size: int = Field(default=50, ge=1, description="Images per shard (the unit of work and of resume).")
    template_dirs: list[str] = Field(default_factory=list)
    max_attempts: int = Field(default=6, ge=1, description="Re-draws of a Spec whose questions all fail.")
    balance_ratio: float | None = Field(default=1.1, gt=1.0, description="Answer balance per question family; None: off.")
    balance_min: int = Field(default=20, ge=2, description="Question families smaller than this are not balanced.")
    topic_files: list[str] = Field(default_factory=list, description="User chart topic packs (--topics), absolute paths.")
    topics_only: bool = Field(default=False, description="Charts draw only the topic_files' topics (a domain suite).")
    data_file: str | None = Field(default=None, description="The user's table the chart families draw (--data), absolute path.")
    data_sha256: str | None = Field(default=None, description="The sha256 of data_file's bytes when the run started.")

    @model_serializer(mode="wrap")
    def _drop_unused_user_inputs(self, handler: Any) -> dict[str, Any]:
        # a run without --topics / --data writes the config it always wrote (its manifest, its --resume check)
        out = handler(self)
        for key in ("topic_files", "topics_only", "data_file", "data_sha256"):
            if not out.get(key, True):
                out.pop(key)
        return out

    @property
    def n_images(self) -> int:
        return math.ceil(self.n / self.questions_per_image)

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_images / self.shard_size)


def select_families(families: Sequence[str] = (), domains: Sequence[str] = ()) -> list[str]:
    """Resolve --family / --domain selections to family names (a domain leaves out families that are
    unavailable here); raises UnknownNameError, or UserError for a named family that is unavailable."""
    out: list[str] = []
    for d in domains:
        if d not in DOMAINS:
            raise UnknownNameError("domain", d, DOMAINS)
        # a family that cannot render here (an optional package missing) is left out of a whole domain
        out += [n for n in FAMILIES.names() if FAMILIES.get(n).domain == d and not FAMILIES.get(n).unavailable()]
    for f in families:
        if why := FAMILIES.get(f).unavailable():
            raise UserError(f"family {f} is unavailable here: {why}")
        out.append(f)
    if not out:
        raise UserError("choose what to generate: --family NAME[,NAME...] or --domain chart,document,scene")
    return list(dict.fromkeys(out))


def resolve_all_knobs(families: Sequence[str], given: dict[str, str]) -> dict[str, dict[str, Scalar]]:
    """Apply each `--knob name=value` (or `family:name=value`) to the families that have it.

    Raises UnknownNameError when no selected family has the knob, KnobError for a bad value.
    """
    per_family: dict[str, dict[str, str]] = {f: {} for f in families}
    for key, value in given.items():
        fam, _, name = key.rpartition(":")
        targets = [fam] if fam else [f for f in families if any(k.name == name for k in FAMILIES.get(f).knobs)]
        if fam and fam not in per_family:
            raise UnknownNameError("selected family", fam, families)
        if not targets:
            known = sorted({k.name for f in families for k in FAMILIES.get(f).knobs})
            raise UnknownNameError("knob", name, known)
        for f in targets:
            per_family[f][name] = value
    return {f: resolve_knobs(f, FAMILIES.get(f).knobs, per_family[f]) for f in families}


# ------------------------------------------------------------------ worker side

_FAMILY_CACHE: dict[str, Generator] = {}


def _family(name: str) -> Generator:
    if name not in _FAMILY_CACHE:
        _FAMILY_CACHE[name] = FAMILIES.get(name)()
    return _FAMILY_CACHE[name]


@atexit.register
def _close_families() -> None:
    for fam in _FAMILY_CACHE.values():
        fam.close()


#: how many threads a renderer that parallelises itself (Blender's Cycles) may use in this process
RENDER_THREADS_ENV = "DELTAPROMPTS_RENDER_THREADS"


def _worker_context() -> BaseContext:
    """How the pool starts its workers: forked by a fork server that has imported the renderers once
    (deltaprompts.worker_preload), where the platform has one; else spawned. Never forked from the
    driver itself: a worker may own a browser (plotly) and must not inherit the driver's threads or locks."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["deltaprompts.worker_preload"])
    return ctx


def start_workers_early() -> None:
    """Start the fork server now, so that its imports overlap the driver's own checks (no-op where
    there is none, or when it already runs)."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" in multiprocessing.get_all_start_methods():
        _worker_context()
        forkserver.ensure_running()


def _exit_with_parent(driver: int, render_threads: int = 0, environ: dict[str, str] | None = None) -> None:
    """Worker initializer: a daemon thread that ends this worker once the `driver` process is gone
    (a `kill -9` of `generate` would otherwise leave the workers, and the resource tracker, running).
    A forked worker's parent is the fork server, which exits with the driver: the worker watches
    whichever parent it has. With `render_threads`, the workers share the cores rather than each
    renderer taking all of them. `environ`: the driver's environment now (a fork server keeps the
    one it was started with)."""
    import threading

    parent = os.getppid()

    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if render_threads:
        os.environ[RENDER_THREADS_ENV] = str(render_threads)

    def watch() -> None:
        while os.getppid() == parent and _alive(driver):
            time.sleep(0.5)
        closer = threading.Thread(target=_close_families, daemon=True)  # a family may own a browser
        closer.start()
        closer.join(2.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether process `pid` still exists (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def _plan(cfg: GenerateConfig, image_index: int) -> tuple[str, int]:
    """Which family, and which index within it, image `image_index` of the run belongs to."""
    f = len(cfg.families)
    return cfg.families[image_index % f], image_index // f


def image_refs(spec: Spec, rendered: Rendered) -> list[ImageRef]:
    """Where each image of a render is written, relative to the run: images/<family>/<spec key>.png, and
    <spec key>-2.png, -3.png ... for the later images of a multi-image render."""
    pngs = rendered.pngs
    facts = rendered.facts
    sizes = facts.image_sizes or [(facts.width, facts.height)]
    if len(sizes) != len(pngs):
        raise RenderError(f"{spec.family}: the render has {len(pngs)} images but its Facts list {len(sizes)} "
                          "image sizes (Facts.image_sizes)")
    stem = f"images/{spec.family}/{spec.key}"
    return [ImageRef(path=f"{stem}.png" if n == 0 else f"{stem}-{n + 1}.png", sha256=hashlib.sha256(png).hexdigest(),
                     width=int(w), height=int(h)) for n, (png, (w, h)) in enumerate(zip(pngs, sizes))]


@engine.memo()  # the checks re-run each question's program and its steps: run each (node, Facts) once
def _make_items(cfg: GenerateConfig, templates: Sequence[QuestionTemplate], rendered: Rendered, spec: Spec,
                want: int, attempt: int, rejects: Counter) -> list[Item]:
    """Up to `want` items with distinct, well-posed questions about one render.

    Each candidate question must execute (no tie, unique referents), have no degenerate step
    and pass the per-item checks; every rejection is counted by its reason.
    """
    fam = spec.family
    usable = templates_for(fam, rendered.facts, templates)
    if not usable:
        rejects["no_template"] += 1
        return []
    image, *more_images = image_refs(spec, rendered)
    out: list[Item] = []
    seen: set[str] = set()
    for slot in range(want * 6):
        if len(out) == want:
            break
        rng = item_rng(cfg.seed, fam, spec.index, "question", attempt, slot)
        # a question family added by the user takes its share and moves no question of another family
        tpl = extensible_choice(rng, usable, name=lambda t: t.name, base=base_values("templates"))
        try:
            q = make_question(tpl, rendered.facts, rng, cfg.mc_fraction)
        except ProgramError as e:
            rejects[e.reason] += 1
            continue
        if q.text in seen:
            rejects["duplicate_question"] += 1
            continue
        tags = {"domain": rendered.facts.domain, "knobs": spec.knobs, "question_family": q.question_family,
                "skills": list(tpl.skills), "steps": ops_count(q.program),
                "answer_type": q.answer_type}
        prov = {"generator": f"{fam}@{spec.version}", "deltaprompts": deltaprompts.__version__,
                "seed": cfg.seed, "index": spec.index, "attempt": attempt, "stage": "generate"}
        item = Item(id=Item.make_id(spec, q), family=fam, family_version=spec.version, spec=spec, image=image,
                    more_images=more_images, facts=rendered.facts, question=q, tags=tags, provenance=prov)
        reasons = check_item(item)
        if reasons:
            rejects[reasons[0]] += 1
            continue
        seen.add(q.text)
        out.append(item)
    return out


def _sampler(cfg: GenerateConfig) -> Callable[[str, int, int], Spec]:
    """sample(family, family index, attempt) -> Spec: from the family's topics (with the user's
    --topics packs), or from the user's --data table."""
    from deltaprompts.generators.chart_sampling import user_topics

    table = None
    if cfg.data_file:
        from deltaprompts.generators.user_data import load_table

        table = load_table(cfg.data_file, cfg.data_sha256 or "")

    def sample(fam: str, fidx: int, attempt: int) -> Spec:
        if table is not None:
            from deltaprompts.generators.user_data import sample_spec

            return sample_spec(_family(fam), cfg.seed, fidx, cfg.knobs[fam], attempt, table)
        with user_topics(cfg.topic_files, cfg.topics_only):
            return _family(fam).sample(cfg.seed, fidx, cfg.knobs[fam], attempt)

    return sample


def check_user_inputs(cfg: GenerateConfig) -> None:
    """Fail fast, before `out` or a worker is made: the --topics packs load and the --data table
    reads and fits every family (raises TemplateError / DataError naming the file)."""
    if cfg.topics_only and not cfg.topic_files:
        raise UserError("--topics-only needs a topic pack: --topics FILE.yaml")
    if cfg.data_file and (cfg.topic_files or cfg.topics_only):
        raise UserError("--data draws the table's own columns, not topics: use --topics and --data in separate runs")
    if cfg.topic_files:
        from deltaprompts.generators.chart_sampling import load_topics

        load_topics(cfg.topic_files)
    if cfg.topics_only:
        _check_topics_cover(cfg)
    if cfg.data_file:
        from deltaprompts.generators.user_data import fitting_families, load_table

        fitting_families(load_table(cfg.data_file, cfg.data_sha256 or ""), cfg.families)


def _check_topics_cover(cfg: GenerateConfig) -> None:
    """With --topics-only, every chart count a family may draw needs a topic of the packs that can
    hold it; raises UserError naming the family and the count none can."""
    from deltaprompts.generators.chart_kind import kind_of
    from deltaprompts.generators.chart_sampling import eligible_topics, user_topics

    for fam in cfg.families:
        gen = FAMILIES.get(fam)
        if gen.domain != "chart" or not hasattr(gen, "chart_type"):
            continue
        kind, knobs = kind_of(gen.chart_type), cfg.knobs[fam]
        cats = [int(knobs.get("n_categories", 0))] if int(knobs.get("n_categories", 0)) else \
            list(range(kind.n_categories_random[0], kind.n_categories_random[1] + 1))
        span = kind.n_series_random or (1, 1)
        sers = [int(knobs.get("n_series", 0))] if int(knobs.get("n_series", 0)) else list(range(span[0], span[1] + 1))
        with user_topics(cfg.topic_files, True):
            for c, s in itertools.product(cats, sers):
                if not eligible_topics(kind, c, s, int(knobs.get("value_decimals", 0))):
                    raise UserError(f"--topics-only: no topic of {', '.join(cfg.topic_files)} can draw {fam} with "
                                    f"{c} categories and {s} series; add a topic with kinds [{kind.name}] and enough "
                                    "categories, series names and range, or set --knob n_categories / n_series")


def _render(by_family: dict[str, list[int]], specs: dict[int, Spec], rejects: Counter) -> dict[int, Rendered]:
    """Render the Specs family by family, a batch each; when a batch fails with LayoutError (a chart
    whose texts leave no room, say), its Specs are rendered one by one and those that fail so are
    left out (counted as `render_error`: the caller draws them again with the next attempt). Any
    other RenderError (no browser, a missing font) stops the run."""
    out: dict[int, Rendered] = {}
    for fam, idx in by_family.items():
        gen = _family(fam)
        try:
            out.update(zip(idx, gen.render_batch([specs[i] for i in idx])))
            continue
        except LayoutError:
            pass
        for i in idx:
            try:
                out[i] = gen.render(specs[i])
            except LayoutError:
                rejects["render_error"] += 1
    return out


def run_shard(cfg: GenerateConfig, k: int, root: str) -> ShardStats:
    """Render and write shard k of the run under `root`; return its stats. Runs in a worker."""
    store = RunStore(root)
    sample = _sampler(cfg)
    templates = load_templates(tuple(cfg.template_dirs))
    first, last = k * cfg.shard_size, min((k + 1) * cfg.shard_size, cfg.n_images)
    rejects: Counter = Counter()
    results: dict[int, list[Item]] = {}
    pending = {i: 0 for i in range(first, last)}  # image index -> attempt
    t0 = time.perf_counter()
    while pending:
        specs = {}
        for i, attempt in pending.items():
            fam, fidx = _plan(cfg, i)
            specs[i] = sample(fam, fidx, attempt)
        by_family: dict[str, list[int]] = {}
        for i, s in specs.items():
            by_family.setdefault(s.family, []).append(i)
        rendered = _render(by_family, specs, rejects)
        rendered = {i: augment.apply(specs[i], r) for i, r in rendered.items()}  # the `augment` knob: post-render realism
        retry = {}
        for i, attempt in pending.items():
            want = min(cfg.questions_per_image, cfg.n - i * cfg.questions_per_image)
            items = _make_items(cfg, templates, rendered[i], specs[i], want, attempt, rejects) if i in rendered else []
            if len(items) < want and attempt + 1 < cfg.max_attempts:
                rejects["spec_redrawn"] += 1
                retry[i] = attempt + 1
                continue
            if items:
                for ref, png in zip(items[0].images, rendered[i].pngs):
                    store.write_image(ref.path, png)
            results[i] = items
            if len(items) < want:
                rejects["gave_up"] += want - len(items)
        pending = retry
    items = [it for i in sorted(results) for it in results[i]]
    return store.write_items(k, items, rejects, shard=k, seconds=round(time.perf_counter() - t0, 3))


# ------------------------------------------------------------------ driver side


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the bytes of a run."""
    out = {"python": platform.python_version(), "deltaprompts": deltaprompts.__version__}
    for dist in ("numpy", "pillow", "matplotlib", "reportlab", "pymupdf", "plotly", "kaleido", "jinja2", "faker", "pydantic",
                 "babel", "fonttools", "opencv-python-headless", "bpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def generate(cfg: GenerateConfig, out: Path | str, *, workers: int = 1, resume: bool = False, overwrite: bool = False,
             command: str = "", progress: Callable[[int, int], None] | None = None, executor: str = "local",
             ray_address: str | None = None) -> dict[str, Any]:
    """Write a run directory for `cfg` at `out`; return its manifest.

    `executor` runs the shards: "local" (a process pool of `workers`) or "ray" (Ray tasks on the
    cluster at `ray_address` or $RAY_ADDRESS, else a local one of `workers` CPUs); the bytes
    written are the same. `progress(items_done, items_total)` is called as shards finish. Raises
    UnknownNameError for another executor, UserError for a non-empty `out` without
    resume/overwrite, a --resume whose config differs, or "ray" without Ray installed.
    """
    if executor not in _EXECUTORS:
        raise UnknownNameError("executor", executor, _EXECUTORS)
    if executor == "local" and workers > 1 and cfg.n_shards > 1:
        start_workers_early()
    load_templates(tuple(cfg.template_dirs))  # fail fast on a broken template, before `out` or a worker is made
    check_user_inputs(cfg)
    store = RunStore(out)
    old = store.prepare(resume=resume, overwrite=overwrite)
    cfg_json = json.loads(cfg.model_dump_json())
    if old is not None and old.get("config") != cfg_json:
        diff = sorted(k for k in set(cfg_json) | set(old.get("config", {})) if cfg_json.get(k) != old.get("config", {}).get(k))
        raise UserError(f"--resume: the run in {out} was made with a different config ({', '.join(diff)} differ); "
                        "use the same options, or --overwrite")
    manifest = {"command": command or " ".join(sys.argv), "config": cfg_json, "versions": versions(),
                "seed": cfg.seed, "status": "running", "started": now()}
    if old is None:
        store.write_manifest(manifest)
    done_items = sum(store.shard_stats(k).items for k in range(cfg.n_shards) if store.shard_done(k))
    todo = (k for k in range(cfg.n_shards) if not store.shard_done(k))  # lazily: memory does not grow with n
    t0 = time.perf_counter()
    if progress:
        progress(done_items, cfg.n)
    # closing: an error here (or in progress) stops the executor's tasks before it propagates
    with contextlib.closing(_EXECUTORS[executor](cfg, str(store.root.resolve()), todo, workers, ray_address)) as shards:
        for stats in shards:
            done_items += stats.items
            if progress:
                progress(done_items, cfg.n)
    return finalize(store, cfg, manifest | ({"started": old["started"]} if old else {}), time.perf_counter() - t0)


def _local_shards(cfg: GenerateConfig, root: str, todo: Iterator[int], workers: int,
                  _address: str | None) -> Iterator[ShardStats]:
    """Run the shards `todo` in this process (one worker) or a process pool; yield each one's stats as it finishes."""
    head = list(itertools.islice(todo, 2))
    todo = itertools.chain(head, todo)
    if workers <= 1 or len(head) <= 1:
        for k in todo:
            yield run_shard(cfg, k, root)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(), initializer=_exit_with_parent,
                             initargs=(os.getpid(), max(1, (os.cpu_count() or 1) // workers), dict(os.environ))) as pool:
        # a few shards in flight per worker, not one future per shard of the run
        futures = {pool.submit(run_shard, cfg, k, root) for k in itertools.islice(todo, 2 * workers)}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
            futures |= {pool.submit(run_shard, cfg, k, root) for k in itertools.islice(todo, len(finished))}


def _ray_shards(cfg: GenerateConfig, root: str, todo: Iterator[int], workers: int,
                address: str | None) -> Iterator[ShardStats]:
    """Run the shards `todo` as Ray tasks; yield each one's stats as it finishes.

    Connects to the cluster at `address` (or $RAY_ADDRESS), else starts a local one of `workers`
    CPUs; a Ray already initialised in this process is used as it is. Only a connection or cluster
    started here is shut down. `root` must be the same path on every node (a shared filesystem).
    A DeltaError raised in a task is raised here as itself.
    """
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'deltaprompts[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(**kwargs, logging_level=logging.WARNING)
    task = ray.remote(_ray_shard)
    in_flight: list[Any] = []
    try:
        # a few shards in flight per CPU of the cluster, not one task per shard of the run
        limit = 2 * max(1, int(ray.cluster_resources().get("CPU", workers)))
        cfg_ref = ray.put(cfg)
        in_flight = [task.remote(cfg_ref, k, root) for k in itertools.islice(todo, limit)]
        while in_flight:
            finished, in_flight = ray.wait(in_flight, num_returns=1)
            result = ray.get(finished[0])
            if isinstance(result, _TaskError):
                raise result.rebuild() from None
            yield result
            in_flight += [task.remote(cfg_ref, k, root) for k in itertools.islice(todo, 1)]
    finally:
        for ref in in_flight:  # an error or an interrupt: leave no task of this run going on the cluster
            with contextlib.suppress(Exception):  # a cluster already gone must not hide the error that ended the run
                ray.cancel(ref)
        if started:
            ray.shutdown()


class _TaskError:
    """A DeltaError raised in a Ray task, sent back as a value: Ray pickles exceptions by their
    constructor arguments, which those with their own __init__ (UnknownNameError, ProgramError) do
    not survive. `rebuild()` makes the same class with the same message and attributes."""

    def __init__(self, e: DeltaError):
        self.cls, self.args, self.state = type(e), e.args, dict(vars(e))

    def rebuild(self) -> DeltaError:
        e = self.cls.__new__(self.cls)
        e.args = self.args
        vars(e).update(self.state)
        return e


def _ray_shard(cfg: GenerateConfig, k: int, root: str) -> ShardStats | _TaskError:
    """run_shard in a Ray task; a DeltaError comes back as a _TaskError (any other error as Ray raises it)."""
    try:
        return run_shard(cfg, k, root)
    except DeltaError as e:
        return _TaskError(e)


_EXECUTORS: dict[str, Callable[[GenerateConfig, str, Iterator[int], int, str | None], Iterator[ShardStats]]] = {
    "local": _local_shards, "ray": _ray_shards}


def apply_balance(store: RunStore, cfg: GenerateConfig) -> None:
    """Drop over-represented answers per question family (see verifiers.checks.balance).

    The decision is written first (`balance.json`), then each shard is rewritten without the
    dropped items; a kill in between is finished by the next --resume with the same decision.
    """
    path = store.root / "balance.json"
    if path.exists():
        dropped = set(json.loads(path.read_text())["dropped"])
    else:
        # what balance reads of each item (id, question family, value), parsed as plain JSON, not validated
        # as whole Items: a serial pass over the run at its end, and a run's Facts stay on disk
        dropped = balance(list(_balance_view(store)), cfg.balance_ratio, cfg.balance_min) if cfg.balance_ratio else set()
        atomic_write(path, json.dumps({"ratio": cfg.balance_ratio, "dropped": sorted(dropped)}, indent=0))
    for k in range(cfg.n_shards):
        lines = read_text(store.shard_path(k)).splitlines()
        keep = [line for line in lines if json.loads(line)["id"] not in dropped]
        stats = store.shard_stats(k)
        removed = stats.items - len(keep)  # from the stats, so a kill between the two writes is repaired
        if removed == 0:
            continue
        items = [Item.model_validate_json(line) for line in keep]
        rejections = {**stats.rejections, "answer_imbalance": stats.rejections.get("answer_imbalance", 0) + removed}
        store.write_items(k, items, rejections, shard=stats.shard, seconds=stats.seconds)


def _balance_view(store: RunStore) -> Iterator[SimpleNamespace]:
    """What balance reads of every item of the run (id, question family, value), in shard order; raises
    UserError naming a line that is not an item's JSON."""
    for path in store.shard_files():
        for n, line in text_lines(path):
            if not line.strip():
                continue
            try:
                it = json.loads(line)
                q = it["question"]
                family = q["question_family"] if "question_family" in q else q["family"]  # runs before the rename
                yield SimpleNamespace(id=it["id"], question=SimpleNamespace(question_family=family,
                                                                            value=q.get("value")))
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"{path}:{n}: not a valid item: {e!r}") from None


def finalize(store: RunStore, cfg: GenerateConfig, manifest: dict[str, Any], seconds: float) -> dict[str, Any]:
    """Balance answers, sum the shard counters into the manifest and mark the run complete."""
    apply_balance(store, cfg)
    return store.finish(manifest, cfg.n_shards, last_session_seconds=round(seconds, 2))
