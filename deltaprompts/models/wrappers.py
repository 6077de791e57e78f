"""Wrappers around any backend (rate limit, retry of missing samples) and the shared retry policy."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import AnswerScore, Backend, Completion, Request, Sampling, Scorer

T = TypeVar("T")


class PartialResults(DeltaError):
    """A backend failed part-way: `completions[r]` holds the completions it did obtain for request r
    (a subset of the indices asked for). Wrappers (the cache) keep them before passing the error on."""

    def __init__(self, message: str, completions: list[list[Completion]]):
        super().__init__(message)
        self.completions = completions

    @property
    def obtained(self) -> int:
        return sum(len(c) for c in self.completions)


def split_options(rest: str, allowed: dict[str, Callable[[str], Any]], form: str) -> tuple[str, dict[str, Any]]:
    """Split `main?key=value&...` into the main part and typed options.

    `allowed` maps each option name to a converter (int, float, str). Raises UserError naming the
    bad option or value, the options allowed and the accepted form.
    """
    main, _, query = rest.partition("?")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in allowed:
            raise UserError(f"unknown option {name!r} in model spec {rest!r}; allowed: "
                            f"{', '.join(sorted(allowed))} (form: {form})")
        try:
            options[name] = allowed[name](value)
        except ValueError:
            raise UserError(f"option {name}={value!r} in model spec {rest!r} is not a valid "
                            f"{getattr(allowed[name], '__name__', 'value')} (form: {form})") from None
    return main, options


# --------------------------------------------------------------------------- retry policy

@dataclass
class RetryStats:
    """What a retry policy saw: attempts made, retries, and errors by reason."""

    attempts: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)


@dataclass
class Failure:
    """How a caller classifies an exception: retry it or not, a short reason tag (counted in
    RetryStats.errors), a server-given delay, and detail for the message."""

    retryable: bool
    reason: str
    retry_after: float | None = None
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


class RetriesExhausted(DeltaError):
    """An operation failed for good: after its last retry, or on an error not worth retrying."""

    def __init__(self, message: str, failure: Failure, attempts: int):
        super().__init__(message)
        self.failure, self.attempts = failure, attempts


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter: delay k (k = 0, 1, ...) is `base * 2**k`, capped at
    `max_delay`, times a random factor in [1 - jitter, 1]; a server's Retry-After (capped at
    `max_delay`) is used when it asks for longer. At most `retries` retries per operation."""

    retries: int = 6
    base: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    seed: int | None = None
    stats: RetryStats = field(default_factory=RetryStats)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise UserError(f"retry policy needs retries >= 0, base >= 0, max_delay >= 0, 0 <= jitter <= 1; got {self}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        d = min(self.max_delay, self.base * 2**retry)
        with self._lock:
            d *= 1 - self.jitter * self._rng.random()
        if retry_after is not None:
            d = max(d, min(retry_after, self.max_delay))
        return d

    def _note(self, failure: Failure | None, retrying: bool) -> None:
        with self._lock:
            self.stats.attempts += 1
            if failure is not None:
                self.stats.errors[failure.reason] += 1
                self.stats.retries += retrying

    async def run(self, op: Callable[[], Awaitable[T]], classify: Callable[[BaseException], Failure | None],
                  describe: Callable[[Failure, int], str], sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> T:
        """Await `op()` until it succeeds, retrying the exceptions `classify` calls retryable.

        `classify` returns None for exceptions that are not operational failures (they propagate
        as they are). Raises RetriesExhausted with the message `describe(failure, attempts)`.
        """
        for retry in range(self.retries + 1):
            try:
                result = await op()
            except Exception as e:  # classified below; unknown kinds propagate unchanged
                failure = classify(e)
                if failure is None:
                    raise
                last = retry == self.retries or not failure.retryable
                self._note(failure, retrying=not last)
                if last:
                    raise RetriesExhausted(describe(failure, retry + 1), failure, retry + 1) from None
                await sleep(self.delay(retry, failure.retry_after))
                continue
            self._note(None, retrying=False)
            return result
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncRateLimiter:
    """At most `per_second` acquisitions per second (evenly spaced), shared by concurrent tasks."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic):
        if per_second <= 0:
            raise UserError(f"rate limit must be > 0 requests per second, got {per_second}")
        self.interval, self.clock, self._next = 1.0 / per_second, clock, 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = self.clock()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


# --------------------------------------------------------------------------- backend wrappers

class _Forwarding:
    """Base of the wrappers: a wrapper has `score` only when its inner backend can score, so that
    `isinstance(wrapper, Scorer)` tells the truth. (A class attribute, not `__getattr__`: Python
    3.12 checks runtime protocols with `inspect.getattr_static`.)"""

    backend: Backend
    _variants: dict[type, type] = {}

    @property
    def concurrent(self) -> bool:
        """Whether `sample()` may be called from several threads at once (as the inner backend says)."""
        return bool(getattr(self.backend, "concurrent", False))

    def __new__(cls, backend: Backend, *args: Any, **kwargs: Any) -> Any:
        if isinstance(backend, Scorer) and "score" not in dir(cls):
            if cls not in _Forwarding._variants:
                _Forwarding._variants[cls] = type(cls.__name__, (cls,), {"score": cls._score, "__module__": cls.__module__,
                                                                         "__doc__": cls.__doc__})
            cls = _Forwarding._variants[cls]
        return super().__new__(cls)

    def _score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        return self.backend.score(requests, answers)  # type: ignore[attr-defined]


class RateLimitedBackend(_Forwarding):
    """Passes at most `per_second` requests per second to `backend`, in chunks of `chunk` requests
    (a chunk of c requests waits c / per_second seconds after the previous one started)."""

    def __init__(self, backend: Backend, per_second: float, chunk: int = 1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if per_second <= 0 or chunk < 1:
            raise UserError(f"RateLimitedBackend needs per_second > 0 and chunk >= 1, got {per_second}, {chunk}")
        self.backend, self.per_second, self.chunk = backend, per_second, chunk
        self.identity = backend.identity
        self._clock, self._sleep, self._next = clock, sleep, 0.0

    def _wait(self, n: int) -> None:
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
        self._next = max(now, self._next) + n / self.per_second

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for s in range(0, len(requests), self.chunk):
            self._wait(len(requests[s:s + self.chunk]))
            out += self.backend.sample(requests[s:s + self.chunk], sampling, indices[s:s + self.chunk])
        return out

    def _score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        out: list[AnswerScore] = []
        for s in range(0, len(requests), self.chunk):
            self._wait(len(requests[s:s + self.chunk]))
            out += self.backend.score(requests[s:s + self.chunk], answers[s:s + self.chunk])  # type: ignore[attr-defined]
        return out


class RetryingBackend(_Forwarding):
    """Asks `backend` again, after a backoff, for the samples a PartialResults error says are
    missing, up to `policy.retries` times; then raises PartialResults with everything obtained."""

    def __init__(self, backend: Backend, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep):
        self.backend, self.policy, self._sleep = backend, policy or RetryPolicy(), sleep
        self.identity = backend.identity

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        got: list[dict[int, Completion]] = [{} for _ in requests]
        todo = list(range(len(requests)))
        for retry in range(self.policy.retries + 1):
            want = [[i for i in indices[r] if i not in got[r]] for r in todo]
            try:
                results = self.backend.sample([requests[r] for r in todo], sampling, want)
                error = None
            except PartialResults as e:
                results, error = e.completions, e
            for r, comps in zip(todo, results):
                got[r].update({c.index: c for c in comps})
            todo = [r for r in todo if any(i not in got[r] for i in indices[r])]
            self.policy._note(Failure(True, "partial") if error else None, retrying=bool(todo))
            if error is None or not todo:
                break
            if retry < self.policy.retries:
                self._sleep(self.policy.delay(retry))
        completions = [[got[r][i] for i in indices[r] if i in got[r]] for r in range(len(requests))]
        if todo:
            raise PartialResults(f"{error} (gave up after {self.policy.retries} retries)", completions)
        return completions
