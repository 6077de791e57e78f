"""A lean HTTP/1.1 client for JSON POSTs on asyncio streams: keep-alive connections pooled per base
URL, no per-request objects beyond the bytes sent and read (the OpenAI SDK and httpx spent more
client CPU per request than the whole rest of a `score` run against a fast server)."""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
import zlib
from typing import Any
from urllib.parse import urlsplit

#: Largest response head accepted (status line and headers).
HEAD_LIMIT = 1 << 20


class HTTPStatusError(Exception):
    """The server answered with a non-2xx status; `detail` is its error message (one line)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.detail = error_detail(status, body)
        super().__init__(f"HTTP {status}: {self.detail}")


class HTTPConnectionError(Exception):
    """No complete answer: the connection failed, closed early, or the bytes were not HTTP."""


def error_detail(status: int, body: bytes) -> str:
    """The one-line message of an error body: `error.message` of a JSON body (OpenAI and vLLM
    style), else the body's first line."""
    import json

    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        message = err.get("message") if isinstance(err, dict) else err
        if isinstance(message, str) and message.strip():
            return message.strip().splitlines()[0][:200]
    first = text.splitlines()[0][:200] if text else "empty body"
    return f"Error code: {status} - {first}"


def proxied(base_url: str) -> bool:
    """Whether the environment routes `base_url` through a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY,
    NO_PROXY): this client connects directly only, so such URLs go through the SDK's client."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class HTTPClient:
    """POSTs to one base URL over at most `pool` idle keep-alive connections (more are opened while
    more requests are in flight; the caller bounds those). `post` returns the body of a 2xx answer
    and raises HTTPStatusError for any other status, HTTPConnectionError when no complete answer
    came. Use from one event loop; the caller bounds the whole request's time (asyncio.wait_for)."""

    def __init__(self, base_url: str, headers: dict[str, str], *, pool: int = 128):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = _ssl_context() if parts.scheme == "https" else None
        netloc = parts.netloc.rpartition("@")[2]
        fixed = {"Host": netloc, "Accept": "application/json", "Accept-Encoding": "gzip, deflate",
                 "Connection": "keep-alive", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self.pool = pool
        self._idle: list[_Connection] = []

    async def _open(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=HEAD_LIMIT)
        except (OSError, ssl.SSLError) as e:
            raise HTTPConnectionError(f"cannot connect to {self.host}:{self.port}: {e}") from e
        return _Connection(reader, writer)

    async def post(self, path: str, *, content: bytes, **_: Any) -> bytes:
        """POST `content` (JSON bytes) to base URL + `path`; the response body of a 2xx status.
        (Other keyword arguments are accepted and ignored: the OpenAI SDK's `post` takes them.)"""
        head = b"POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
            (self.prefix + path).encode("latin-1"), self._fixed, len(content))
        while self._idle:
            conn = self._idle.pop()
            if not conn.usable():
                conn.close()
                continue
            try:
                return await self._exchange(conn, head, content)
            except _Stale:  # the server closed an idle connection before reading this request: a new one
                break
        return await self._exchange(await self._open(), head, content, fresh=True)

    async def _exchange(self, conn: _Connection, head: bytes, content: bytes, fresh: bool = False) -> bytes:
        reusable = False
        try:
            conn.writer.write(head + content if len(content) < 65536 else head)
            if len(content) >= 65536:
                conn.writer.write(content)
            await conn.writer.drain()
            status, headers, body, reusable = await self._response(conn.reader, fresh)
        except (_Stale, HTTPConnectionError):
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise HTTPConnectionError(_describe(e)) from e
        finally:
            if reusable and len(self._idle) < self.pool:
                self._idle.append(conn)
            else:
                conn.close()
        if 200 <= status < 300:
            return body
        raise HTTPStatusError(status, headers, body)

    async def _response(self, reader: asyncio.StreamReader, fresh: bool) -> tuple[int, dict[str, str], bytes, bool]:
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if not e.partial and not fresh:
                    raise _Stale() from None
                raise HTTPConnectionError("server closed the connection without sending a response") from None
            lines = raw.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise HTTPConnectionError(f"not an HTTP response: {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200:  # 100 Continue and friends: the real answer follows
                continue
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise HTTPConnectionError(f"malformed response header: {line[:80]!r}")
                    headers[name.strip().lower()] = value.strip()
            break
        keep = headers.get("connection", "").lower() != "close" and (
            version != "HTTP/1.0" or headers.get("connection", "").lower() == "keep-alive")
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length < 0:
                raise HTTPConnectionError(f"negative Content-Length {length}")
            body = await reader.readexactly(length)
        else:  # the body runs to the end of the connection
            body, keep = await reader.read(), False
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47 if encoding == "gzip" else 15)
            except zlib.error:
                try:
                    body = zlib.decompress(body, -15)  # raw deflate, as some servers send
                except zlib.error as e:
                    raise HTTPConnectionError(f"cannot decode a {encoding} body: {e}") from None
        return status, headers, body, keep

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Stale(Exception):
    """A reused keep-alive connection was closed by the server before any answer."""


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)  # ValueError on garbage: a connection error
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HTTPConnectionError("malformed chunked body")


def _describe(e: BaseException) -> str:
    if isinstance(e, asyncio.IncompleteReadError):
        return f"server closed the connection after {len(e.partial)} of {e.expected or 'more'} bytes (truncated answer)"
    if isinstance(e, asyncio.LimitOverrunError):
        return "response head too large"
    if isinstance(e, ValueError):
        return f"malformed HTTP response ({e})"
    return str(e) or type(e).__name__


_SSL: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process (the certificate store is loaded once): httpx's when
    installed (the trust store the OpenAI SDK used), else the system default."""
    global _SSL
    if _SSL is None:
        try:
            import httpx2

            _SSL = httpx2.create_ssl_context()
        except (ImportError, AttributeError):
            _SSL = ssl.create_default_context()
    return _SSL
