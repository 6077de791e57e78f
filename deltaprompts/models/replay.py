"""Replay backend `replay:FILE.jsonl`: completions made elsewhere, read from a file; and the export of
the requests such a remote job must answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deltaprompts.errors import UserError
from deltaprompts.models.base import Completion, Request, Sampling
from deltaprompts.models.specs import scheme
from deltaprompts.models.wrappers import PartialResults
from deltaprompts.store import atomic_write

FORM = "replay:FILE.jsonl"


class ReplayLine(BaseModel):
    """One completion in a replay file. `key` (Request.key) or `id` (the item id) names the request;
    a line with `sampling` answers only requests sampled with exactly those parameters."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = None
    id: str | None = None
    index: int = Field(ge=0)
    text: str
    logprob: float | None = None
    token_logprobs: list[float] | None = None
    finish_reason: str | None = None
    sampling: Sampling | None = None
    model: str | None = Field(default=None, description="Informational: the model that answered.")

    @model_validator(mode="after")
    def _named(self) -> ReplayLine:
        if self.key is None and self.id is None:
            raise ValueError("a line needs 'key' (the request key) or 'id' (the item id)")
        return self


def _sampling_json(s: Sampling | None) -> str:
    return "" if s is None else s.model_dump_json()


class ReplayBackend:
    """Answers `sample` from a JSONL file of completions (see ReplayLine); lookups try the request
    key first, then the request id. Sampling parameters are not applied, only matched when a line
    names them. Raises PartialResults naming the file and the count when answers are missing."""

    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise UserError(f"replay file {self.path} does not exist (form: {FORM})")
        data = self.path.read_bytes()
        self.identity = f"replay:{self.path}#{hashlib.sha256(data).hexdigest()[:12]}"
        self._lines: dict[tuple[str, str, int, str], ReplayLine] = {}
        for n, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = ReplayLine.model_validate_json(raw)
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(x) for x in err["loc"]) or "line"
                raise UserError(f"{self.path}:{n}: {where}: {err['msg']}") from None
            for field, name in (("key", line.key), ("id", line.id)):
                if name is None:
                    continue
                slot = (field, name, line.index, _sampling_json(line.sampling))
                old = self._lines.get(slot)
                if old is not None and old.text != line.text:
                    raise UserError(f"{self.path}:{n}: a second, different answer for {field}={name} index {line.index}")
                self._lines[slot] = line

    def _find(self, request: Request, index: int, sampling: Sampling) -> ReplayLine | None:
        for s in (sampling.model_dump_json(), ""):
            for field, name in (("key", request.key), ("id", request.id)):
                line = self._lines.get((field, name, index, s))
                if line is not None:
                    return line
        return None

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """The file's completions for each (request, index); see the class docstring."""
        out: list[list[Completion]] = []
        missing: list[tuple[Request, int]] = []
        for req, idx in zip(requests, indices):
            got = []
            for i in idx:
                line = self._find(req, i, sampling)
                if line is None:
                    missing.append((req, i))
                    continue
                lp = line.logprob if line.logprob is not None or not line.token_logprobs else sum(line.token_logprobs)
                got.append(Completion(text=line.text, index=i, logprob=lp, token_logprobs=line.token_logprobs,
                                      finish_reason=line.finish_reason))
            out.append(got)
        if missing:
            req, i = missing[0]
            n_req = len({r.key for r, _ in missing})
            raise PartialResults(f"replay file {self.path} has no answer for {len(missing)} of "
                                 f"{sum(len(i) for i in indices)} wanted samples ({n_req} requests), e.g. "
                                 f"id={req.id} key={req.key[:16]}... index {i}", out)
        return out


def export_requests(requests: Sequence[Request], sampling: Sampling, k: int | Sequence[Sequence[int]],
                    path: Path | str) -> int:
    """Write the requests a remote job must answer, one JSON line each: key, id, messages, images
    (absolute paths), image_sha256, sampling and the sample indices wanted (`range(k)`, or one index
    list per request). Written atomically; returns the number of lines."""
    if isinstance(k, int):
        if k < 1:
            raise UserError(f"export_requests: k must be >= 1, got {k}")
        per: Sequence[Sequence[int]] = [list(range(k))] * len(requests)
    else:
        per = k
        if len(per) != len(requests):
            raise UserError(f"export_requests: {len(requests)} requests but {len(per)} index lists")
    lines = []
    for req, idx in zip(requests, per):
        row: dict[str, Any] = {"key": req.key, "id": req.id, "messages": [m.model_dump() for m in req.messages],
                               "images": [str(Path(p).resolve()) for p in req.images], "image_sha256": req.image_sha256,
                               "sampling": sampling.model_dump(), "indices": list(idx)}
        lines.append(json.dumps(row, sort_keys=True))
    atomic_write(Path(path), "".join(line + "\n" for line in lines))
    return len(lines)


@scheme("replay", FORM)
def _from_spec(rest: str) -> ReplayBackend:
    return ReplayBackend(rest)
