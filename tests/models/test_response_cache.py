"""The SQLite response cache: no repeated inner call, only missing indices asked, partial results kept."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import AnswerScore, Backend, Completion, Request, Sampling, Scorer
from deltaprompts.models.cache import CachedBackend, default_cache_path
from deltaprompts.models.wrappers import PartialResults


class Counting:
    """A deterministic fake backend that records what it is asked; `fail_after` makes it raise
    PartialResults after that many completions of one call."""

    identity = "counting:v1"

    def __init__(self, fail_after: int | None = None):
        self.calls: list[list[tuple[str, list[int]]]] = []
        self.fail_after = fail_after

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        self.calls.append([(r.id, list(i)) for r, i in zip(requests, indices)])
        out, n = [], 0
        for r, idx in zip(requests, indices):
            row = []
            for i in idx:
                if self.fail_after is not None and n >= self.fail_after:
                    out.append(row)
                    out += [[] for _ in requests[len(out):]]
                    raise PartialResults("counting backend broke", out)
                row.append(Completion(text=f"{r.id}/{sampling.seed}/{i}", index=i, logprob=-float(i)))
                n += 1
            out.append(row)
        return out


class CountingScorer(Counting):
    def score(self, requests: Sequence[Request], answers: Sequence[str]) -> list[AnswerScore]:
        self.calls.append([(r.id, [len(a)]) for r, a in zip(requests, answers)])
        return [AnswerScore(tokens=list(a), token_logprobs=[-1.0] * len(a)) for a in answers]


@pytest.fixture
def reqs(requests_):
    return requests_


def asked(backend: Counting) -> list[tuple[str, list[int]]]:
    return [pair for call in backend.calls for pair in call]


def test_a_second_run_makes_no_inner_call(reqs, tmp_path):
    inner = Counting()
    first = CachedBackend(inner, tmp_path / "c.sqlite").sample(reqs, Sampling(), [[0, 1, 2, 3]] * 3)
    assert len(inner.calls) == 1
    second = CachedBackend(inner, tmp_path / "c.sqlite")  # a new process would open the file like this
    assert second.sample(reqs, Sampling(), [[0, 1, 2, 3]] * 3) == first
    assert len(inner.calls) == 1 and second.inner_calls == 0 and second.hits == 12


def test_k8_after_k4_asks_only_for_indices_4_to_7(reqs, tmp_path):
    inner = Counting()
    cached = CachedBackend(inner, tmp_path / "c.sqlite")
    cached.sample(reqs, Sampling(), [list(range(4))] * 3)
    out = cached.sample(reqs, Sampling(), [list(range(8))] * 3)
    assert inner.calls[1] == [(r.id, [4, 5, 6, 7]) for r in reqs]
    assert [[c.index for c in row] for row in out] == [list(range(8))] * 3
    assert out[0][5].text == f"{reqs[0].id}/0/5"


def test_entries_are_keyed_by_sampling_identity_and_request(reqs, tmp_path):
    inner = Counting()
    cached = CachedBackend(inner, tmp_path / "c.sqlite")
    cached.sample(reqs[:1], Sampling(), [[0]])
    cached.sample(reqs[:1], Sampling(seed=1), [[0]])
    cached.sample(reqs[:1], Sampling(temperature=0.7), [[0]])
    cached.sample(reqs[:1], Sampling(logprobs=True), [[0]])
    cached.sample(reqs[1:2], Sampling(), [[0]])
    other = Counting()
    other.identity = "counting:v2"
    CachedBackend(other, tmp_path / "c.sqlite").sample(reqs[:1], Sampling(), [[0]])
    assert len(inner.calls) == 5 and len(other.calls) == 1


def test_duplicate_requests_are_asked_once(reqs, tmp_path):
    inner = Counting()
    out = CachedBackend(inner, tmp_path / "c.sqlite").sample([reqs[0], reqs[0]], Sampling(), [[0, 1], [1, 2]])
    assert asked(inner) == [(reqs[0].id, [0, 1, 2])]
    assert [[c.index for c in row] for row in out] == [[0, 1], [1, 2]]


def test_partial_results_are_cached_before_the_error_is_passed_on(reqs, tmp_path):
    broken = Counting(fail_after=5)
    cached = CachedBackend(broken, tmp_path / "c.sqlite")
    with pytest.raises(PartialResults, match=r"counting backend broke \[5 of 12 samples are cached in .*c.sqlite") as info:
        cached.sample(reqs, Sampling(), [[0, 1, 2, 3]] * 3)
    assert [len(row) for row in info.value.completions] == [4, 1, 0]
    healed = Counting()
    out = CachedBackend(healed, tmp_path / "c.sqlite").sample(reqs, Sampling(), [[0, 1, 2, 3]] * 3)
    assert asked(healed) == [(reqs[1].id, [1, 2, 3]), (reqs[2].id, [0, 1, 2, 3])]
    assert [len(row) for row in out] == [4, 4, 4]


def test_each_chunk_is_committed_as_it_returns(reqs, tmp_path):
    inner = Counting()
    cached = CachedBackend(inner, tmp_path / "c.sqlite", chunk=1)
    cached.sample(reqs, Sampling(), [[0, 1]] * 3)
    assert len(inner.calls) == 3
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("SELECT count(*) FROM samples").fetchone()[0] == 6
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_scores_are_cached_by_request_and_answer(reqs, tmp_path):
    inner = CountingScorer()
    cached = CachedBackend(inner, tmp_path / "c.sqlite")
    assert isinstance(cached, Scorer)
    first = cached.score(reqs[:2], ["3", "red"])
    again = cached.score([reqs[1], reqs[0], reqs[0]], ["red", "3", "4"])
    assert again[:2] == first[::-1] and again[2].tokens == ["4"]
    assert [len(c) for c in inner.calls] == [2, 1]


def test_a_wrapper_is_a_scorer_only_when_its_backend_is(tmp_path):
    cached = CachedBackend(Counting(), tmp_path / "c.sqlite")
    assert isinstance(cached, Backend) and not isinstance(cached, Scorer)
    with pytest.raises(AttributeError):
        cached.score  # noqa: B018


def test_cached_hf_backend_replays_its_samples_and_scores(hf_backends, requests_, tmp_path):
    pytest.importorskip("transformers")
    sampling = Sampling(max_new_tokens=4, seed=2, logprobs=True)
    direct = hf_backends["llava"].sample(requests_, sampling, [[0, 1, 2]] * 3)
    cached = CachedBackend(hf_backends["llava"], tmp_path / "c.sqlite")
    two = cached.sample(requests_, sampling, [[0, 1]] * 3)
    three = cached.sample(requests_, sampling, [[0, 1, 2]] * 3)
    assert [row[:2] for row in three] == two  # read back from the cache exactly
    assert [[c.text for c in row] for row in three] == [[c.text for c in row] for row in direct]
    assert [c.logprob for row in three for c in row] == pytest.approx([c.logprob for row in direct for c in row], abs=1e-4)
    assert cached.score(requests_, ["3", "red", "no"]) == cached.score(requests_, ["3", "red", "no"])
    assert cached.inner_calls == 3 and cached.hits == 6 + 3


def test_default_path_and_unreadable_files(tmp_path, monkeypatch):
    monkeypatch.delenv("DELTAPROMPTS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "deltaprompts" / "responses.sqlite"
    monkeypatch.setenv("DELTAPROMPTS_CACHE", str(tmp_path / "mine.sqlite"))
    assert CachedBackend(Counting()).path == tmp_path / "mine.sqlite"
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="junk.sqlite cannot be opened as SQLite"):
        CachedBackend(Counting(), junk)
