"""OpenAI-compatible HTTP backend `openai:MODEL@BASE_URL` (vLLM, SGLang, TGI, Ollama, OpenAI): async,
bounded concurrency, retries with backoff, partial results kept on failure."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from deltaprompts.errors import DeltaError, UserError
from deltaprompts.models.base import Completion, Request, Sampling
from deltaprompts.models.specs import scheme
from deltaprompts.models.wrappers import (AsyncRateLimiter, Failure, PartialResults, RetriesExhausted, RetryPolicy,
                                          split_options)
from deltaprompts.rng import derive_seed

FORM = "openai:MODEL@BASE_URL[?api_key_env=NAME&concurrency=8]"
OPTIONS = {"api_key_env": str, "concurrency": int, "timeout": float, "retries": int, "backoff": float,
           "max_backoff": float, "max_pixels": int, "rps": float}


class MalformedResponse(DeltaError):
    """A server answered 200 with a body that is not a chat completion."""


def parse_chat_completion(body: str) -> list[dict[str, Any]]:
    """The choices of a chat-completion body, each as {text, finish_reason, token_logprobs};
    raises MalformedResponse saying what is wrong with the body."""
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
    """The image as a base64 PNG data URL, shrunk (aspect kept) to at most `max_pixels` pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    w, h = im.size
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        im = im.resize((max(1, int(w * s)), max(1, int(h * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server. Sample indices are filled in order from
    the choices of calls with `n` = the missing count (a server that ignores `n` is asked again);
    each call's `seed` is derived from (sampling.seed, request.key, its first index)."""

    def __init__(self, model: str, base_url: str, *, api_key_env: str | None = None, concurrency: int = 8,
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

    def messages(self, request: Request) -> list[dict[str, Any]]:
        """The request's messages in the OpenAI format, images inlined as data URLs."""
        images = iter(request.images)
        out = []
        for m in request.messages:
            parts = []
            for part in m.content:
                if part.get("type") == "image":
                    path = next(images, None)
                    if path is None:
                        raise UserError(f"request {request.id}: more image parts than images")
                    parts.append({"type": "image_url", "image_url": {"url": image_data_url(path, self.max_pixels)}})
                elif part.get("type") == "text":
                    parts.append({"type": "text", "text": part["text"]})
                else:
                    raise UserError(f"request {request.id}: unknown content part type {part.get('type')!r}")
            out.append({"role": m.role, "content": parts})
        return out

    def classify(self, e: BaseException) -> Failure | None:
        """Which failures are retried: 408/409/429/5xx, timeouts, connection errors, malformed bodies."""
        import openai

        if isinstance(e, MalformedResponse):
            return Failure(True, "malformed response", detail=str(e))
        if isinstance(e, openai.APITimeoutError):
            return Failure(True, "timeout", detail=f"no answer within {self.timeout:g}s")
        if isinstance(e, openai.APIConnectionError):
            return Failure(True, "connection error", detail=str(e.__cause__ or e)[:120])
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            retry_after = None
            try:
                retry_after = float(e.response.headers.get("retry-after", ""))
            except ValueError:
                pass
            detail = e.body.get("message") if isinstance(e.body, dict) else None
            return Failure(status in (408, 409, 429) or status >= 500, f"HTTP {status}", retry_after,
                           str(detail or e.message).splitlines()[0][:120])
        if isinstance(e, openai.APIResponseValidationError):
            return Failure(True, "malformed response", detail=str(e)[:120])
        return None

    async def _call(self, client: Any, messages: list[dict[str, Any]], sampling: Sampling, n: int, seed: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "n": n, "seed": seed,
                                  "temperature": sampling.temperature, "top_p": sampling.top_p,
                                  "max_tokens": sampling.max_new_tokens}
        if sampling.logprobs:
            kwargs["logprobs"] = True
        if sampling.top_k:
            kwargs["extra_body"] = {"top_k": sampling.top_k}
        raw = await client.chat.completions.with_raw_response.create(**kwargs)
        return parse_chat_completion(raw.http_response.text)

    async def _sample(self, requests: Sequence[Request], sampling: Sampling, indices: Sequence[Sequence[int]]):
        from openai import AsyncOpenAI

        results: list[list[Completion]] = [[] for _ in requests]
        sem = asyncio.Semaphore(self.concurrency)
        limiter = AsyncRateLimiter(self.rps) if self.rps else None
        state: dict[str, Any] = {"failure": None, "done": 0}
        greedy = sampling.temperature == 0

        def describe(failure: Failure, attempts: int) -> str:
            return (f"OpenAI-compatible server {self.base_url} (model {self.model}) failed: {failure}, "
                    f"after {attempts} attempt{'s' * (attempts != 1)}")

        async def one(client: Any, r: int) -> None:
            req, need = requests[r], list(indices[r])[:1] if greedy else list(indices[r])
            if not need:
                state["done"] += 1
                return
            messages = await asyncio.to_thread(self.messages, req)
            pos = 0
            for _ in range(len(need)):  # every successful call brings at least one choice
                if state["failure"] is not None:
                    return
                n = len(need) - pos
                seed = derive_seed(sampling.seed, req.key, need[pos]) % 2**31
                async with sem:
                    if state["failure"] is not None:
                        return
                    if limiter:
                        await limiter.acquire()
                    try:
                        choices = await self.policy.run(lambda: self._call(client, messages, sampling, n, seed),
                                                        self.classify, describe)
                    except RetriesExhausted as e:
                        state["failure"] = state["failure"] or e
                        return
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

        async with AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0, timeout=self.timeout) as client:
            await asyncio.gather(*(one(client, r) for r in range(len(requests))))
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
        return _run_sync(self._sample(requests, sampling, indices))


def parse_spec(rest: str) -> OpenAIBackend:
    """Build the backend of `MODEL@BASE_URL[?options]`; raises UserError showing the form."""
    main, options = split_options(rest, OPTIONS, FORM)
    model, sep, base_url = main.partition("@")
    if not sep or not model or not base_url:
        raise UserError(f"openai model spec {rest!r} needs MODEL@BASE_URL, e.g. "
                        f"openai:Qwen2-VL-7B@http://localhost:8000/v1 (form: {FORM})")
    return OpenAIBackend(model, base_url, **options)


scheme("openai", FORM)(parse_spec)
