"""The review decisions of a run (`RUN/review.jsonl`): written by the review page
(deltaprompts.review), read by screen, split and export, which leave rejected items out.

One line per decision, appended flushed and fsynced (store.JsonlLog), never rewritten: a line is
keyed by (item, seq), seq counting the lines before it, so every decision is kept and the one with
the highest seq (the last) is the item's decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from deltaprompts.store import JsonlLog

REVIEW_FILE = "review.jsonl"
MAX_NOTE = 2000


class Decision(BaseModel):
    """One review decision, a line of review.jsonl."""

    item: str
    decision: Literal["accept", "reject"]
    note: str = Field("", max_length=MAX_NOTE)
    seq: int = Field(ge=0, description="Lines written before this one: the highest seq per item wins.")
    at: str = ""


def open_log(run_dir: Path, *, writer: bool = False) -> JsonlLog:
    """The decisions file of a run (a writer repairs a torn last line; a reader leaves it)."""
    return JsonlLog(Path(run_dir) / REVIEW_FILE, Decision, key=lambda d: (d.item, d.seq), repair=writer)


def latest(run_dir: Path | str) -> dict[str, Decision]:
    """The last decision per item id ({} when the run was never reviewed)."""
    out: dict[str, Decision] = {}
    for d in sorted(open_log(Path(run_dir)).records.values(), key=lambda d: d.seq):
        out[d.item] = d
    return out


def rejected(run_dir: Path | str) -> set[str]:
    """The ids of the items whose latest review decision is reject."""
    return {i for i, d in latest(run_dir).items() if d.decision == "reject"}
