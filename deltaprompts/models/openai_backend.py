"""OpenAI-compatible HTTP backend `openai:MODEL@BASE_URL` (vLLM, SGLang, TGI, Ollama, OpenAI): async,
bounded concurrency, retries with backoff, partial results kept on failure. Requests go through the
lean keep-alive client of `deltaprompts.models.http`; the OpenAI SDK's client only when the
environment sets a proxy for the server."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import Completion, Request, Sampling
from deltaprompts.models.http import HTTPClient, HTTPConnectionError, HTTPStatusError, proxied
from deltaprompts.models.images import IMAGES
from deltaprompts.models.specs import scheme
from deltaprompts.models.wrappers import (AsyncRateLimiter, Failure, PartialResults, RetriesExhausted, RetryPolicy,
                                          split_options)
from deltaprompts.rng import derive_seed

# Real servers (vLLM, SGLang) batch hundreds of concurrent requests; a deeper queue than this only
# adds server-side latency. A laptop Ollama may want ?concurrency=4.
DEFAULT_CONCURRENCY = 128
POOL = 16  # connections per SDK client (used only behind a proxy)
FORM = "openai:MODEL@BASE_URL[,BASE_URL...][?api_key_env=NAME&concurrency=128]"
OPTIONS = {"api_key_env": str, "concurrency": int, "timeout": float, "retries": int, "backoff": float,
           "max_backoff": float, "max_pixels": int, "rps": float}


class MalformedResponse(DeltaError):
    """A server answered 200 with a body that is not a chat completion."""


def parse_chat_completion(body: str | bytes) -> list[dict[str, Any]]:
    """The choices of a chat-completion body, each as {text, finish_reason, token_logprobs};
    raises MalformedResponse saying what is wrong with the body."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body)
    except ValueError:
        raise MalformedResponse(f"body is not JSON: {body[:80]!r}") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"body has no 'choices' list: {body[:80]!r}")
    out = []
    for c in choices:
        message = c.get("message") if isinstance(c, dict) else None
        content = message.get("content") if isinstance(message, dict) else 0
        if content is not None and not isinstance(content, str):
            raise MalformedResponse(f"a choice has no message content: {json.dumps(c)[:80]}")
        lps = None
        entries = (c.get("logprobs") or {}).get("content") if isinstance(c.get("logprobs"), dict) else None
        if isinstance(entries, list):
            try:
                lps = [float(e["logprob"]) for e in entries]
            except (KeyError, TypeError, ValueError):
                raise MalformedResponse(f"a choice has malformed logprobs: {json.dumps(c)[:80]}") from None
        out.append({"text": content or "", "finish_reason": c.get("finish_reason"), "token_logprobs": lps})
    return out


def image_data_url(path: str, max_pixels: int) -> str:
    """The image as a base64 PNG data URL, shrunk (aspect kept) to at most `max_pixels` pixels; made
    once per process (`deltaprompts.models.images.IMAGES`) and reused."""
    return IMAGES.data_url(path, None, max_pixels)


class _Loop:
    """One event loop on a daemon thread, shared by every OpenAIBackend of the process: the HTTP client,
    its connection pool and the concurrency bound live across `sample()` calls, and calls made from
    several threads at once (teacher and student, consecutive batches) share them."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="deltaprompts-http", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def run(cls, coro: Any) -> Any:
        """Run `coro` on the shared loop and wait for it (from any thread but the loop's own)."""
        loop = cls.get()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise DeltaError("OpenAIBackend.sample() cannot be called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server (`sample()` may be called from several
    threads at once: they share one connection pool and one concurrency bound). Sample indices are filled in order from
    the choices of calls with `n` = the missing count (a server that ignores `n` is asked again);
    each call's `seed` is derived from (sampling.seed, request.key, its first index)."""

    concurrent = True

    def __init__(self, model: str, base_url: str, *, api_key_env: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                 timeout: float = 120.0, retries: int = 6, backoff: float = 0.5, max_backoff: float = 30.0,
                 max_pixels: int = 1024 * 1024, rps: float | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise UserError(f"openai base URL {base_url!r} must start with http:// or https:// (form: {FORM})")
        if concurrency < 1 or timeout <= 0 or max_pixels < 1:
            raise UserError(f"openai options need concurrency >= 1, timeout > 0, max_pixels >= 1; got "
                            f"{concurrency}, {timeout}, {max_pixels}")
        key = os.environ.get(api_key_env or "OPENAI_API_KEY")
        if key is None and api_key_env:
            raise UserError(f"openai: environment variable {api_key_env} (api_key_env) is not set")
        self.model, self.base_url, self.api_key = model, base_url.rstrip("/"), key or "EMPTY"
        self.concurrency, self.timeout, self.max_pixels, self.rps = concurrency, timeout, max_pixels, rps
        self.policy = RetryPolicy(retries=retries, base=backoff, max_delay=max_backoff)
        self.identity = f"openai:{model}@{self.base_url}?max_pixels={max_pixels}"
        self._clients: list[Any] = []  # HTTP clients and the concurrency bound, made on the shared loop
        self._busy: list[int] = []
        self._sem: asyncio.Semaphore | None = None

    def close(self) -> None:
        """Close the HTTP clients (a later `sample()` opens new ones)."""
        if self._clients:
            clients, self._clients, self._sem = self._clients, [], None

            async def close_all() -> None:
                for c in clients:
                    await c.close()

            _Loop.run(close_all())

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}", "User-Agent": "deltaprompts"}
        for env, name in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(env):  # as the OpenAI SDK sends them
                headers[name] = os.environ[env]
        return headers

    def _connect(self) -> tuple[list[Any], asyncio.Semaphore]:
        """The clients, made on first use on the shared loop: one lean keep-alive client pooling
        up to `concurrency` connections; behind a proxy, OpenAI SDK clients of POOL connections each
        (the SDK's pool scans every connection for each request: its cost grows with the pool)."""
        if not self._clients and not proxied(self.base_url):
            self._clients = [HTTPClient(self.base_url, self._headers(), pool=self.concurrency)]
            self._busy = [0]
            self._sem = asyncio.Semaphore(self.concurrency)
        elif not self._clients:
            import httpx2
            import openai

            verify: Any = False  # plain http: no TLS, no certificate store to load
            if self.base_url.startswith("https://"):
                verify = httpx2.create_ssl_context()  # loaded once, shared by the clients
            per = min(POOL, self.concurrency)
            limits = httpx2.Limits(max_connections=per, max_keepalive_connections=per)
            self._clients = [openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                                                timeout=self.timeout, http_client=openai.DefaultAsyncHttpxClient(
                                                    limits=limits, verify=verify))
                             for _ in range(-(-self.concurrency // per))]
            self._busy = [0] * len(self._clients)
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._clients, self._sem  # type: ignore[return-value]

    def messages(self, request: Request) -> list[dict[str, Any]]:
        """The request's messages in the OpenAI format, images inlined as data URLs."""
        images = iter(request.images)
        parts_seen: list[str] = []
        out = []
        for m in request.messages:
            parts = []
            for part in m.content:
                if part.get("type") == "image":
                    path = next(images, None)
                    if path is None:
                        raise UserError(f"request {request.id}: more image parts than images")
                    sha = request.image_sha256[len(parts_seen)] if len(parts_seen) < len(request.image_sha256) else None
                    parts_seen.append(path)
                    parts.append({"type": "image_url", "image_url": {"url": IMAGES.data_url(path, sha, self.max_pixels)}})
                elif part.get("type") == "text":
                    parts.append({"type": "text", "text": part["text"]})
                else:
                    raise UserError(f"request {request.id}: unknown content part type {part.get('type')!r}")
            out.append({"role": m.role, "content": parts})
        return out

    def classify(self, e: BaseException) -> Failure | None:
        """Which failures are retried: 408/409/429/5xx, timeouts, connection errors, malformed bodies."""
        if isinstance(e, MalformedResponse):
            return Failure(True, "malformed response", detail=str(e))
        if isinstance(e, TimeoutError):  # the whole-request deadline
            return Failure(True, "timeout", detail=f"no answer within {self.timeout:g}s")
        if isinstance(e, HTTPConnectionError):
            return Failure(True, "connection error", detail=str(e)[:120])
        if isinstance(e, HTTPStatusError):
            return Failure(_transient(e.status), f"HTTP {e.status}", _retry_after(e.headers.get("retry-after")),
                           e.detail[:120])
        import openai  # the SDK's client, behind a proxy

        if isinstance(e, openai.APITimeoutError):
            return Failure(True, "timeout", detail=f"no answer within {self.timeout:g}s")
        if isinstance(e, openai.APIConnectionError):
            return Failure(True, "connection error", detail=str(e.__cause__ or e)[:120])
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            detail = e.body.get("message") if isinstance(e.body, dict) else None
            return Failure(_transient(status), f"HTTP {status}", _retry_after(e.response.headers.get("retry-after")),
                           str(detail or e.message).splitlines()[0][:120])
        if isinstance(e, openai.APIResponseValidationError):
            return Failure(True, "malformed response", detail=str(e)[:120])
        return None

    def _body(self, messages_json: str, sampling: Sampling, n: int, seed: int) -> bytes:
        """The request body: the messages (serialized once per request) spliced into the parameters."""
        params: dict[str, Any] = {"model": self.model, "n": n, "seed": seed, "temperature": sampling.temperature,
                                  "top_p": sampling.top_p, "max_tokens": sampling.max_new_tokens}
        if sampling.logprobs:
            params["logprobs"] = True
        if sampling.top_k:
            params["top_k"] = sampling.top_k  # vLLM/SGLang extension
        return (json.dumps(params)[:-1] + ', "messages": ' + messages_json + "}").encode()

    async def _call(self, client: Any, body: bytes) -> list[dict[str, Any]]:
        # posted as bytes (an SDK client would otherwise validate the body, walking every base64
        # character); the keyword arguments are the SDK's, which the lean client ignores
        raw = await client.post("/chat/completions", cast_to=str, content=body,
                                options={"headers": {"Content-Type": "application/json"}})
        return parse_chat_completion(raw)

    def _messages_json(self, request: Request) -> str:
        """json.dumps(self.messages(request)), with each image's data URL placed as it is: base64
        needs no escaping, and scanning a megabyte of it for escapes costs more than the rest."""
        urls: list[str] = []
        messages = self.messages(request)
        for m in messages:
            for part in m["content"]:
                if part["type"] == "image_url":
                    urls.append(part["image_url"]["url"])
                    part["image_url"]["url"] = ""
        if not urls:
            return json.dumps(messages)
        pieces = json.dumps(messages).split('"url": ""')
        if len(pieces) != len(urls) + 1:  # an empty url key in the text itself cannot occur: JSON escapes quotes
            raise DeltaError(f"request {request.id}: cannot place {len(urls)} image URLs in the body")
        out = [pieces[0]]
        for url, piece in zip(urls, pieces[1:]):
            out.append(f'"url": "{url}"')
            out.append(piece)
        return "".join(out)

    async def _sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]):
        clients, sem = self._connect()
        results: list[list[Completion]] = [[] for _ in requests]
        limiter = AsyncRateLimiter(self.rps) if self.rps else None
        state: dict[str, Any] = {"failure": None, "done": 0}
        greedy = sampling.temperature == 0

        def describe(failure: Failure, attempts: int) -> str:
            return (f"OpenAI-compatible server {self.base_url} (model {self.model}) failed: {failure}, "
                    f"after {attempts} attempt{'s' * (attempts != 1)}")

        async def one(r: int) -> None:
            req, need = requests[r], list(indices[r])[:1] if greedy else list(indices[r])
            if not need:
                state["done"] += 1
                return
            shas = list(req.image_sha256) + [None] * len(req.images)
            if all(IMAGES.cached(p, h, self.max_pixels) for p, h in zip(req.images, shas)):
                messages = self._messages_json(req)
            else:  # a first encoding (a resize can take tens of ms) stays off the event loop
                messages = await asyncio.to_thread(self._messages_json, req)
            pos = 0
            for _ in range(len(need)):  # every successful call brings at least one choice
                if state["failure"] is not None:
                    return
                n = len(need) - pos
                body = self._body(messages, sampling, n, derive_seed(sampling.seed, req.key, need[pos]) % 2**31)
                async with sem:
                    if state["failure"] is not None:
                        return
                    if limiter:
                        await limiter.acquire()
                    c = self._busy.index(min(self._busy))  # a client with a free connection
                    self._busy[c] += 1
                    try:
                        # the timeout bounds the whole request: a server that trickles bytes cannot hold it
                        choices = await self.policy.run(
                            lambda: asyncio.wait_for(self._call(clients[c], body), self.timeout), self.classify,
                            describe)
                    except RetriesExhausted as e:
                        state["failure"] = state["failure"] or e
                        return
                    finally:
                        self._busy[c] -= 1
                for c in choices[:n]:
                    lps = c["token_logprobs"]
                    results[r].append(Completion(text=c["text"], index=need[pos], finish_reason=c["finish_reason"],
                                                 logprob=float(sum(lps)) if lps is not None else None, token_logprobs=lps))
                    pos += 1
                if pos == len(need):
                    break
            if greedy:
                first = results[r][0]
                results[r] = [first.model_copy(update={"index": i}) for i in indices[r]]
            state["done"] += 1

        await asyncio.gather(*(one(r) for r in range(len(requests))))
        if state["failure"] is not None:
            got = sum(len(c) for c in results)
            raise PartialResults(f"{state['failure']}; {state['done']} of {len(requests)} requests done, "
                                 f"{got} completions obtained", results)
        return results

    def sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]) -> list[list[Completion]]:
        """Completions for the given indices; raises PartialResults (a DeltaError) naming the server,
        the failure and the requests done, carrying the completions obtained, once retries run out."""
        if len(indices) != len(requests):
            raise UserError(f"sample: {len(requests)} requests but {len(indices)} index lists")
        return _Loop.run(self._sample(requests, sampling, indices))


def _transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: the backoff decides
        return None


def parse_spec(rest: str) -> Any:
    """Build the backend of `MODEL@BASE_URL[,BASE_URL...][?options]` (several URLs: a
    models.servers.ServerPool of one backend each, `concurrency` per server); raises UserError
    showing the form."""
    main, options = split_options(rest, OPTIONS, FORM)
    model, sep, base_url = main.partition("@")
    if not sep or not model or not base_url:
        raise UserError(f"openai model spec {rest!r} needs MODEL@BASE_URL, e.g. "
                        f"openai:Qwen2-VL-7B@http://localhost:8000/v1 (form: {FORM})")
    urls = [u.strip() for u in base_url.split(",")]
    if len(urls) == 1:
        return OpenAIBackend(model, base_url, **options)
    if any(not u for u in urls):
        raise UserError(f"openai model spec {rest!r}: an empty server URL in the list (form: {FORM})")
    from deltaprompts.models.servers import ServerPool

    return ServerPool([OpenAIBackend(model, u, **options) for u in urls])


scheme("openai", FORM)(parse_spec)
