"""Images as models receive them, encoded once per process: the same image goes to the teacher and the
student, to every adaptive round and to every question asked about it, so its PNG data URL is made
once and reused (a bounded, thread-safe LRU)."""

from __future__ import annotations

import base64
import io
import math
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from deltaprompts.errors import UserError

if TYPE_CHECKING:
    from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_png(path: str, max_pixels: int) -> bytes:
    """The PNG bytes a model is sent for the image at `path`: the file as it is when it is an RGB PNG
    of at most `max_pixels` pixels; otherwise converted to RGB and shrunk (aspect kept, LANCZOS) to
    at most `max_pixels` pixels, then PNG-encoded. Raises UserError if the file is not a readable image."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            raw = f.read()
        with Image.open(io.BytesIO(raw)) as im:  # lazy: only the header is parsed here
            w, h = im.size
            if raw.startswith(PNG_SIGNATURE) and im.format == "PNG" and im.mode == "RGB" and w * h <= max_pixels:
                return raw
            im = im.convert("RGB")
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    return rgb_png(im, max_pixels)


def rgb_png(im: "Image.Image", max_pixels: int) -> bytes:
    """An RGB image as PNG bytes, shrunk first (aspect kept, LANCZOS) to at most `max_pixels` pixels."""
    from PIL import Image

    w, h = im.size
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        im = im.resize((max(1, int(w * s)), max(1, int(h * s))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


class ImageCache:
    """Data URLs by (path, content hash, max_pixels), least recently used dropped beyond `max_bytes`.

    `encodes` counts the images actually read and encoded (the rest were reused)."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.encodes = self.size = 0
        self._urls: OrderedDict[tuple[str, str | None, int], str] = OrderedDict()
        self._pending: dict[tuple[str, str | None, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def data_url(self, path: str, sha256: str | None, max_pixels: int) -> str:
        """The image as a `data:image/png;base64,` URL (see encode_png); raises UserError if unreadable."""
        key = (path, sha256, max_pixels)
        with self._lock:
            url = self._urls.get(key)
            if url is not None:
                self._urls.move_to_end(key)
                return url
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:  # concurrent first requests for one image wait for a single encoding
            with self._lock:
                url = self._urls.get(key)
            if url is None:
                url = "data:image/png;base64," + base64.b64encode(encode_png(path, max_pixels)).decode("ascii")
                with self._lock:
                    self.encodes += 1
                    self._urls[key] = url
                    self.size += len(url)
                    while self.size > self.max_bytes and len(self._urls) > 1:
                        _, old = self._urls.popitem(last=False)
                        self.size -= len(old)
        with self._lock:
            self._pending.pop(key, None)
        return url

    def cached(self, path: str, sha256: str | None, max_pixels: int) -> bool:
        """Whether the data URL is already made (data_url will not read the file)."""
        with self._lock:
            return (path, sha256, max_pixels) in self._urls

    def clear(self) -> None:
        with self._lock:
            self._urls.clear()
            self.size = 0


IMAGES = ImageCache()  # the process-wide cache every HTTP backend shares


class DecodedImages:
    """Decoded RGB images by (path, size, mtime), least recently used dropped beyond `max_bytes`: a
    local model (hf:) decodes each image once per process instead of once per generate call (the
    same image goes to both models, every adaptive round and every question about it)."""

    def __init__(self, max_bytes: int = 1024 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._images: OrderedDict[tuple[str, int, int], Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.decodes = 0

    def get(self, path: str) -> "Image.Image":
        """The image at `path` as RGB (shared: callers must not modify it); raises UserError if unreadable."""
        import os

        from PIL import Image

        try:
            st = os.stat(path)
            key = (str(path), st.st_size, st.st_mtime_ns)
            with self._lock:
                if key in self._images:
                    self._images.move_to_end(key)
                    return self._images[key]
            with Image.open(path) as im:
                rgb = im.convert("RGB")
        except OSError as e:
            raise UserError(f"cannot read image {path}: {e}") from None
        size = rgb.width * rgb.height * 3
        with self._lock:
            self.decodes += 1
            if size <= self.max_bytes:
                self._images[key] = rgb
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, old = self._images.popitem(last=False)
                    self._bytes -= old.width * old.height * 3
        return rgb


DECODED = DecodedImages()
