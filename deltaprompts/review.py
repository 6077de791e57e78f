"""Review a run by eye: serve its gallery on 127.0.0.1 with accept / reject and a note per item.

Decisions go to `RUN/review.jsonl`, one line each, appended flushed and fsynced (store.JsonlLog), never
rewritten: a line is keyed by (item, seq), seq counting the lines before it, so every decision is kept
and the one with the highest seq (the last) is the item's decision. `rejected(run)` is what screen,
split and export read: they leave those items out and say how many.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from deltaprompts.errors import UserError
from deltaprompts.review_log import MAX_NOTE, Decision, latest, open_log
from deltaprompts.store import RunStore, confined, now

FILES = "/files/"  # the URL prefix the run's own files (images) are served under
MAX_BODY = 16_384


class ReviewServer(ThreadingHTTPServer):
    """The review page of one run; `serve_forever` in a thread or the foreground, `shutdown` to stop."""

    daemon_threads = True

    def __init__(self, run_dir: Path | str, port: int = 0, limit: int = 500):
        self.store = RunStore(run_dir)
        self.store.read_manifest()
        self.run = self.store.root.resolve()
        self.ids = {it.id for it in self.store.iter_items()}
        self.limit = limit
        self.lock = threading.Lock()  # one append at a time: seq must be unique
        self.log = open_log(self.run, writer=True)
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def record(self, body: bytes) -> Decision:
        """Validate a POST body and append it; raises ValueError with a one-line reason."""
        try:
            data = json.loads(body)
        except ValueError:
            raise ValueError("body is not JSON") from None
        if not isinstance(data, dict) or set(data) - {"item", "decision", "note"}:
            raise ValueError("body must be an object with item, decision and note")
        if data.get("item") not in self.ids:
            raise ValueError(f"unknown item {str(data.get('item'))[:80]!r}")
        note = data.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise ValueError(f"note must be a string of at most {MAX_NOTE} characters")
        if data.get("decision") not in ("accept", "reject"):
            raise ValueError("decision must be accept or reject")
        with self.lock:
            try:
                d = Decision(item=data["item"], decision=data["decision"], note=note, seq=len(self.log), at=now())
            except ValidationError as e:
                raise ValueError(str(e).splitlines()[0]) from None
            self.log.append([d])
        return d


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: the CLI says where it serves
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        from deltaprompts.gallery import gallery_page

        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/index.html"):
            review = {i: d.model_dump() for i, d in latest(self.server.run).items()}
            page = gallery_page(self.server.run, self.server.limit, FILES.rstrip("/"), review=review)
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if path.startswith(FILES):
            try:
                f = confined(self.server.run, path[len(FILES):], "requested file")
            except UserError:
                return self._json(403, {"error": "path outside the run"})
            if f.is_file():
                ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
                return self._send(200, f.read_bytes(), ctype)
        self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/review":
            return self._json(404, {"error": "not found"})
        # JSON only: a cross-site form cannot send it without a CORS preflight, which this server never grants
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            return self._json(415, {"error": "Content-Type must be application/json"})
        length = self.headers.get("Content-Length") or "0"
        size = int(length) if length.isdigit() else -1
        if not 0 <= size <= MAX_BODY:
            return self._json(413, {"error": f"Content-Length must be 0 to {MAX_BODY}"})
        try:
            d = self.server.record(self.rfile.read(size))
        except ValueError as e:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
        self._json(200, {"ok": True, "item": d.item, "decision": d.decision, "seq": d.seq})
