"""The OpenAI-compatible backend against a real local HTTP server, with injected faults."""

from __future__ import annotations

import time

import pytest

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.cache import CachedBackend
from deltaprompts.models.specs import load_backend
from deltaprompts.models.wrappers import PartialResults

from tests.models.openai_server import FakeOpenAIServer, decode_images, model_answerer, png_size

pytest.importorskip("openai")

FAST = "?backoff=0.01&max_backoff=0.05&timeout=2"


def backend_for(server: FakeOpenAIServer, options: str = ""):
    return load_backend(f"openai:tiny@{server.url}{FAST}{options}")


def test_tiny_model_behind_the_server_answers_k_samples_with_logprobs(hf_backends, requests_, tmp_path):
    with FakeOpenAIServer(model_answerer(hf_backends["llava"], tmp_path)) as server:
        backend = backend_for(server)
        sampling = Sampling(temperature=1.0, max_new_tokens=5, seed=3, logprobs=True)
        out = backend.sample(requests_, sampling, [[0, 1, 2, 3], [2], [0, 1]])
        assert [[c.index for c in r] for r in out] == [[0, 1, 2, 3], [2], [0, 1]]
        assert server.count == 3 and sorted(b["n"] for b in server.bodies) == [1, 2, 4]  # one call per request
        for r in out:
            for c in r:
                assert c.logprob == pytest.approx(sum(c.token_logprobs)) and c.logprob < 0
        # the same seed, key and first index give the same call, hence the same answers
        again = backend.sample(requests_[:1], sampling, [[0, 1, 2, 3]])
        assert [c.text for c in again[0]] == [c.text for c in out[0]]
        assert decode_images(server.bodies[0])[0].startswith(b"\x89PNG")


def test_images_are_shrunk_to_max_pixels_keeping_the_aspect(image_paths, make_request):
    with FakeOpenAIServer() as server:
        big = make_request(image_paths[3], "How many?")  # 200 x 300
        backend_for(server, "&max_pixels=6000").sample([big], Sampling(), [[0]])
        w, h = png_size(decode_images(server.bodies[0])[0])
        assert w * h <= 6000 and abs(w / h - 200 / 300) < 0.02
        backend_for(server).sample([big], Sampling(), [[0]])
        assert png_size(decode_images(server.bodies[1])[0]) == (200, 300)


def test_server_that_ignores_n_is_asked_until_every_index_is_filled(requests_):
    with FakeOpenAIServer(ignore_n=True) as server:
        out = backend_for(server).sample(requests_[:2], Sampling(seed=1), [[0, 1, 2], [7]])
        assert [[c.index for c in r] for r in out] == [[0, 1, 2], [7]]
        assert server.count == 4
        assert sorted(b["n"] for b in server.bodies) == [1, 1, 2, 3]  # n counts down as choices arrive


def test_greedy_asks_one_sample_and_repeats_it(requests_):
    with FakeOpenAIServer() as server:
        out = backend_for(server).sample(requests_[:1], Sampling(temperature=0), [[0, 1, 2]])
        assert server.count == 1 and server.bodies[0]["n"] == 1 and server.bodies[0]["temperature"] == 0
        assert len({c.text for c in out[0]}) == 1 and [c.index for c in out[0]] == [0, 1, 2]


def test_transient_faults_are_retried_and_counted(requests_):
    with FakeOpenAIServer() as server:
        backend = backend_for(server, "&timeout=0.4")
        server.fail("status", 2, status=500)
        server.fail("status", 1, status=503)
        server.fail("malformed", 1)  # an HTML error page
        server.fail("malformed", 1, body='{"object": "chat.completion"}')  # no choices
        server.fail("malformed", 1, body='{"choices": [')  # truncated JSON
        server.fail("timeout", 1, seconds=1.0)
        out = backend.sample(requests_, Sampling(), [[0, 1], [0], [0]])
        assert [len(r) for r in out] == [2, 1, 1]
        stats = backend.policy.stats
        assert stats.errors == {"HTTP 500": 2, "HTTP 503": 1, "malformed response": 3, "timeout": 1}
        assert stats.retries == 7 and server.count == 3 + 7


def test_retry_after_of_a_429_is_honoured(requests_):
    with FakeOpenAIServer() as server:
        server.fail("status", 1, status=429, headers={"Retry-After": "0.4"})
        start = time.monotonic()
        backend = backend_for(server, "&max_backoff=1")  # Retry-After is capped at max_backoff
        backend.sample(requests_[:1], Sampling(), [[0]])
        assert time.monotonic() - start >= 0.4
        assert server.count == 2 and backend.policy.stats.errors == {"HTTP 429": 1}


def test_exhausted_retries_fail_clearly_and_keep_what_was_obtained(requests_, tmp_path):
    with FakeOpenAIServer() as server:
        server.fail("status", 1000, status=500, match="blue triangle")  # the third request always fails
        cached = CachedBackend(backend_for(server, "&retries=2&backoff=0.2"), tmp_path / "cache.sqlite")
        with pytest.raises(PartialResults) as info:
            cached.sample(requests_, Sampling(), [[0, 1], [0, 1, 2], [0, 1]])
        message = str(info.value)
        assert server.url in message and "HTTP 500" in message and "after 3 attempts" in message
        assert "2 of 3 requests done, 5 completions obtained" in message
        assert isinstance(info.value, DeltaError) and info.value.obtained == 5
        asked = server.count
        server.faults.clear()  # the server recovers: the rerun asks only for the third request
        out = cached.sample(requests_, Sampling(), [[0, 1], [0, 1, 2], [0, 1]])
        assert [len(r) for r in out] == [2, 3, 2]
        assert server.count == asked + 1 and server.bodies[-1]["n"] == 2
        assert cached.sample(requests_, Sampling(), [[0, 1], [0, 1, 2], [0, 1]]) == out and server.count == asked + 1


def test_client_errors_are_not_retried(requests_):
    with FakeOpenAIServer() as server:
        server.fail("status", 1, status=404)
        with pytest.raises(PartialResults, match=r"HTTP 404 \(injected 404\), after 1 attempt; 0 of 1 requests done"):
            backend_for(server).sample(requests_[:1], Sampling(), [[0]])
        assert server.count == 1


def test_unreachable_server_fails_with_a_connection_error(requests_):
    with FakeOpenAIServer() as server:
        url = server.url
    with pytest.raises(PartialResults, match=r"connection error \(.*\), after 2 attempts; 0 of 1 requests done"):
        load_backend(f"openai:tiny@{url}{FAST}&retries=1").sample(requests_[:1], Sampling(), [[0]])


def test_concurrency_is_bounded(requests_, image_paths, make_request):
    many = [make_request(image_paths[i % 3], f"How many red circles? {i}") for i in range(8)]
    with FakeOpenAIServer(delay=0.1) as server:
        backend_for(server, "&concurrency=2").sample(many, Sampling(), [[0]] * 8)
        assert server.count == 8 and server.in_flight_max == 2


def test_api_key_comes_from_the_named_environment_variable(requests_, monkeypatch):
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("MY_KEY", "sekrit")
        backend_for(server, "&api_key_env=MY_KEY").sample(requests_[:1], Sampling(), [[0]])
        assert server.headers[0]["authorization"] == "Bearer sekrit"
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(UserError, match="MY_KEY"):
        load_backend("openai:m@http://127.0.0.1:9/v1?api_key_env=MY_KEY")


@pytest.mark.parametrize("spec, message", [
    ("openai:just-a-model", "needs MODEL@BASE_URL.*openai:Qwen2-VL-7B@http://localhost:8000/v1"),
    ("openai:m@localhost:8000", "must start with http:// or https://"),
    ("openai:m@http://h/v1?concurency=2", "unknown option 'concurency'.*allowed: api_key_env, backoff, concurrency"),
    ("openai:m@http://h/v1?timeout=soon", "timeout='soon'.*not a valid float"),
    ("nonsense:x", "accepted forms: hf:PATH_OR_ID.*openai:MODEL@BASE_URL.*replay:FILE.jsonl"),
    ("no-colon", "accepted forms"),
])
def test_bad_specs_show_the_accepted_forms(spec, message):
    with pytest.raises(UserError, match=message):
        load_backend(spec)


def test_identity_names_model_server_and_image_size():
    backend = load_backend("openai:Qwen2-VL-7B@http://localhost:8000/v1/?max_pixels=4096")
    assert backend.identity == "openai:Qwen2-VL-7B@http://localhost:8000/v1?max_pixels=4096"


def test_a_server_that_trickles_bytes_is_bounded_by_the_timeout(requests_):
    # headers at once, then one byte every 0.2 s: each read is quick, the whole answer takes minutes
    with FakeOpenAIServer() as server:
        backend = backend_for(server, "&timeout=0.5")
        server.fail("drip", 1, seconds=0.2)
        start = time.monotonic()
        out = backend.sample(requests_[:1], Sampling(), [[0]])
        assert time.monotonic() - start < 5 and len(out[0]) == 1  # timed out once, retried, answered
        assert backend.policy.stats.errors == {"timeout": 1}
