"""A SIMULATED model backend (`sim:NAME[?options]`): answers drawn from seeded per-item mixtures.

No model runs here. Each item (request key) gets an answer mixture over a few classes: the
correct answer and distractors, plus an unparseable output. On a share `zero` of items every
simulated model uses the same shared mixture (zero-delta items); on the rest a model moves away
from it by an item-specific amount, leaning towards the correct answer by its `skill`. It exists
for tests and benchmarks of the divergence stages; its identity and every output text say
"simulated".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from deltaprompts.errors import UserError
from deltaprompts.models.base import AnswerScore, Completion, Request, Sampling
from deltaprompts.models.specs import scheme
from deltaprompts.rng import stable_digest

#: Options of a `sim:` spec: name -> (type, default, meaning).
OPTIONS: dict[str, tuple[type, Any, str]] = {
    "seed": (int, 0, "world seed: which items are shared and their mixtures; give teacher and student the same"),
    "zero": (float, 0.69, "share of items on which all simulated models share one mixture (zero-delta), 0..1"),
    "skill": (float, 0.5, "how far this model's own mixture leans to the correct answer, 0..1"),
    "classes": (int, 4, "answer classes per item: the correct answer and distractors, 2..26"),
    "alpha": (float, 0.1, "Dirichlet concentration of mixtures; small means peaked, > 0"),
    "garble": (float, 0.01, "probability of an unparseable output, 0..1"),
    "run": (str, "", "run directory whose items give the answers (default: found from the image path)"),
    "score": (int, 1, "1: also score answers (teacher-forced log-probs); 0: sampling only"),
}
_RANGES = {"zero": (0.0, 1.0), "skill": (0.0, 1.0), "classes": (2, 26), "alpha": (1e-6, 1e6), "garble": (0.0, 1.0),
           "score": (0, 1)}
#: Log-prob given to an answer that is none of an item's simulated classes.
UNKNOWN_LOGPROB = math.log(1e-6)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _digest(*parts: object) -> bytes:
    return stable_digest("|".join(map(str, parts)), 16)


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(_digest(*parts), "little"))


def _uniform(*parts: object) -> float:
    """A uniform in [0, 1) fixed by `parts` (cheaper than a Generator per sample)."""
    return int.from_bytes(_digest(*parts)[:7], "little") / 2.0**56


def _parse(rest: str) -> tuple[str, dict[str, Any]]:
    name, _, query = rest.partition("?")
    if not name or not re.fullmatch(r"[\w.\-]+", name):
        raise UserError(f"sim spec 'sim:{rest}': NAME must be letters, digits, '.', '-' or '_'; "
                        "form: sim:NAME[?option=value&...]")
    opts = {k: v[1] for k, v in OPTIONS.items()}
    for pair in filter(None, query.split("&")):
        key, eq, raw = pair.partition("=")
        if key not in OPTIONS or not eq:
            raise UserError(f"sim spec option {pair!r} is not valid; options (name=value): "
                            + "; ".join(f"{k} ({t.__name__}, default {d!r}): {h}" for k, (t, d, h) in OPTIONS.items()))
        kind = OPTIONS[key][0]
        try:
            value = kind(raw)
        except ValueError:
            raise UserError(f"sim spec option {key}={raw!r} must be a {kind.__name__}") from None
        lo, hi = _RANGES.get(key, (-math.inf, math.inf))
        if kind is not str and not lo <= value <= hi:
            raise UserError(f"sim spec option {key}={raw!r} must be in [{lo}, {hi}]")
        opts[key] = value
    return name, opts


class _Answers:
    """How an item's classes read as text: class 0 is the item's answer, 1.. distractors."""

    def __init__(self, answer: str, answer_type: str, options: dict[str, str] | None, tol: dict[str, float]):
        self.answer, self.answer_type, self.options, self.tol = answer, answer_type, options, tol

    def text(self, j: int) -> str:
        a, t = self.answer, self.answer_type
        if j == 0:
            return a
        if t == "yes_no":
            return "no" if a.strip().lower() in ("yes", "true") else "yes"
        if t == "choice" and self.options:
            others = [x for x in sorted(self.options) if x != a.strip().upper()]
            return others[(j - 1) % len(others)] if others else a
        if t in ("list", "set"):
            parts = [p.strip() for p in a.split("|") if p.strip()]
            if len(parts) > 1:
                return ", ".join(p for i, p in enumerate(parts) if i != (j - 1) % len(parts))
            return ", ".join([*parts, f"other {j}"])
        m = _NUMBER.search(a)
        if m is not None:
            v = float(m.group())
            step = max(1.0, round(abs(v) * 0.2)) * j
            decimals = len(m.group().partition(".")[2])
            new = f"{v + step:.{decimals}f}"
            return a[: m.start()] + new + a[m.end():]
        return f"other answer {j}"


@lru_cache(maxsize=16)
def _run_answers(run_dir: str) -> dict[str, _Answers]:
    from deltaprompts.store import RunStore
    from deltaprompts.verifiers.scoring import _item_arguments

    out = {}
    for item in RunStore(run_dir).iter_items():
        answer, answer_type, options, tol = _item_arguments(item)
        out[item.id] = _Answers(answer, answer_type, dict(options) if options else None, tol)
    return out


class SimulatedBackend:
    """`sim:NAME` — a SIMULATION of a model: see the module docstring. Counts its completions."""

    simulated = True

    def __init__(self, name: str, **opts: Any):
        self.name = name
        self.opts = {k: v[1] for k, v in OPTIONS.items()} | opts
        shown = "&".join(f"{k}={self.opts[k]}" for k in sorted(self.opts) if k not in ("run", "score"))
        self.identity = f"simulated:{name}?{shown}"
        self.completions = 0  # every completion this object produced (for call-count benchmarks)

    # ---------------------------------------------------------------- the item's world

    def answers(self, request: Request) -> _Answers:
        """The item behind a request (by its id, in the run its image lies in, or `run=`); an item
        that cannot be found gets abstract answers 'answer 0..' of type string."""
        from deltaprompts.store import RunStore

        run = self.opts["run"] or next((str(p) for i in request.images[:1] for p in Path(i).parents
                                        if RunStore(p).is_run()), "")
        if run:
            found = _run_answers(str(Path(run).resolve())).get(request.id)
            if found is not None:
                return found
        return _Answers("answer 0", "string", None, {})

    def mixture(self, request: Request) -> np.ndarray:
        """This model's probabilities over [class 0 (correct), distractors..., unparseable]."""
        o = self.opts
        k = o["classes"]
        key = request.key
        world = _rng("world", o["seed"], key)
        shared_item = world.random() < o["zero"]
        p = world.dirichlet(np.full(k, o["alpha"]))
        if not shared_item:
            own = _rng("model", o["seed"], key, self.name)
            weight = own.random()
            lean = np.eye(k)[0] * o["skill"] + (1 - o["skill"]) * own.dirichlet(np.full(k, o["alpha"]))
            p = (1 - weight) * p + weight * lean
        return np.append(p * (1 - o["garble"]), o["garble"])

    def _say(self, answers: _Answers, j: int, k: int) -> str:
        if j == k:
            return f"[simulated {self.name}] <think>I cannot read this"  # unclosed: no answer can be found
        return f"[simulated {self.name}] The answer is {answers.text(j)}"

    # ---------------------------------------------------------------- protocol

    def sample(self, requests: Sequence[Request], sampling: Sampling,
               indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """For each request, the completions with the given indices. Sample i draws its uniform from
        (sampling.seed, request key, i) only, as a shared seed correlates real models' samples."""
        if len(indices) != len(requests):
            raise UserError(f"sample: {len(requests)} requests but {len(indices)} index lists")
        out = []
        for req, idx in zip(requests, indices):
            p = self.mixture(req)
            if sampling.temperature == 0:
                q = np.eye(len(p))[int(np.argmax(p))]
            else:
                q = np.exp(np.log(np.maximum(p, 1e-300)) / sampling.temperature)
                q /= q.sum()
            cdf = np.cumsum(q)
            answers = self.answers(req)
            key = req.key
            row = []
            for i in idx:
                u = _uniform("sample", sampling.seed, key, i)
                j = min(int(np.searchsorted(cdf, u, side="right")), len(p) - 1)
                row.append(Completion(text=self._say(answers, j, len(p) - 1), index=i, logprob=float(np.log(q[j])),
                                      finish_reason="stop"))
            self.completions += len(row)
            out.append(row)
        return out

    def classes_of(self, request: Request) -> list[str]:
        """The answer class of each simulated class's text (UNPARSEABLE for the unparseable one)."""
        from deltaprompts.verifiers import answer_class

        a = self.answers(request)
        k = self.opts["classes"]
        return [answer_class(self._say(a, j, k), a.answer_type, a.options, **a.tol) for j in range(k + 1)]


class SimulatedScorer(SimulatedBackend):
    """A SIMULATED backend that also scores answers: the log-prob of an answer is the log of its
    class's probability in this model's mixture (one pseudo-token), UNKNOWN_LOGPROB if none."""

    def score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        """Teacher-forced log-probs of each answer after its request (simulated, one pseudo-token)."""
        from deltaprompts.verifiers import answer_class

        if len(requests) != len(answers):
            raise UserError(f"score: {len(requests)} requests but {len(answers)} answers")
        out = []
        for req, text in zip(requests, answers):
            p = self.mixture(req)
            a = self.answers(req)
            cls = answer_class(text, a.answer_type, a.options, **a.tol)
            mass = sum(float(pj) for pj, c in zip(p, self.classes_of(req)) if c == cls)
            lp = math.log(mass) if mass > 0 else UNKNOWN_LOGPROB
            out.append(AnswerScore(tokens=[f"<simulated class {cls}>"], token_logprobs=[lp]))
        return out


@scheme("sim", "sim:NAME[?options]")
def load_simulated(rest: str) -> SimulatedBackend:
    """Build a simulated backend from `NAME[?seed=..&zero=..&skill=..&classes=..&alpha=..&garble=..&run=..&score=..]`;
    raises UserError naming a bad option and listing the allowed ones."""
    name, opts = _parse(rest)
    return (SimulatedScorer if opts["score"] else SimulatedBackend)(name, **opts)

