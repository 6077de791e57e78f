"""The mine stage: failure patterns of a scored run, as groups of items sharing family, question
family and knob ranges where the event (high Δ, or student wrong where the teacher is right) is
more frequent than overall, with support, rates, Wilson intervals and lift; ranked."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from deltaprompts.divergence.records import DEFAULT_RULE, Delta
from deltaprompts.errors import UserError
from deltaprompts.pipeline.config import MineConfig
from deltaprompts.pipeline.stats import wilson
from deltaprompts.records import Item, Scalar
from deltaprompts.store import RunStore, atomic_write

MINE_DIR = "mine"
PATTERNS_FILE = "patterns.json"


class KnobCondition(BaseModel):
    """A knob equal to `eq`, or within [lo, hi] (inclusive, over the values seen)."""

    eq: Scalar | None = None
    lo: float | None = None
    hi: float | None = None

    def holds(self, value: Any) -> bool:
        """Whether a knob value meets the condition."""
        if self.eq is not None:
            return value == self.eq
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.lo <= value <= self.hi  # type: ignore[operator]

    def text(self, name: str) -> str:
        """The condition on knob `name`, for people."""
        return f"{name}={self.eq}" if self.eq is not None else f"{name} in [{self.lo:g}, {self.hi:g}]"


class Pattern(BaseModel):
    """A group of items and how often the event happens in it."""

    id: str
    family: str
    question_family: str | None = None
    knobs: dict[str, KnobCondition] = Field(default_factory=dict)
    support: int
    events: int
    rate: float
    ci: tuple[float, float]
    base_rate: float
    lift: float | None = Field(description="rate / base_rate; None when the base rate is 0.")
    student_error: float
    teacher_error: float
    mean_delta: float
    zero_delta_fraction: float
    summary: str
    description: str | None = Field(default=None, description="The teacher's paragraph, when asked for.")
    examples: list[str] = Field(default_factory=list, description="Item ids with the event, then others.")

    @property
    def conditions(self) -> int:
        """How many conditions the pattern adds to its family."""
        return (self.question_family is not None) + len(self.knobs)

    def label(self) -> str:
        """family · question family · knob conditions."""
        parts = [self.family] + ([self.question_family] if self.question_family else [])
        return " · ".join(parts + [c.text(k) for k, c in sorted(self.knobs.items())])


class MineReport(BaseModel):
    """What `patterns.json` holds."""

    event: Literal["delta", "failure"]
    metric: str
    min_delta: float
    min_teacher_acc: float
    items: int
    events: int
    base_rate: float
    level: float
    patterns: list[Pattern]
    simulated: bool = False


def is_event(d: Delta, event: str, metric: str, min_delta: float, min_teacher_acc: float,
             rule: str = DEFAULT_RULE) -> bool:
    """delta: screen would keep the item (under `rule`); failure: the student is mostly wrong, the
    teacher mostly right."""
    if event == "failure":
        return d.student_accuracy < 0.5 <= d.teacher_accuracy
    return d.decide(rule, metric, min_delta, min_teacher_acc) == "kept"


def _knob_conditions(values: list[Any], bins: int) -> list[KnobCondition]:
    distinct = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    if len(distinct) < 2:
        return []
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct)
    if not numeric or len(distinct) <= bins:
        return [KnobCondition(eq=v) for v in distinct]
    arr = np.array([float(v) for v in values if v is not None])
    edges = np.unique(np.quantile(arr, np.linspace(0, 1, bins + 1)[1:-1]))
    groups: dict[int, list[float]] = {}
    for v in distinct:
        groups.setdefault(int(np.searchsorted(edges, float(v), side="left")), []).append(float(v))
    return [KnobCondition(lo=min(g), hi=max(g)) for _, g in sorted(groups.items())]


def _pattern_id(family: str, qfam: str | None, knobs: dict[str, KnobCondition]) -> str:
    key = json.dumps([family, qfam, {k: c.model_dump() for k, c in sorted(knobs.items())}], sort_keys=True)
    return "p" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _summary(p: Pattern, event: str) -> str:
    what = "high-Δ items the teacher gets right" if event == "delta" else "student failures where the teacher succeeds"
    lift = f", {p.lift:.1f}x the base rate" if p.lift is not None else ""
    return (f"{p.label()}: student error {p.student_error:.0%} vs teacher error {p.teacher_error:.0%}; "
            f"{p.events}/{p.support} {what} ({p.rate:.0%}{lift})")


def mine_patterns(items: Sequence[Item], deltas: dict[str, Delta], cfg: MineConfig, metric: str, min_delta: float,
                  min_teacher_acc: float, rule: str = DEFAULT_RULE) -> MineReport:
    """Rank the failure patterns of scored items (see the module docstring). Candidates are a family
    with up to `cfg.max_conditions` of: its question family, a knob value or a knob's quantile bin.
    A candidate with the same items as a more general one, or a refinement of a better-ranked one,
    is left out. Raises UserError when no item has a Delta."""
    scored = [it for it in items if it.id in deltas]
    if not scored:
        raise UserError("no item of the run has a Delta: score the run before mining it")
    ds = [deltas[it.id] for it in scored]
    ev = np.array([is_event(d, cfg.event, metric, min_delta, min_teacher_acc, rule) for d in ds])
    s_err = np.array([1 - d.student_accuracy for d in ds])
    t_err = np.array([1 - d.teacher_accuracy for d in ds])
    dval = np.array([d.values[metric] for d in ds])
    zero = np.array([d.zero_delta for d in ds])
    base = float(ev.mean())
    cands: list[tuple[float, float, int, Pattern, frozenset]] = []
    seen_sets: set[bytes] = set()
    for family in sorted({it.family for it in scored}):
        fmask = np.array([it.family == family for it in scored])
        fam_items = [it for it in scored if it.family == family]
        conds: list[tuple[str, Any, np.ndarray]] = []
        for q in sorted({it.question.question_family for it in fam_items}):
            conds.append(("question_family", q, fmask & np.array([it.question.question_family == q for it in scored])))
        knob_names = sorted({k for it in fam_items for k in _knobs(it)})
        for name in knob_names:
            for c in _knob_conditions([_knobs(it).get(name) for it in fam_items], cfg.bins):
                mask = fmask & np.array([it.family == family and c.holds(_knobs(it).get(name)) for it in scored])
                conds.append((f"knob:{name}", c, mask))
        for size in range(cfg.max_conditions + 1):
            for combo in itertools.combinations(conds, size):
                if len({key for key, _, _ in combo}) < size:
                    continue  # two conditions on one attribute
                mask = fmask.copy()
                for _, _, m in combo:
                    mask &= m
                n = int(mask.sum())
                if n < cfg.min_support or mask.tobytes() in seen_sets:
                    continue
                seen_sets.add(mask.tobytes())
                qfam = next((v for key, v, _ in combo if key == "question_family"), None)
                knobs = {key[5:]: v for key, v, _ in combo if key.startswith("knob:")}
                k = int(ev[mask].sum())
                lo, hi = wilson(k, n, cfg.level)
                idx = np.flatnonzero(mask)
                order = sorted(idx, key=lambda i: (not ev[i], -dval[i], scored[i].id))
                p = Pattern(id=_pattern_id(family, qfam, knobs), family=family, question_family=qfam, knobs=knobs,
                            support=n, events=k, rate=k / n, ci=(lo, hi), base_rate=base,
                            lift=(k / n) / base if base > 0 else None, student_error=float(s_err[mask].mean()),
                            teacher_error=float(t_err[mask].mean()), mean_delta=float(dval[mask].mean()),
                            zero_delta_fraction=float(zero[mask].mean()), summary="",
                            examples=[scored[i].id for i in order[:8]])
                p.summary = _summary(p, cfg.event)
                conds_key = frozenset([("family", family), *((key, json.dumps(_plain(v))) for key, v, _ in combo)])
                cands.append((lo, k / n, n, p, conds_key))
    cands.sort(key=lambda c: (-c[0], -c[1], -c[2], c[3].id))
    kept: list[tuple[Pattern, frozenset]] = []
    for _, _, _, p, key in cands:
        if any(prev < key for _, prev in kept):
            continue  # a refinement of a pattern ranked above it says nothing new
        kept.append((p, key))
        if len(kept) == cfg.max_patterns:
            break
    return MineReport(event=cfg.event, metric=metric, min_delta=min_delta, min_teacher_acc=min_teacher_acc,
                      items=len(scored), events=int(ev.sum()), base_rate=base, level=cfg.level,
                      patterns=[p for p, _ in kept], simulated=any(d.simulated for d in ds))


def _knobs(item: Item) -> dict[str, Any]:
    return item.tags.get("knobs") or item.spec.knobs


def _plain(v: Any) -> Any:
    return v.model_dump() if isinstance(v, BaseModel) else v


def patterns_table(report: MineReport, limit: int = 20) -> Any:
    """A rich Table of the top patterns."""
    from rich.table import Table

    sim = " — SIMULATED MODELS" if report.simulated else ""
    t = Table(title=f"failure patterns ({report.event}; base rate {report.base_rate:.1%} over {report.items} "
                    f"items){sim}")
    for col in ("#", "pattern", "n", "events", "rate", f"{report.level:.0%} CI", "lift", "S err", "T err", "mean Δ"):
        t.add_column(col, justify="left" if col == "pattern" else "right")
    for i, p in enumerate(report.patterns[:limit], 1):
        t.add_row(str(i), p.label(), str(p.support), str(p.events), f"{p.rate:.1%}", f"{p.ci[0]:.2f}-{p.ci[1]:.2f}",
                  "-" if p.lift is None else f"{p.lift:.2f}", f"{p.student_error:.2f}", f"{p.teacher_error:.2f}",
                  f"{p.mean_delta:.3f}")
    return t


def table_text(report: MineReport) -> str:
    """The patterns table as plain text (for patterns.txt)."""
    import io

    from rich.console import Console

    console = Console(record=True, width=160, file=io.StringIO(), color_system=None)
    console.print(patterns_table(report, limit=len(report.patterns)))
    text = console.export_text()
    return text


def read_patterns(root: Path | str) -> MineReport:
    """The mined patterns of a run root; raises UserError if the mine stage has not run."""
    path = Path(root) / MINE_DIR / PATTERNS_FILE
    if not path.exists():
        raise UserError(f"{path} does not exist: run the mine stage first")
    return MineReport.model_validate_json(path.read_text())


def mine_run(run_dir: Path | str, out_dir: Path | str, cfg: MineConfig, *, min_delta: float | None = None,
             min_teacher_acc: float = 0.5, describe_with: Any = None, seed: int = 0,
             rule: str = DEFAULT_RULE) -> MineReport:
    """Mine the scored run at `run_dir`; write `patterns.json` and `patterns.txt` to `out_dir`.
    `describe_with` (a Backend) writes a paragraph for the top patterns. Returns the report.
    Raises UserError for an unscored run."""
    from deltaprompts.divergence.adaptive import DEFAULT_THRESHOLDS
    from deltaprompts.score import check_threshold
    from deltaprompts.store import ScoreStore

    if min_delta is not None:  # a NaN would make every comparison false: nothing, or everything, an event
        check_threshold(min_delta, "min_delta")
    if not 0.0 <= min_teacher_acc <= 1.0:
        raise UserError(f"min_teacher_acc={min_teacher_acc!r} must be a number in [0, 1]")
    deltas = ScoreStore(run_dir).deltas(required=True)
    metric = ScoreStore(run_dir).meta().get("metric", "tv")
    threshold = DEFAULT_THRESHOLDS.get(metric, 0.3) if min_delta is None else min_delta
    items = list(RunStore(run_dir).iter_items())
    report = mine_patterns(items, deltas, cfg, metric, threshold, min_teacher_acc, rule)
    if describe_with is not None and cfg.describe:
        from deltaprompts.pipeline.describe import describe_patterns

        describe_patterns(report, {it.id: it for it in items}, deltas, Path(run_dir), describe_with, cfg, seed)
    out = Path(out_dir)
    atomic_write(out / "patterns.txt", table_text(report))
    atomic_write(out / PATTERNS_FILE, report.model_dump_json(indent=2) + "\n")
    return report
