"""The lean HTTP client of the openai: backend against raw local servers that misbehave on the wire."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time

import pytest

from deltaprompts.models.base import Sampling
from deltaprompts.models.http import HTTPClient, HTTPConnectionError, HTTPStatusError, error_detail
from deltaprompts.models.specs import load_backend
from deltaprompts.models.wrappers import PartialResults

FAST = "?backoff=0.01&max_backoff=0.05&timeout=1&retries=2"
OK = json.dumps({"choices": [{"message": {"content": "4"}, "finish_reason": "stop"}]}).encode()


class RawServer:
    """A socket server on 127.0.0.1 that answers each request with the next of `answers` (bytes
    sent as they are; None closes without answering), then with the last one; `close`: closes the
    connection after each answer (a truncated answer is then seen as such)."""

    def __init__(self, answers: list[bytes | None], close: bool = False):
        self.answers, self.close_each, self.requests, self.connections = answers, close, [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
                if answer is None:
                    return
                conn.sendall(answer)
                if self.close_each:
                    return

    def close(self) -> None:
        self.sock.close()


def reply(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
            ).encode() + body


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x;ext=1\r\n%s\r\n" % (half, body[:half])
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - half, body[half:]))


def post(server: RawServer, times: int = 1) -> list[bytes]:
    async def go() -> list[bytes]:
        client = HTTPClient(server.url, {"Authorization": "Bearer k"}, pool=4)
        try:
            return [await client.post("/chat/completions", content=b'{"n": 1}') for _ in range(times)]
        finally:
            await client.close()

    return asyncio.run(go())


def test_keep_alive_chunked_and_gzip_bodies_are_read():
    gz = reply(gzip.compress(OK), headers="Content-Encoding: gzip\r\n")
    server = RawServer([reply(OK), chunked(OK), gz])
    try:
        assert post(server, 3) == [OK, OK, OK]
        assert server.connections == 1  # one keep-alive connection for the three
        head = server.requests[0].split(b"\r\n\r\n")[0].decode()
        assert head.startswith("POST /v1/chat/completions HTTP/1.1") and "Authorization: Bearer k" in head
    finally:
        server.close()


def test_a_connection_the_server_closed_while_idle_is_replaced():
    # the second request finds the kept connection dropped unanswered: it goes again on a new one
    server = RawServer([reply(OK), None, reply(OK)])
    try:
        assert post(server, 3) == [OK, OK, OK] and server.connections == 2
    finally:
        server.close()
    # on a new connection, an unanswered request is a connection error (the backend retries it)
    server = RawServer([None])
    try:
        with pytest.raises(HTTPConnectionError, match="without sending a response"):
            post(server)
    finally:
        server.close()


def test_status_errors_carry_status_headers_and_the_server_message():
    err = json.dumps({"error": {"message": "model overloaded\nsecond line", "code": 503}}).encode()
    server = RawServer([reply(err, "503 Service Unavailable", "Retry-After: 2\r\n")])
    try:
        with pytest.raises(HTTPStatusError) as info:
            post(server)
        assert info.value.status == 503 and info.value.headers["retry-after"] == "2"
        assert info.value.detail == "model overloaded"
    finally:
        server.close()
    assert error_detail(502, b"<html>bad gateway</html>\n<p>") == "Error code: 502 - <html>bad gateway</html>"
    assert error_detail(500, b"") == "Error code: 500 - empty body"


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choices\"", "truncated answer"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed response header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", "cannot decode a gzip body"),
])
def test_garbage_on_the_wire_is_a_connection_error(answer, message):
    server = RawServer([answer], close=True)
    try:
        with pytest.raises(HTTPConnectionError, match=message):
            post(server)
    finally:
        server.close()


def test_backend_retries_transient_failures_and_names_the_server_on_giving_up(requests_):
    server = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", reply(b"{}", "500 Oops"),
                        reply(b"not json"), reply(OK)], close=True)
    try:
        backend = load_backend(f"openai:m@{server.url}{FAST}&retries=3")
        out = backend.sample(requests_[:1], Sampling(), [[0]])
        assert out[0][0].text == "4"
        assert backend.policy.stats.errors == {"connection error": 1, "HTTP 500": 1, "malformed response": 1}
    finally:
        server.close()
    server = RawServer([reply(b'{"error": {"message": "busy"}}', "429 Too Many Requests")])
    try:
        backend = load_backend(f"openai:m@{server.url}{FAST}&retries=1")
        with pytest.raises(PartialResults) as info:
            backend.sample(requests_[:1], Sampling(), [[0]])
        assert str(info.value).startswith(f"OpenAI-compatible server {server.url} (model m) failed: HTTP 429 (busy), "
                                          "after 2 attempts")
    finally:
        server.close()


def test_a_server_that_never_answers_is_bounded_by_the_timeout(requests_):
    server = RawServer([b"HTTP/1.1 200 OK\r\n"])  # a status line, then silence
    try:
        backend = load_backend(f"openai:m@{server.url}?timeout=0.3&retries=1&backoff=0.01")
        start = time.monotonic()
        with pytest.raises(PartialResults, match=r"timeout \(no answer within 0.3s\), after 2 attempts"):
            backend.sample(requests_[:1], Sampling(), [[0]])
        assert time.monotonic() - start < 3
    finally:
        server.close()


def test_connection_refused_is_a_connection_error(requests_):
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    backend = load_backend(f"openai:m@http://127.0.0.1:{port}/v1{FAST}&retries=1")
    with pytest.raises(PartialResults, match=r"connection error \(cannot connect to 127.0.0.1:\d+: .*\), after 2"):
        backend.sample(requests_[:1], Sampling(), [[0]])
