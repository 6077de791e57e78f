"""Shared helpers of the pipeline tests: small configs, planted backends, file checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deltaprompts.models.base import Completion
from deltaprompts.models.specs import load_backend
from deltaprompts.pipeline.config import parse_config
from deltaprompts.store import RunStore

TEACHER, STUDENT = "sim:teacher?skill=0.95&zero=0.3", "sim:student?skill=0.3&zero=0.3"


def small_config(out: Path, **sections: Any) -> Any:
    """A fast config: scene.shapes seeds over two knob cells, sim models, two rounds of 8 items."""
    data: dict[str, Any] = {
        "out": str(out), "rounds": 2, "random_seed": 3,
        "models": {"teacher": TEACHER, "student": STUDENT, "k": 8},  # k=4 is too few for the zero-delta test
        "seed": {"generate": {"families": ["scene.shapes"], "n": 24, "cells": 2,
                              "vary": {"scene.shapes:n_objects": [3, 8]}}},
        "mine": {"min_support": 3},
        "synthesize": {"budget": 8, "arms": 2, "chunk": 4},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "seed":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data)


class Routed:
    """A backend that answers an item with `bad` when `fails(item)` and with `good` otherwise (items
    found by request id in `run_dirs`, read lazily: rounds add runs)."""

    def __init__(self, good: str, bad: str, fails, runs: list[Path] | None = None):
        self.good, self.bad, self.fails = load_backend(good), load_backend(bad), fails
        self.identity = f"routed({self.good.identity}|{self.bad.identity})"
        self.runs = runs or []
        self._items: dict[str, Any] = {}

    def _item(self, request) -> Any:
        if request.id not in self._items:
            for run in [*self.runs, *(Path(p).parents[2] for p in request.images[:1])]:
                if (Path(run) / "manifest.json").exists():
                    self._items.update({it.id: it for it in RunStore(run).iter_items()})
        return self._items.get(request.id)

    def sample(self, requests, sampling, indices) -> list[list[Completion]]:
        out: list[list[Completion]] = [[] for _ in requests]
        for which in (True, False):
            pos = [i for i, r in enumerate(requests)
                   if (self._item(r) is not None and self.fails(self._item(r))) == which]
            if pos:
                backend = self.bad if which else self.good
                got = backend.sample([requests[i] for i in pos], sampling, [indices[i] for i in pos])
                for i, comps in zip(pos, got):
                    out[i] = comps
        return out


def jsonl_keys(path: Path, key) -> list:
    """The key of every line of a JSONL file."""
    return [key(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def assert_no_duplicates(root: Path) -> None:
    """No record appears twice in any JSONL file of a pipeline root (items, samples, deltas, teacher log)."""
    keys = {"samples-": lambda r: (r["item"], r["index"]), "deltas": lambda r: r["item"],
            "forced": lambda r: (r["item"], r["index"]), "shard-": lambda r: r["id"], "teacher": lambda r: r["image"]}
    for path in root.rglob("*.jsonl"):
        key = next((k for p, k in keys.items() if path.name.startswith(p)), None)
        assert key is not None, path
        ks = jsonl_keys(path, key)
        assert len(ks) == len(set(ks)), f"duplicates in {path}"
    ids = [it.id for it in RunStore(root).iter_items()]
    assert len(ids) == len(set(ids))
