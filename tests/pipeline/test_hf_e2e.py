"""The whole loop on two tiny local transformers VLMs (random weights, k=2): every stage completes,
and a run killed at several steps resumes to exactly what an uninterrupted run makes."""

import json

import pytest

from deltaprompts.pipeline.rounds import run_pipeline
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore
from tests.pipeline.helpers import assert_no_duplicates, small_config

pytest.importorskip("transformers")


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import torch

    from deltaprompts.models.tiny import build_tiny_vlm

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    return build_tiny_vlm("llava", root / "teacher", seed=0), build_tiny_vlm("llava", root / "student", seed=1)


def config(root, models):
    teacher, student = models
    return small_config(
        root, rounds=1,
        models={"teacher": f"hf:{teacher}?threads=1", "student": f"hf:{student}?threads=1", "k": 2,
                "max_new_tokens": 6},
        seed={"generate": {"families": ["scene.shapes"], "n": 6, "cells": 2,
                           "vary": {"scene.shapes:n_objects": [3, 6]}}},
        mine={"min_support": 1, "describe": True, "describe_patterns": 2},
        synthesize={"budget": 4, "teacher_candidates": 1, "teacher_max_new_tokens": 16},
        screen={"min_delta": 0.0, "min_teacher_acc": 0.0})


def test_tiny_hf_models_end_to_end_with_kills(models, tmp_path):
    ref = tmp_path / "ref"
    m = run_pipeline(config(ref, models))
    assert m["status"] == "complete"
    rows = json.loads((ref / "rounds.json").read_text())
    assert [r["round"] for r in rows] == [0, 1] and rows[0]["generated"] == 6 and rows[1]["generated"] == 4
    assert rows[1]["teacher"]["replies"] == 4  # random weights write no JSON: rejected, templates fill in
    assert rows[1]["teacher"]["accepted"] == 0 and sum(rows[1]["teacher"]["rejected"].values()) == 4
    meta = ScoreStore(ref / "seed").meta()
    assert meta["teacher"].startswith("hf:") and meta["k"] == 2 and not meta["simulated"]
    assert len(ScoreStore(ref / "seed").deltas(required=True)) == 6 and len(ScoreStore(ref / "round-01" / "gen").deltas(required=True)) == 4
    assert all("token_kl" in d.values for d in ScoreStore(ref / "seed").deltas(required=True).values())  # both models score answers
    patterns = json.loads((ref / "mine" / "patterns.json").read_text())["patterns"]
    assert patterns and all(isinstance(p["description"], (str, type(None))) for p in patterns)
    assert m["counts"]["items"] == 10  # min_delta 0: every item is kept

    root = tmp_path / "run"
    cfg = config(root, models)
    for point in ("score:seed", "teacher:r01-000:0", "cell:r01-000", "score:1"):
        def hook(p, point=point):
            if p == point:
                raise Killed(p)
        with pytest.raises(Killed):
            run_pipeline(cfg, resume=(root / "manifest.json").exists(), hook=hook)
    run_pipeline(cfg, resume=True)
    assert json.loads((root / "rounds.json").read_text()) == rows
    assert [it.id for it in RunStore(root).iter_items()] == [it.id for it in RunStore(ref).iter_items()]
    assert ScoreStore(root).deltas(required=True) == ScoreStore(ref).deltas(required=True)
    assert_no_duplicates(root)
