"""`deltaprompts check`: rerun every item check over a run directory and count results by reason."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deltaprompts.records import Item
from deltaprompts.store import RunStore
from deltaprompts.verifiers.checks import CHECKS, CheckConfig, balance, check_item


@dataclass
class CheckReport:
    """Per check: how many items passed and failed, with the failing reasons and item ids."""

    items: int = 0
    passed: Counter = field(default_factory=Counter)
    failed: dict[str, Counter] = field(default_factory=dict)
    failing_ids: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, check: str, reason: str, item_id: str) -> None:
        self.failed.setdefault(check, Counter())[reason] += 1
        self.failing_ids.setdefault(check, []).append(item_id)

    @property
    def ill_posed(self) -> int:
        """Items failing at least one check."""
        return len({i for ids in self.failing_ids.values() for i in ids})


def check_run(run_dir: Path | str, cfg: CheckConfig | None = None, ratio: float = 1.1, min_family_size: int = 20) -> CheckReport:
    """Run every per-item check, the image hash check and the answer balance over a run."""
    store = RunStore(run_dir)
    store.read_manifest()
    report = CheckReport()
    items: list[Item] = []
    for item in store.iter_items():
        items.append(item)
        report.items += 1
        for name in CHECKS:
            reasons = check_item(item, cfg, [name])
            if reasons:
                report.fail(name, reasons[0], item.id)
            else:
                report.passed[name] += 1
        path = store.root / item.image.path
        if not path.exists():
            report.fail("image", "image_missing", item.id)
        elif hashlib.sha256(path.read_bytes()).hexdigest() != item.image.sha256:
            report.fail("image", "image_hash_mismatch", item.id)
        else:
            report.passed["image"] += 1
    dropped = balance(items, ratio, min_family_size)
    for item in items:
        if item.id in dropped:
            report.fail("balance", "answer_imbalance", item.id)
        else:
            report.passed["balance"] += 1
    return report
