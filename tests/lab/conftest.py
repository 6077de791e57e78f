"""Shared fixtures of the lab tests: tiny scene and chart runs and a micro teacher-student pair built in a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def scene_run(tmp_path_factory) -> Path:
    """A 24-item lab run of the two scene families (fast to render)."""
    from deltaprompts.lab.data import make_run

    out = tmp_path_factory.mktemp("lab") / "scenes"
    make_run(out, 24, 5, families=("scene.grid", "scene.shapes"))
    return out


@pytest.fixture(scope="session")
def chart_run(tmp_path_factory) -> Path:
    """A 6-item lab run of bar charts."""
    from deltaprompts.lab.data import make_run

    out = tmp_path_factory.mktemp("lab") / "bars"
    make_run(out, 6, 3, families=("chart.bar",))
    return out


@pytest.fixture(scope="session")
def micro_pair(tmp_path_factory, scene_run) -> dict[str, Path]:
    """A micro teacher and student (one shared tokenizer) trained 3 steps each and saved."""
    import torch

    from deltaprompts.lab import build, data
    from deltaprompts.store import RunStore

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("micro_pair")
    items = list(RunStore(scene_run).iter_items())
    tok = build.train_tokenizer([data.prompt_text(it) for it in items] + [it.question.answer for it in items])
    out = {}
    for role, size in (("teacher", build.ModelSize(32, 1, 48, 1, 2)), ("student", build.ModelSize(16, 1, 32, 1, 2))):
        model, proc = build.new_model(tok, size, 32, 16, seed=1)
        examples = build.Examples([(scene_run, items)], proc, data.QUESTION_FAMILIES)
        build.train(model, examples, build.TrainConfig(steps=3, batch=4, warmup=1), model.config.image_seq_length, 0)
        model.save_pretrained(root / role)
        proc.save_pretrained(root / role)
        out[role] = root / role
    return out
