"""The model backend protocol: batched sampling of n completions, optional answer scoring."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """One chat message; `content` parts are {"type": "text", "text": ...} or {"type": "image"}
    (the i-th image part refers to the i-th path of the request's `images`)."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: list[dict[str, Any]]


class Request(BaseModel):
    """One prompt: images (paths on disk) and chat messages. `key` is stable across runs."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Caller's id, e.g. the item id; not part of the cache key.")
    images: list[str] = Field(default_factory=list)
    image_sha256: list[str] = Field(default_factory=list, description="Content hashes of `images`, same order.")
    messages: list[Message]

    @property
    def key(self) -> str:
        """Hash of what the model sees: messages and image contents (not paths, not the id)."""
        payload = self.model_dump_json(include={"messages", "image_sha256"})
        return hashlib.sha256(payload.encode()).hexdigest()


class Sampling(BaseModel):
    """Sampling parameters. `top_k=0` keeps the full distribution (no renormalised log-probs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_new_tokens: int = Field(default=64, ge=1)
    seed: int = 0
    logprobs: bool = False


class Completion(BaseModel):
    """One sampled completion, with its sample index among a request's samples."""

    model_config = ConfigDict(extra="forbid")
    text: str
    index: int
    logprob: float | None = Field(default=None, description="Sum of token log-probs, if the backend gives them.")
    token_logprobs: list[float] | None = None
    finish_reason: str | None = None


class AnswerScore(BaseModel):
    """Teacher-forced log-probs of a given answer (prompt + answer + eos)."""

    model_config = ConfigDict(extra="forbid")
    tokens: list[str]
    token_logprobs: list[float]

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))


@runtime_checkable
class Backend(Protocol):
    """What every model backend implements. Caching, retries and rate limits are wrappers."""

    identity: str  # names the model and everything that changes its outputs (weights, revision, prompt format)

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """For each request, the completions with the given sample indices (index i of a request is
        reproducible: it depends on (sampling.seed, request.key, i) where the backend allows)."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Backends that can score given answers token by token."""

    def score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        """Teacher-forced per-token log-probs of each answer after its request's prompt."""
        ...
