"""Shared fixtures of the model-backend tests: tiny VLM folders (built once per session), images, requests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deltaprompts.models.base import Message, Request

ARCHS = ("llava", "idefics3")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny random VLMs: `llava` and `idefics3` (end-of-turn boosted: short answers) and
    `llava_plain`, `idefics3_plain` (untouched random weights: greedy answers are not empty)."""
    pytest.importorskip("transformers")
    import torch

    from deltaprompts.models.tiny import build_tiny_vlm

    torch.set_num_threads(1)  # tests run two workers on two cores
    root = tmp_path_factory.mktemp("tiny_models")
    out = {}
    for arch in ARCHS:
        out[arch] = build_tiny_vlm(arch, root / arch)
        out[f"{arch}_plain"] = build_tiny_vlm(arch, root / f"{arch}_plain", eos_logit=0)
    return out


@pytest.fixture(scope="session")
def hf_backends(tiny_models):
    """One loaded HFBackend per tiny model (batch_size 8), shared by the session."""
    from deltaprompts.models.hf import HFBackend

    return {name: HFBackend(str(path), batch_size=8, threads=1) for name, path in tiny_models.items()}


@pytest.fixture(scope="session")
def image_paths(tmp_path_factory) -> list[Path]:
    """Four small random PNG images of different sizes."""
    root = tmp_path_factory.mktemp("images")
    paths = []
    for i, (h, w) in enumerate([(64, 80), (48, 48), (40, 96), (300, 200)]):
        path = root / f"img{i}.png"
        Image.fromarray(np.random.RandomState(i).randint(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _make_request(image: Path, text: str, rid: str | None = None) -> Request:
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    return Request(id=rid or f"{image.stem}:{text[:12]}", images=[str(image)], image_sha256=[sha],
                   messages=[Message(role="user", content=[{"type": "image"}, {"type": "text", "text": text}])])


@pytest.fixture(scope="session")
def make_request():
    """`make_request(image, text, rid=None)`: one user message with one image and `text`."""
    return _make_request


@pytest.fixture(scope="session")
def requests_(image_paths) -> list[Request]:
    """Three requests over three images, with questions in the tiny tokenizer's vocabulary."""
    return [_make_request(image_paths[0], "How many red circles are there?"),
            _make_request(image_paths[1], "What color is the square? Answer with a single word."),
            _make_request(image_paths[2], "Is there a blue triangle? Answer yes or no.")]
