"""`deltaprompts check`: rerun every item check over a run directory and count results by reason."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.store import RunStore
from deltaprompts.verifiers.checks import CHECKS, CheckConfig, answer_problem, balance, check_item


@dataclass
class CheckReport:
    """Per check: how many items passed and failed, with the failing reasons and item ids."""

    items: int = 0
    passed: Counter = field(default_factory=Counter)
    failed: dict[str, Counter] = field(default_factory=dict)
    failing_ids: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fail(self, check: str, reason: str, item_id: str) -> None:
        self.failed.setdefault(check, Counter())[reason] += 1
        self.failing_ids.setdefault(check, []).append(item_id)

    @property
    def ill_posed(self) -> int:
        """Items failing at least one check."""
        return len({i for ids in self.failing_ids.values() for i in ids})


def run_problems(manifest: dict, items: list[Item], answers: bool = True) -> list[str]:
    """What makes a run's items untrustworthy as a whole: none at all, an id on more than one line, a
    count other than the manifest's (of a complete run), an answer its program does not give (when
    `answers`: check_run reports those per item)."""
    problems = []
    if not items:
        problems.append("the run has no items")
    dupes = sorted(i for i, c in Counter(it.id for it in items).items() if c > 1)
    if dupes:
        problems.append(f"{len(dupes)} item id(s) on more than one line ({', '.join(dupes[:3])})")
    want = manifest.get("counts", {}).get("items") if isinstance(manifest.get("counts"), dict) else None
    if manifest.get("status") == "complete" and isinstance(want, int) and want != len(items):
        problems.append(f"the manifest counts {want} items, the shards hold {len(items)}")
    wrong = [it.id for it in items if answers and answer_problem(it)]
    if wrong:
        problems.append(f"{len(wrong)} stored answer(s) differ from what the program gives ({', '.join(wrong[:3])})")
    return problems


def verify_run(run_dir: Path | str) -> list[Item]:
    """The run's items, if it passes `run_problems`; raises UserError naming every problem."""
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    items = list(store.iter_items())
    problems = run_problems(manifest, items)
    if problems:
        raise UserError(f"{run_dir} fails its integrity checks: {'; '.join(problems)} "
                        f"(see deltaprompts check {run_dir})")
    return items


def check_run(run_dir: Path | str, cfg: CheckConfig | None = None, ratio: float = 1.1, min_family_size: int = 20) -> CheckReport:
    """Run every per-item check, the image hash check, the stored-answer check and the answer
    balance over a run; `report.problems` holds what fails the run as a whole (`run_problems`)."""
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    report = CheckReport()
    items: list[Item] = []
    for item in store.iter_items():
        items.append(item)
        report.items += 1
        reason = answer_problem(item)
        if reason:
            report.fail("answer", reason, item.id)
        else:
            report.passed["answer"] += 1
        for name in CHECKS:
            reasons = check_item(item, cfg, [name])
            if reasons:
                report.fail(name, reasons[0], item.id)
            else:
                report.passed[name] += 1
        paths = [(store.root / ref.path, ref.sha256) for ref in item.images]
        if not all(path.exists() for path, _ in paths):
            report.fail("image", "image_missing", item.id)
        elif any(hashlib.sha256(path.read_bytes()).hexdigest() != sha for path, sha in paths):
            report.fail("image", "image_hash_mismatch", item.id)
        else:
            report.passed["image"] += 1
    dropped = balance(items, ratio, min_family_size)
    for item in items:
        if item.id in dropped:
            report.fail("balance", "answer_imbalance", item.id)
        else:
            report.passed["balance"] += 1
    report.problems = run_problems(manifest, items, answers=False)
    return report
