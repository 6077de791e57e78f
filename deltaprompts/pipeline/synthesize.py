"""The synthesize stage: spend a round's budget on the bandit's arms, render there, and let the
teacher write questions for the new renders (template questions fill the rest).

`round-NN/plan.json` fixes the round's allocation and cells before anything is rendered, so a
resumed round renders the same cells. Each teacher reply is logged (`round-NN/teacher.jsonl`,
keyed by image) before it is used: a resumed round asks only about images not in the log.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from deltaprompts.store import JsonlLog
from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import Backend, Sampling
from deltaprompts.pipeline.bandit import Arm, allocate
from deltaprompts.pipeline.cells import Cell, cell_seed, draw_knobs, knob_kinds
from deltaprompts.pipeline.config import PipelineConfig, split_knobs, vary_spec
from deltaprompts.pipeline.teacher_questions import Rejected, item_from_reply, structured, teacher_prompt
from deltaprompts.records import Item
from deltaprompts.rng import derive_seed
from deltaprompts.store import RunStore, atomic_write

Hook = Callable[[str], None]
TEACHER_BATCH = 8


def round_dir(root: Path, r: int) -> Path:
    """The folder of round r under a run root (`round-NN`)."""
    return Path(root) / f"round-{r:02d}"


class Plan(BaseModel):
    """A round's allocation (items per arm) and the cells that render it."""

    round: int
    allocation: dict[str, int]
    posteriors: dict[str, tuple[float, float]]
    cells: list[Cell]


class TeacherRecord(BaseModel):
    """The teacher's replies about one image: each candidate's reason ('' if accepted), and the items made."""

    image: str
    replies: list[dict[str, Any]] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)


def _arm_knobs(arm: Arm, rng: np.random.Generator, fixed: dict[str, Any], vary: dict[str, list[Any]]) -> dict[str, Any]:
    kinds = knob_kinds(arm.family)
    out = draw_knobs(rng, fixed, {k: v for k, v in vary.items() if k not in arm.knobs}, kinds)
    for name, cond in sorted(arm.knobs.items()):
        if cond.eq is not None:
            out[name] = cond.eq
        elif kinds.get(name) == "int":
            out[name] = int(rng.integers(math.ceil(cond.lo), math.floor(cond.hi) + 1))  # type: ignore[arg-type]
        else:
            out[name] = round(float(rng.uniform(cond.lo, cond.hi)), 4)  # type: ignore[arg-type]
    return out


def make_plan(cfg: PipelineConfig, r: int, arms: Sequence[Arm], post: dict[str, tuple[float, float]]) -> Plan:
    """Allocate round r's budget over the arms and cut each arm's share into cells of `chunk` images,
    each with its own knob draw within the arm's constraints."""
    syn = cfg.synthesize
    alloc = allocate(post, syn.budget, syn.chunk, cfg.random_seed, r)
    g = cfg.seed.generate
    fixed, vary = fixed_and_varied(cfg)
    allow = list(g.question_families) if g else []
    cells = []
    for arm in arms:
        n = alloc.get(arm.id, 0)
        for j in range(math.ceil(n / syn.chunk)):
            rng = np.random.default_rng(derive_seed(cfg.random_seed, "round-knobs", r, arm.id, j))
            knobs = _arm_knobs(arm, rng, fixed.get(arm.family, {}), vary.get(arm.family, {}))
            cells.append(Cell(id=f"r{r:02d}-{len(cells):03d}", family=arm.family, knobs=knobs,
                              images=min(syn.chunk, n - j * syn.chunk),
                              seed=cell_seed(cfg.random_seed, "round", r, arm.id, j),
                              candidates=max(g.candidates_per_image if g else 3, 1), allow=allow,
                              prefer=[arm.question_family] if arm.question_family else [],
                              mc_fraction=g.mc_fraction if g else 0.0, template_dirs=list(g.template_dirs) if g else [],
                              tags={"round": r, "stage": "synthesize", "arm": arm.id}))
    return Plan(round=r, allocation=alloc, posteriors=dict(post), cells=cells)


def fixed_and_varied(cfg: PipelineConfig) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, list[Any]]]]:
    """Per family: the fixed knobs (the seed's, then synthesize.knobs for synthesize.families) and the
    varied ones (the seed's `vary`)."""
    from deltaprompts.generate import select_families

    g = cfg.seed.generate
    seed_fams = select_families(g.families, g.domains) if g else []
    fixed = split_knobs(seed_fams, g.knobs) if g else {}
    vary = vary_spec(seed_fams, g.vary) if g else {}
    syn = cfg.synthesize
    for fam, knobs in split_knobs(syn.families, syn.knobs).items():
        fixed[fam] = {**fixed.get(fam, {}), **knobs}
    return fixed, vary


def load_or_make_plan(cfg: PipelineConfig, root: Path, r: int, arms: Sequence[Arm],
                      post: dict[str, tuple[float, float]]) -> Plan:
    """Round r's plan: the one on disk (a resumed round), or a new one written before it is used."""
    path = round_dir(root, r) / "plan.json"
    if path.exists():
        return Plan.model_validate_json(path.read_text())
    plan = make_plan(cfg, r, arms, post)
    atomic_write(path, plan.model_dump_json(indent=2) + "\n")
    return plan


class TeacherWriter:
    """Asks the teacher for questions about a cell's renders and merges them with template questions."""

    def __init__(self, teacher: Backend, cfg: PipelineConfig, log_path: Path, arms: dict[str, Arm], hook: Hook | None,
                 cache: Path | None = None):
        syn = cfg.synthesize
        self.cfg, self.arms, self.hook = syn, arms, hook
        self.teacher = structured(teacher) if syn.structured_output else teacher
        self.close = lambda: None
        if cache is not None:  # after `structured`: the response format is part of the cached identity
            from deltaprompts.models.cache import CachedBackend

            self.teacher = CachedBackend(self.teacher, cache)
            self.close = self.teacher.close
        self.log = JsonlLog(log_path, TeacherRecord, lambda rec: rec.image)
        self.sampling = Sampling(temperature=syn.teacher_temperature, max_new_tokens=syn.teacher_max_new_tokens,
                                 seed=derive_seed(cfg.random_seed, "teacher-questions") % 2**31)

    def _ask(self, reqs: list[Any]) -> list[list[Any]]:
        try:
            return self.teacher.sample(reqs, self.sampling, [list(range(self.cfg.teacher_candidates))] * len(reqs))
        except DeltaError as e:
            if "HTTP 400" in str(e) and self.cfg.structured_output:
                raise UserError(f"{e}. The server may not support response_format json_schema: set "
                                "synthesize.structured_output = false") from None
            raise

    def __call__(self, cell: Cell, items: list[Item], folder: Path) -> tuple[list[Item], dict[str, int]]:
        """The cell's items: per image, accepted teacher questions first, then its template ones."""
        from deltaprompts.pipeline.describe import user_request

        arm = self.arms.get(str(cell.tags.get("arm")))
        by_image: dict[str, list[Item]] = {}
        for it in RunStore(folder).iter_items():
            by_image.setdefault(it.image.path, []).append(it)
        key = {path: f"{cell.id}/{path}" for path in by_image}
        todo = [p for p in by_image if key[p] not in self.log]
        for s in range(0, len(todo), TEACHER_BATCH):
            paths = todo[s:s + TEACHER_BATCH]
            reqs = []
            for p in paths:
                base = by_image[p][0]
                examples = by_image[p][: self.cfg.examples]
                text = teacher_prompt(base.facts, arm.text if arm else None, arm.question_family if arm else None,
                                      examples, self.cfg.facts_chars)
                shown = [(str((folder / ref.path).resolve()), ref.sha256) for ref in base.images]  # every page or frame
                reqs.append(user_request(f"teacher:{key[p]}", shown, text))
            results = self._ask(reqs)
            self.log.append(self._judge(key[p], by_image[p], comps) for p, comps in zip(paths, results))
            if self.hook:
                self.hook(f"teacher:{cell.id}:{s // TEACHER_BATCH}")
        kept_by_image: dict[str, list[Item]] = {}
        for it in items:
            kept_by_image.setdefault(it.image.path, []).append(it)
        out: list[Item] = []
        counts: Counter = Counter()
        for p in by_image:
            rec = self.log.records[key[p]]
            counts.update(f"teacher:{x['reason']}" for x in rec.replies if x["reason"])
            teacher_items = [it.model_copy(deep=True) for it in rec.items][: cell.per_image]
            for it in teacher_items:
                it.tags.update(cell.tags, cell=cell.id)
            out += teacher_items + kept_by_image.get(p, [])[: cell.per_image - len(teacher_items)]
        return out, dict(counts)

    def _judge(self, image: str, candidates: list[Item], comps: list[Any]) -> TeacherRecord:
        seen = {it.question.text.casefold() for it in candidates}
        rec = TeacherRecord(image=image)
        prov = {"stage": "synthesize", "teacher": self.teacher.identity}
        for c in sorted(comps, key=lambda c: c.index):
            try:
                item = item_from_reply(c.text, candidates[0], seen, prov)
            except Rejected as e:
                rec.replies.append({"index": c.index, "reason": e.reason, "detail": str(e)[:300],
                                    "text": c.text[:2000]})
                continue
            except (ValueError, TypeError, KeyError, ArithmeticError, RecursionError) as e:
                # a program no check foresaw breaking an op: the reply is rejected, the round goes on
                rec.replies.append({"index": c.index, "reason": f"invalid:{type(e).__name__}",
                                    "detail": str(e)[:300], "text": c.text[:2000]})
                continue
            seen.add(item.question.text.casefold())
            rec.replies.append({"index": c.index, "reason": "", "text": c.text[:2000]})
            rec.items.append(item)
        return rec


def synthesize_round(cfg: PipelineConfig, root: Path, plan: Plan, arms: Sequence[Arm], teacher: Backend | None,
                     hook: Hook | None = None, cache: Path | None = None) -> dict[str, Any]:
    """Render round `plan.round` into `round-NN/gen` (a run directory), with teacher-written
    questions when `teacher` is given and enabled (its replies cached in `cache`); idempotent.
    Returns the run's manifest. Raises UserError for an empty plan; DeltaError when the teacher fails."""
    from deltaprompts.generate import versions
    from deltaprompts.pipeline.seed import run_cells

    rd = round_dir(root, plan.round)
    writer = None
    if teacher is not None and cfg.synthesize.teacher_questions:
        writer = TeacherWriter(teacher, cfg, rd / "teacher.jsonl", {a.id: a for a in arms}, hook, cache)
    manifest = {"command": f"deltaprompts run (synthesize, round {plan.round})", "seed": cfg.random_seed,
                "versions": versions(), "config": {"stage": "synthesize", "round": plan.round,
                                                   **json.loads(cfg.synthesize.model_dump_json())}}
    if not plan.cells:
        raise UserError(f"round {plan.round}: the plan has no cells (synthesize.budget={cfg.synthesize.budget})")
    try:
        return run_cells(rd / "gen", plan.cells, manifest, hook, writer)
    finally:
        if writer is not None:
            writer.close()
