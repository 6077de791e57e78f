"""A local OpenAI-compatible test server (stdlib http.server on 127.0.0.1) with fault injection."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Answerer = Callable[[dict[str, Any], int], list[dict[str, Any]]]


@dataclass
class Fault:
    """What to do instead of answering: `kind` is "status" (send `status` with `headers`), "timeout"
    (sleep `seconds`, then answer), "malformed" (send `body` with status 200) or "drip" (send the
    headers at once, then the answer one byte every `seconds`). It applies to the
    next `times` requests whose prompt text contains `match` (every request when None)."""

    kind: str
    times: float = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 1.0
    body: str = "<html>bad gateway</html>"
    match: str | None = None


def prompt_text(body: dict[str, Any]) -> str:
    return " ".join(p.get("text", "") for m in body.get("messages", []) for p in (m.get("content") or [])
                    if isinstance(p, dict) and p.get("type") == "text")


def decode_images(body: dict[str, Any]) -> list[bytes]:
    """The PNG bytes of every data-URL image in the request body."""
    out = []
    for m in body.get("messages", []):
        for p in m.get("content") or []:
            if isinstance(p, dict) and p.get("type") == "image_url":
                url = p["image_url"]["url"]
                out.append(base64.b64decode(url.split(",", 1)[1]))
    return out


def echo_answerer(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Deterministic choices naming the seed and the choice number (no model)."""
    return [{"text": f"answer {body.get('seed')}-{j}", "tokens": ["answer", f" {j}"], "logprobs": [-0.5, -0.25],
             "finish_reason": "stop"} for j in range(n)]


def model_answerer(backend: Any, workdir: Path) -> Answerer:
    """Choices sampled from an HFBackend (the images are decoded to files under `workdir`)."""
    from deltaprompts.models.base import Message, Request, Sampling

    lock = threading.Lock()

    def answer(body: dict[str, Any], n: int) -> list[dict[str, Any]]:
        paths, shas = [], []
        for png in decode_images(body):
            sha = hashlib.sha256(png).hexdigest()
            path = workdir / f"{sha}.png"
            path.write_bytes(png)
            paths.append(str(path))
            shas.append(sha)
        messages = [Message(role=m["role"], content=[{"type": "image"} if p["type"] == "image_url" else p
                                                     for p in m["content"]]) for m in body["messages"]]
        req = Request(id="server", images=paths, image_sha256=shas, messages=messages)
        sampling = Sampling(temperature=body.get("temperature", 1.0), top_p=body.get("top_p", 1.0),
                            top_k=body.get("top_k", 0), max_new_tokens=body.get("max_tokens", 16),
                            seed=body.get("seed") or 0, logprobs=bool(body.get("logprobs")))
        with lock:
            gens = backend.generate([req], sampling, [list(range(n))])[0]
            tok = backend.tokenizer
            return [{"text": g.text, "tokens": tok.convert_ids_to_tokens(g.token_ids), "logprobs": g.token_logprobs,
                     "finish_reason": g.finish_reason} for g in gens]

    return answer


class FakeOpenAIServer:
    """Serves POST /v1/chat/completions on 127.0.0.1 (a free port) from `answerer`, with faults.

    `ignore_n` answers one choice whatever `n` asks. `bodies` records every request body (faulted
    ones too) and `headers` their headers (lower-case names); `in_flight_max` is the largest number of requests handled at once; `delay` makes
    every answer take that many seconds. Use as a context manager; `url` is the base URL (…/v1).
    """

    def __init__(self, answerer: Answerer = echo_answerer, *, ignore_n: bool = False, delay: float = 0.0):
        self.answerer, self.ignore_n, self.delay = answerer, ignore_n, delay
        self.faults: list[Fault] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = self.in_flight_max = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def count(self) -> int:
        return len(self.bodies)

    def fail(self, kind: str, times: float = 1, **kw: Any) -> None:
        self.faults.append(Fault(kind, times, **kw))

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _take_fault(self, body: dict[str, Any]) -> Fault | None:
        text = prompt_text(body)
        with self.lock:
            for f in self.faults:
                if f.times > 0 and (f.match is None or f.match in text):
                    f.times -= 1
                    return f
        return None

    def _respond(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        fault = self._take_fault(body)
        if fault and fault.kind == "status":
            err = {"error": {"message": f"injected {fault.status}", "type": "server_error", "code": fault.status}}
            return fault.status, fault.headers, json.dumps(err).encode()
        if fault and fault.kind == "malformed":
            return 200, {}, fault.body.encode()
        if fault and fault.kind == "timeout":
            time.sleep(fault.seconds)
        if fault and fault.kind == "drip":
            status, headers, out = self._respond(body)
            return status, {**headers, "X-Drip-Seconds": str(fault.seconds)}, out
        if self.delay:
            time.sleep(self.delay)
        n = 1 if self.ignore_n else int(body.get("n") or 1)
        choices = []
        for j, c in enumerate(self.answerer(body, n)):
            choice: dict[str, Any] = {"index": j, "message": {"role": "assistant", "content": c["text"]},
                                      "finish_reason": c["finish_reason"]}
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []}
                                                  for t, lp in zip(c["tokens"], c["logprobs"])]}
            choices.append(choice)
        data = {"id": f"chatcmpl-{len(self.bodies)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": choices,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        return 200, {}, json.dumps(data).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {}, b'{"error": {"message": "not found"}}')
                body = json.loads(raw)
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    server.in_flight += 1
                    server.in_flight_max = max(server.in_flight_max, server.in_flight)
                try:
                    status, headers, out = server._respond(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                self._send(status, headers, out)

            def _send(self, status: int, headers: dict[str, str], out: bytes) -> None:
                try:
                    self.send_response(status)
                    ctype = "text/html" if out.startswith(b"<") else "application/json"
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(out)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    drip = float(headers.get("X-Drip-Seconds", 0))
                    if not drip:
                        self.wfile.write(out)
                    for k in range(len(out) if drip else 0):  # a server that trickles: a byte at a time
                        self.wfile.write(out[k:k + 1])
                        self.wfile.flush()
                        time.sleep(drip)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        return Handler


def png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.size
