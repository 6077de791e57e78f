"""A SQLite response cache around any backend, so a rerun or a resumed run repeats no model call."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from deltaprompts.errors import UserError
from deltaprompts.models.base import AnswerScore, Backend, Completion, Request, Sampling
from deltaprompts.models.wrappers import PartialResults, _Forwarding

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    identity TEXT NOT NULL, key TEXT NOT NULL, sampling TEXT NOT NULL, idx INTEGER NOT NULL,
    completion TEXT NOT NULL, PRIMARY KEY (identity, key, sampling, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scores (
    identity TEXT NOT NULL, key TEXT NOT NULL, answer TEXT NOT NULL,
    score TEXT NOT NULL, PRIMARY KEY (identity, key, answer)) WITHOUT ROWID;
"""


def default_cache_path() -> Path:
    """`$DELTAPROMPTS_CACHE`, else `$XDG_CACHE_HOME/deltaprompts/responses.sqlite` (~/.cache by default)."""
    if os.environ.get("DELTAPROMPTS_CACHE"):
        return Path(os.environ["DELTAPROMPTS_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deltaprompts" / "responses.sqlite"


def sampling_key(sampling: Sampling) -> str:
    """Every sampling parameter, as canonical JSON (all of them can change what comes back)."""
    return json.dumps(sampling.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class CachedBackend(_Forwarding):
    """Wraps a backend: each (identity, request key, sampling, sample index) is asked of the inner
    backend once; scores are cached by (identity, request key, answer).

    Missing samples are asked in chunks of `chunk` requests and each chunk is committed as soon as
    it returns; when the inner backend raises PartialResults, what it did obtain is committed before
    the error is passed on. `inner_calls`, `hits` and `misses` count the traffic.
    """

    def __init__(self, backend: Backend, path: Path | str | None = None, chunk: int = 64):
        self.backend, self.chunk = backend, max(1, chunk)
        self.identity = backend.identity
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.inner_calls = self.hits = self.misses = 0
        self.sample_hits = 0  # completions of `sample` answered from the cache (hits also counts `score`)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise UserError(f"response cache {self.path} cannot be opened as SQLite: {e}") from None

    def close(self) -> None:
        """Close the database (the wrapper cannot be used afterwards)."""
        self._db.close()

    def __enter__(self) -> CachedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ samples

    def _lookup(self, key: str, skey: str) -> dict[int, Completion]:
        rows = self._db.execute("SELECT idx, completion FROM samples WHERE identity=? AND key=? AND sampling=?",
                                (self.identity, key, skey)).fetchall()
        return {idx: Completion.model_validate_json(c) for idx, c in rows}

    def _store(self, keys: Sequence[str], skey: str, results: Sequence[Sequence[Completion]]) -> None:
        rows = [(self.identity, k, skey, c.index, c.model_dump_json()) for k, comps in zip(keys, results) for c in comps]
        with self._lock, self._db:  # one transaction per chunk
            self._db.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?)", rows)

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """Completions for the given indices: cached ones read back, only the missing ones asked.

        Raises PartialResults (whatever the inner backend raised, with every completion known so
        far, cached or new) when the inner backend fails part-way.
        """
        if len(indices) != len(requests):
            raise UserError(f"sample: {len(requests)} requests but {len(indices)} index lists")
        skey = sampling_key(sampling)
        known: dict[str, dict[int, Completion]] = {}
        wanted: dict[str, set[int]] = {}
        first: dict[str, Request] = {}
        for req, idx in zip(requests, indices):  # requests with equal keys are asked once
            k = req.key
            if k not in known:
                with self._lock:
                    known[k] = self._lookup(k, skey)
                first[k] = req
            wanted.setdefault(k, set()).update(idx)
        missing = {k: sorted(i for i in wanted[k] if i not in known[k]) for k in wanted}
        todo = [k for k in wanted if missing[k]]
        n_missing = sum(len(missing[k]) for k in todo)
        self.misses += n_missing
        self.hits += sum(len(idx) for idx in indices) - n_missing
        self.sample_hits += sum(len(idx) for idx in indices) - n_missing
        error: PartialResults | None = None
        for s in range(0, len(todo), self.chunk):
            keys = todo[s:s + self.chunk]
            self.inner_calls += 1
            try:
                results = self.backend.sample([first[k] for k in keys], sampling, [missing[k] for k in keys])
            except PartialResults as e:
                results, error = e.completions, e
            self._store(keys, skey, results)
            for k, comps in zip(keys, results):
                known[k].update({c.index: c for c in comps})
            if error is not None:
                break
        out = [[known[r.key][i] for i in idx if i in known[r.key]] for r, idx in zip(requests, indices)]
        if error is not None:
            done = sum(len(c) for c in out)
            raise PartialResults(f"{error} [{done} of {sum(len(i) for i in indices)} samples are cached in "
                                 f"{self.path}; a rerun asks only for the rest]", out)
        return out

    # ------------------------------------------------------------------ scores

    def _score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        if len(answers) != len(requests):
            raise UserError(f"score: {len(requests)} requests but {len(answers)} answers")
        found: dict[tuple[str, str], AnswerScore] = {}
        with self._lock:
            for req, ans in zip(requests, answers):
                row = self._db.execute("SELECT score FROM scores WHERE identity=? AND key=? AND answer=?",
                                       (self.identity, req.key, ans)).fetchone()
                if row:
                    found[(req.key, ans)] = AnswerScore.model_validate_json(row[0])
        todo: dict[tuple[str, str], tuple[Request, str]] = {}
        for req, ans in zip(requests, answers):
            if (req.key, ans) not in found:
                todo.setdefault((req.key, ans), (req, ans))
        self.hits += len(requests) - len(todo)
        self.misses += len(todo)
        pairs = list(todo.values())
        for s in range(0, len(pairs), self.chunk):
            part = pairs[s:s + self.chunk]
            self.inner_calls += 1
            scores = self.backend.score([r for r, _ in part], [a for _, a in part])  # type: ignore[attr-defined]
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
                                     [(self.identity, r.key, a, sc.model_dump_json()) for (r, a), sc in zip(part, scores)])
            found.update({(r.key, a): sc for (r, a), sc in zip(part, scores)})
        return [found[(r.key, a)] for r, a in zip(requests, answers)]

