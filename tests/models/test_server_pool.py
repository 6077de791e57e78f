"""openai:MODEL@URL1,URL2: requests spread over several servers, and failover when one dies."""

from __future__ import annotations

import math

import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.servers import ServerPool
from deltaprompts.models.specs import load_backend
from deltaprompts.models.wrappers import PartialResults

from tests.models.openai_server import FakeOpenAIServer

FAST = "?backoff=0.01&max_backoff=0.02&timeout=2&retries=1"


def pool(*servers: FakeOpenAIServer, options: str = "") -> ServerPool:
    backend = load_backend(f"openai:tiny@{','.join(s.url for s in servers)}{FAST}{options}")
    assert isinstance(backend, ServerPool)
    return backend


def test_requests_spread_over_the_servers_and_the_answers_do_not_depend_on_which(make_request, image_paths):
    requests = [make_request(image_paths[i % 2], f"question {i}") for i in range(12)]
    sampling = Sampling(seed=5)
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b, FakeOpenAIServer() as single:
        out = pool(a, b).sample(requests, sampling, [[0, 1]] * 12)
        assert a.count == 6 and b.count == 6  # equal concurrency, equal shares
        alone = load_backend(f"openai:tiny@{single.url}{FAST}").sample(requests, sampling, [[0, 1]] * 12)
        assert [[c.text for c in r] for r in out] == [[c.text for c in r] for r in alone]
        assert [[c.index for c in r] for r in out] == [[0, 1]] * 12
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        pool(a, b, options="&concurrency=1").sample(requests, sampling, [[0]] * 12)
        assert a.count == b.count == 6


def test_a_dead_server_is_taken_out_and_its_work_done_by_the_others(make_request, image_paths):
    requests = [make_request(image_paths[i % 2], f"question {i}") for i in range(10)]
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        b.fail("status", math.inf, status=500)
        p = pool(a, b)
        out = p.sample(requests, Sampling(seed=1), [[0, 1, 2]] * 10)
        assert [[c.index for c in r] for r in out] == [[0, 1, 2]] * 10
        assert list(p.dead) == [b.url] and "500" in p.dead[b.url]
        before = b.count
        p.sample(requests[:4], Sampling(seed=1), [[3]] * 4)
        assert b.count == before  # no longer asked


def test_when_every_server_dies_what_came_back_is_kept(make_request, image_paths):
    requests = [make_request(image_paths[0], f"question {i}") for i in range(4)]
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        a.fail("status", math.inf, status=503)
        b.fail("status", math.inf, status=500)
        with pytest.raises(PartialResults, match="every server of tiny failed") as e:
            pool(a, b).sample(requests, Sampling(), [[0]] * 4)
        assert e.value.obtained == 0


def test_identity_names_the_model_and_the_set_of_servers():
    one = load_backend("openai:m@http://h1:8000/v1,http://h2:8000/v1")
    two = load_backend("openai:m@http://h2:8000/v1,http://h1:8000/v1")
    assert one.identity == two.identity == "openai:m@http://h1:8000/v1,http://h2:8000/v1?max_pixels=1048576"
    with pytest.raises(UserError, match="empty server URL"):
        load_backend("openai:m@http://h1:8000/v1,")
    with pytest.raises(UserError, match="distinct URLs"):
        load_backend("openai:m@http://h1:8000/v1,http://h1:8000/v1")
