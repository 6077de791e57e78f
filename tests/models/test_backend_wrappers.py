"""Retry policy, rate limit and retry-of-missing-samples wrappers, and spec option parsing."""

from __future__ import annotations

import asyncio

import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import Sampling, Scorer
from deltaprompts.models.wrappers import (Failure, PartialResults, RateLimitedBackend, RetriesExhausted, RetryingBackend,
                                          RetryPolicy, split_options)

from tests.models.test_response_cache import Counting, CountingScorer


def test_backoff_grows_is_capped_jittered_and_honours_retry_after():
    policy = RetryPolicy(base=1.0, max_delay=5.0, jitter=0.5, seed=0)
    delays = [policy.delay(k) for k in range(6)]
    assert all(0.5 * min(5.0, 2**k) <= d <= min(5.0, 2**k) for k, d in enumerate(delays))
    assert policy.delay(0, retry_after=3.0) == 3.0 and policy.delay(0, retry_after=100.0) == 5.0
    with pytest.raises(UserError, match="jitter"):
        RetryPolicy(jitter=2.0)


def test_policy_retries_retryable_failures_then_gives_up_with_a_message():
    policy = RetryPolicy(retries=3, base=0.0)
    outcomes = iter([ValueError("flaky"), ValueError("flaky"), "ok"])

    async def op():
        x = next(outcomes)
        if isinstance(x, Exception):
            raise x
        return x

    def classify(e):
        return Failure(True, "flaky") if isinstance(e, ValueError) else None

    assert asyncio.run(policy.run(op, classify, lambda f, n: "x")) == "ok"
    assert policy.stats.attempts == 3 and policy.stats.retries == 2 and policy.stats.errors == {"flaky": 2}

    async def always():
        raise ValueError("down")

    with pytest.raises(RetriesExhausted, match="gave up: flaky after 4"):
        asyncio.run(policy.run(always, classify, lambda f, n: f"gave up: {f} after {n}"))

    async def fatal():
        raise ValueError("bad request")

    with pytest.raises(RetriesExhausted, match="after 1"):
        asyncio.run(policy.run(fatal, lambda e: Failure(False, "fatal"), lambda f, n: f"after {n}"))

    async def bug():
        raise KeyError("a bug is not an operational failure")

    with pytest.raises(KeyError):
        asyncio.run(policy.run(bug, classify, lambda f, n: ""))


def test_rate_limit_spaces_requests(requests_):
    now, slept = [0.0], []

    def sleep(s):
        slept.append(round(s, 6))
        now[0] += s

    inner = Counting()
    limited = RateLimitedBackend(inner, per_second=2.0, chunk=1, clock=lambda: now[0], sleep=sleep)
    out = limited.sample(requests_, Sampling(), [[0], [0, 1], [0]])
    assert [len(r) for r in out] == [1, 2, 1] and len(inner.calls) == 3
    assert slept == [0.5, 0.5]  # three requests at 2/s: at t = 0, 0.5, 1.0
    assert limited.identity == inner.identity and not isinstance(limited, Scorer)
    scorer = RateLimitedBackend(CountingScorer(), per_second=1000.0, chunk=2)
    assert isinstance(scorer, Scorer) and len(scorer.score(requests_, ["a", "bb", "c"])) == 3


def test_retrying_backend_asks_again_only_for_the_missing_samples(requests_):
    class Flaky(Counting):
        def sample(self, requests, sampling, indices):
            self.fail_after = 3 if not self.calls else None
            return super().sample(requests, sampling, indices)

    inner = Flaky()
    out = RetryingBackend(inner, RetryPolicy(retries=2, base=0.0)).sample(requests_, Sampling(), [[0, 1]] * 3)
    assert [[c.index for c in r] for r in out] == [[0, 1]] * 3
    assert inner.calls[1] == [(requests_[1].id, [1]), (requests_[2].id, [0, 1])]
    with pytest.raises(PartialResults, match="gave up after 1 retries") as info:
        RetryingBackend(Counting(fail_after=0), RetryPolicy(retries=1, base=0.0)).sample(requests_, Sampling(), [[0]] * 3)
    assert info.value.obtained == 0


def test_split_options_types_values_and_names_the_allowed_ones():
    assert split_options("path?n=3&x=0.5&s=a", {"n": int, "x": float, "s": str}, "F") == ("path", {"n": 3, "x": 0.5, "s": "a"})
    assert split_options("path", {"n": int}, "F") == ("path", {})
    with pytest.raises(UserError, match=r"unknown option 'm'.*allowed: n \(form: F\)"):
        split_options("path?m=1", {"n": int}, "F")
    with pytest.raises(UserError, match="unknown option 'junk'"):
        split_options("path?junk", {"n": int}, "F")
