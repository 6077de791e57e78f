"""Thompson sampling over arms (failure patterns, or plain families): Beta posteriors of the high-Δ yield.

An arm's prior is Beta(1 + s·rate, 1 + s·(1 - rate)) from its pattern's mined rate (s =
`prior_strength` pseudo-items; Beta(1, 1) without a pattern). After each round its posterior
adds the items it kept and those it did not. A round's budget is dealt out in chunks: for each
chunk every arm draws a yield from its posterior and the highest draw takes the chunk. The draws
are seeded by (seed, round), and posteriors are recomputed from the recorded rounds, so a resumed
run allocates exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from deltaprompts.errors import UserError
from deltaprompts.pipeline.mine import KnobCondition, MineReport
from deltaprompts.rng import derive_seed


class Arm(BaseModel):
    """What one arm renders: a family, optionally a question family to prefer and knob constraints."""

    id: str
    family: str
    question_family: str | None = None
    knobs: dict[str, KnobCondition] = Field(default_factory=dict)
    pattern: str | None = Field(default=None, description="The pattern id the arm came from.")
    text: str | None = Field(default=None, description="What the teacher is told about the weakness.")
    prior: tuple[float, float] = (1.0, 1.0)


def make_arms(report: MineReport | None, n_arms: int, prior_strength: float, families: Sequence[str] = (),
              renderable: Sequence[str] = ()) -> list[Arm]:
    """Arms from the top `n_arms` patterns whose family can be rendered, then one per extra family.
    Raises UserError when there is no arm at all."""
    arms: list[Arm] = []
    if report is not None:
        for p in report.patterns:
            if len(arms) == n_arms:
                break
            if p.family not in renderable:
                continue
            a, b = 1 + prior_strength * p.rate, 1 + prior_strength * (1 - p.rate)
            arms.append(Arm(id=p.id, family=p.family, question_family=p.question_family, knobs=p.knobs, pattern=p.id,
                            text=p.description or p.summary, prior=(round(a, 6), round(b, 6))))
    for fam in families:
        arms.append(Arm(id=f"family:{fam}", family=fam))
    if not arms:
        raise UserError("no arm to spend the synthesis budget on: no mined pattern has a family that can be rendered "
                        "(lower mine.min_support, or list synthesize.families)")
    return arms


def posteriors(arms: Sequence[Arm], history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Beta(alpha, beta) per arm: its prior plus, over the rounds in `history` (rounds.json rows with
    an `arms` mapping of {generated, screened, kept}), the kept and not-kept screened items."""
    post = {a.id: a.prior for a in arms}
    for row in history:
        for arm_id, c in (row.get("arms") or {}).items():
            if arm_id in post:
                a, b = post[arm_id]
                kept, screened = int(c.get("kept", 0)), int(c.get("screened", 0))
                post[arm_id] = (a + kept, b + max(screened - kept, 0))
    return post


def allocate(post: Mapping[str, tuple[float, float]], budget: int, chunk: int, seed: int,
             round_: int) -> dict[str, int]:
    """Items per arm for one round: ceil(budget / chunk) Thompson draws, each giving a chunk to the
    arm with the highest sampled yield (seeded by (seed, round)). Raises UserError for no arms."""
    if not post:
        raise UserError("allocate: no arms")
    if budget < 1 or chunk < 1:
        raise UserError(f"allocate: budget={budget} and chunk={chunk} must be at least 1")
    ids = sorted(post)
    alpha = np.array([post[i][0] for i in ids])
    beta = np.array([post[i][1] for i in ids])
    rng = np.random.default_rng(derive_seed(seed, "bandit", round_))
    out = dict.fromkeys(ids, 0)
    for j in range(math.ceil(budget / chunk)):
        size = min(chunk, budget - j * chunk)
        out[ids[int(np.argmax(rng.beta(alpha, beta)))]] += size
    return out


def state(arms: Sequence[Arm], history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The bandit as plain data (bandit.json): arms, their posteriors and the posterior mean yields."""
    post = posteriors(arms, history)
    return {"arms": [{**a.model_dump(mode="json"), "posterior": list(post[a.id]),
                      "mean_yield": post[a.id][0] / sum(post[a.id])} for a in arms],
            "rounds": [int(r["round"]) for r in history]}
