"""Distillation on TRL with the shipped toy pair: a few CPU steps in each mode move the loss and save a
student that loads as an hf: backend and answers; bad input is refused before any training."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from deltaprompts.errors import UserError
from deltaprompts.store import RunStore

pytest.importorskip("trl")

TEACHER, STUDENT = "toy:teacher", "toy:student"


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    """A 12-item lab run of the two scene families (fast to render)."""
    import torch

    from deltaprompts.lab.data import make_run

    torch.set_num_threads(1)  # tests run two workers on two cores
    out = tmp_path_factory.mktemp("lab") / "scenes"
    make_run(out, 12, 5, families=("scene.grid", "scene.shapes"))
    return out


def _scored_copy(scene_run, tmp_path):
    """A copy of the run whose scores/ hold toy-teacher samples (two per item, the first correct), as
    score_run writes them, so off-policy distillation reuses them instead of sampling."""
    from deltaprompts.divergence.records import Sample
    from deltaprompts.models.specs import load_backend
    from deltaprompts.store import JsonlLog

    run = tmp_path / "scored"
    shutil.copytree(scene_run, run)
    (run / "scores").mkdir()
    (run / "scores" / "meta.json").write_text(json.dumps({"teacher": load_backend(TEACHER).identity,
                                                          "prompt_format": "plain"}))
    log = JsonlLog(run / "scores" / "samples-teacher.jsonl", Sample, lambda s: (s.item, s.index))
    log.append([Sample(item=it.id, index=i, text=it.question.answer if i == 0 else "wrong", answer_class="x",
                       score=1.0 if i == 0 else 0.0) for it in RunStore(run).iter_items() for i in (0, 1)])
    return run


@pytest.mark.parametrize("mode", ["off-policy", "on-policy"])
def test_distill_trains_and_saves_a_student_that_answers(mode, scene_run, tmp_path):
    from deltaprompts.distill import DistillConfig, distill
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.prompts import build_request
    from deltaprompts.models.specs import load_backend

    run = _scored_copy(scene_run, tmp_path)
    items = list(RunStore(run).iter_items())
    cfg = DistillConfig(mode=mode, steps=4, batch=4, k=2, max_new_tokens=4, lr=1e-3, warmup=0)
    rep = distill(run, TEACHER, STUDENT, tmp_path / "out", cfg, eval_run=scene_run)
    assert len(rep["losses"]) == 4 and len(set(rep["losses"])) > 1  # the loss moves
    assert rep["trainer"] == {"off-policy": "SFTTrainer", "on-policy": "DistillationTrainer"}[mode]
    assert 0 <= rep["before"]["overall"] <= 1 and 0 <= rep["after"]["overall"] <= 1
    if mode == "off-policy":  # the teacher's correct samples on disk, one per item, no new model calls
        assert rep["data"] == {"source": "scores/samples-teacher.jsonl", "rows": len(items),
                               "items_with_correct_answer": len(items)}
        assert rep["losses"][-1] < rep["losses"][0]
    saved = json.loads((tmp_path / "out" / "distill.json").read_text())
    assert saved["config"]["mode"] == mode and set(saved["timings"]) == {"setup", "train", "total"}
    backend = load_backend(f"hf:{tmp_path / 'out'}")
    answers = backend.sample([build_request(items[0], run, "plain")], Sampling(max_new_tokens=4, seed=0), [[0]])
    assert isinstance(answers[0][0].text, str)


def test_gkd_lambda_mixes_teacher_responses_into_on_policy_batches(scene_run, tmp_path):
    """λ < 1: a seeded share of the generation batches trains on the teacher's verified responses
    (images included), the rest on the student's own samples; the loss moves."""
    from deltaprompts.distill import DistillConfig, distill

    run = _scored_copy(scene_run, tmp_path)
    cfg = DistillConfig(mode="on-policy", lmbda=0.5, steps=8, batch=2, k=2, max_new_tokens=4, lr=1e-3, warmup=0)
    rep = distill(run, TEACHER, STUDENT, tmp_path / "out", cfg)
    assert rep["batches"]["teacher"] > 0 and rep["batches"]["on_policy"] > 0
    assert sum(rep["batches"].values()) >= 8 and len(set(rep["losses"])) > 1
    assert rep["data"]["items_with_teacher_response"] == len(list(RunStore(run).iter_items()))
    again = distill(run, TEACHER, STUDENT, tmp_path / "again", cfg)
    assert again["batches"] == rep["batches"]  # the draws are seeded


def test_lora_adapters_are_merged_into_the_saved_student(scene_run, tmp_path):
    from deltaprompts.distill import DistillConfig, distill
    from deltaprompts.models.specs import load_backend

    run = _scored_copy(scene_run, tmp_path)
    rep = distill(run, TEACHER, STUDENT, tmp_path / "out", DistillConfig(steps=2, batch=2, lora_r=4, lr=1e-2))
    assert len(rep["losses"]) == 2
    assert not list((tmp_path / "out").glob("adapter_*"))  # a plain model folder, no adapter files
    load_backend(f"hf:{tmp_path / 'out'}")


def test_distill_refuses_bad_input(scene_run, tmp_path):
    from deltaprompts.distill import DistillConfig, distill

    with pytest.raises(UserError, match="--mode"):
        distill(scene_run, TEACHER, STUDENT, tmp_path / "a", DistillConfig(mode="sideways"))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="not in"):
        distill(scene_run, TEACHER, STUDENT, tmp_path / "b", DistillConfig(), item_ids=["nope"])
    with pytest.raises(UserError, match="local transformers"):  # on-policy reads the teacher's logits
        distill(scene_run, "sim:teacher", STUDENT, tmp_path / "c", DistillConfig(mode="on-policy"))
    with pytest.raises(UserError, match="--beta"):
        distill(scene_run, TEACHER, STUDENT, tmp_path / "d", DistillConfig(mode="on-policy", beta=2.0))
    with pytest.raises(UserError, match="--lmbda"):
        distill(scene_run, TEACHER, STUDENT, tmp_path / "e", DistillConfig(mode="on-policy", lmbda=1.5))


def test_cli_distill(scene_run, tmp_path):
    from deltaprompts.cli import app

    base = ["distill", str(scene_run), "--teacher", TEACHER, "--student", STUDENT]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o"), "--mode", "sideways"])
    assert res.exit_code == 2 and "sideways" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o2"), "--mode", "on-policy", "--steps", "2",
                                   "--batch", "2", "--beta", "0.5", "--max-new-tokens", "3"])
    assert res.exit_code == 0, res.output
    assert "DistillationTrainer" in res.output
    assert json.loads((tmp_path / "o2" / "distill.json").read_text())["config"]["beta"] == 0.5
    res = CliRunner().invoke(app, ["lab", "distill", "--help"])
    assert res.exit_code != 0  # one command: `deltaprompts distill`


def test_off_policy_samples_the_items_without_stored_teacher_samples(scene_run, tmp_path):
    """A pipeline run root's scores/ hold Δ records but no samples: those items get fresh samples;
    items with stored samples reuse them (no new calls for them)."""
    from deltaprompts.distill import DistillConfig, teacher_answers
    from deltaprompts.divergence.records import Sample
    from deltaprompts.models.specs import load_backend
    from deltaprompts.store import JsonlLog

    spec = "sim:t?skill=1.0"
    run = tmp_path / "root"
    shutil.copytree(scene_run, run)
    items = list(RunStore(run).iter_items())[:6]
    (run / "scores").mkdir()
    (run / "scores" / "meta.json").write_text(json.dumps({"teacher": load_backend(spec).identity,
                                                          "prompt_format": "plain"}))
    cfg = DistillConfig(k=2)
    rows, source = teacher_answers(run, items, spec, cfg)  # no samples file: every item sampled afresh
    assert source == "2 fresh teacher samples per item" and rows
    assert {it.id for it, _ in rows} <= {it.id for it in items}
    log = JsonlLog(run / "scores" / "samples-teacher.jsonl", Sample, lambda s: (s.item, s.index))
    log.append([Sample(item=it.id, index=0, text="stored", answer_class="x", score=1.0) for it in items[:2]])
    rows, source = teacher_answers(run, items, spec, cfg)
    assert source == "scores/samples-teacher.jsonl, and 2 fresh teacher samples for 4 items"
    assert [a for it, a in rows if it.id in {i.id for i in items[:2]}] == ["stored", "stored"]
    assert "stored" not in [a for it, a in rows if it.id not in {i.id for i in items[:2]}]
