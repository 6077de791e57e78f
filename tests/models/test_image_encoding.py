"""Images are encoded once per process and sent as stored when no resize is needed."""

import numpy as np
from PIL import Image

from deltaprompts.models import images as images_mod
from deltaprompts.models.base import Sampling
from deltaprompts.models.images import ImageCache, encode_png
from deltaprompts.models.specs import load_backend
from tests.models.openai_server import FakeOpenAIServer, decode_images, png_size


def test_an_rgb_png_within_max_pixels_is_sent_byte_for_byte(image_paths):
    assert encode_png(str(image_paths[0]), 10**6) == image_paths[0].read_bytes()


def test_resize_and_conversion_still_honour_max_pixels(tmp_path, image_paths):
    small = encode_png(str(image_paths[3]), 300 * 200 // 4)  # 300x200 -> at most 15000 pixels
    w, h = png_size(small)
    assert w * h <= 300 * 200 // 4 and abs(w / h - 200 / 300) < 0.02
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8)).save(rgba)
    with Image.open(__import__("io").BytesIO(encode_png(str(rgba), 10**6))) as im:
        assert im.mode == "RGB"


def test_one_image_is_read_once_for_many_requests_models_and_rounds(image_paths, make_request, monkeypatch):
    cache = ImageCache()
    monkeypatch.setattr(images_mod, "IMAGES", cache)
    monkeypatch.setattr("deltaprompts.models.openai_backend.IMAGES", cache)
    reads = []
    real = images_mod.encode_png
    monkeypatch.setattr(images_mod, "encode_png", lambda p, m: reads.append(p) or real(p, m))
    reqs = [make_request(image_paths[1], f"How many red circles are there? ({q})") for q in range(5)]
    with FakeOpenAIServer() as server:
        for model in ("teacher", "student"):
            backend = load_backend(f"openai:{model}@{server.url}")
            for start in (0, 2):  # two rounds
                backend.sample(reqs, Sampling(), [[start, start + 1]] * len(reqs))
            backend.close()
        assert server.count == 20
        assert all(png == image_paths[1].read_bytes() for body in server.bodies for png in decode_images(body))
    assert reads == [str(image_paths[1])] and cache.encodes == 1


def test_the_cache_is_bounded(image_paths):
    cache = ImageCache(max_bytes=1)
    for p in image_paths:
        cache.data_url(str(p), None, 10**6)
    assert len(cache._urls) == 1 and cache.encodes == len(image_paths)
