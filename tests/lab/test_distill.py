"""Distillation: one step in each mode lowers its loss on a fixed batch; the driver and CLI save a student."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from deltaprompts.errors import UserError
from deltaprompts.store import RunStore


def _models(micro_pair, scene_run):
    from deltaprompts.lab import data, distill

    items = list(RunStore(scene_run).iter_items())[:8]
    student, s_proc = distill.load_model(micro_pair["student"], trainable=True)
    teacher, t_proc = distill.load_model(micro_pair["teacher"])
    return items, (student, data.Encoder(s_proc), distill.Pixels(scene_run, items, s_proc)), \
        (teacher, data.Encoder(t_proc), distill.Pixels(scene_run, items, t_proc))


def _step(model, loss, lr):
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss.backward()
    opt.step()
    opt.zero_grad()


def test_off_policy_step_lowers_the_sft_loss(micro_pair, scene_run):
    import torch

    from deltaprompts.lab import distill

    torch.manual_seed(0)
    items, (student, enc, pix), _ = _models(micro_pair, scene_run)
    batch = distill.sft_batch(enc, pix, student.config.image_seq_length, [(it, it.question.answer) for it in items],
                              "plain")
    before = distill.sft_loss(student, batch)
    _step(student, before, lr=0.5)
    with torch.no_grad():
        after = distill.sft_loss(student, batch)
    assert after.item() < before.item()


def test_on_policy_step_lowers_the_reverse_kl(micro_pair, scene_run):
    import torch

    from deltaprompts.lab import distill

    items, (student, s_enc, s_pix), (teacher, t_enc, t_pix) = _models(micro_pair, scene_run)
    cfg = distill.DistillConfig(mode="on-policy", max_new_tokens=4)
    samples = distill.sample_student(student, s_enc, s_pix, items, cfg, generator_seed=3)
    assert all(1 <= len(s) <= 4 for s in samples)
    sb = distill.kl_batch(s_enc, s_pix, student.config.image_seq_length, items, samples, "plain")
    tb = distill.kl_batch(t_enc, t_pix, teacher.config.image_seq_length, items, samples, "plain")
    before = distill.reverse_kl_loss(student, teacher, sb, tb)
    assert before.item() > 0
    _step(student, before, lr=0.5)
    with torch.no_grad():
        after = distill.reverse_kl_loss(student, teacher, sb, tb)
    assert after.item() < before.item()
    assert not any(p.grad is not None and p.grad.abs().sum() > 0 for p in teacher.parameters())


def test_reverse_kl_of_a_model_with_itself_is_zero(micro_pair, scene_run):
    from deltaprompts.lab import distill

    items, (student, s_enc, s_pix), _ = _models(micro_pair, scene_run)
    samples = distill.sample_student(student, s_enc, s_pix, items, distill.DistillConfig(max_new_tokens=3), 1)
    b = distill.kl_batch(s_enc, s_pix, student.config.image_seq_length, items, samples, "plain")
    assert distill.reverse_kl_loss(student, student, b, b).item() == pytest.approx(0.0, abs=1e-5)


def _scored_copy(scene_run, teacher_spec, tmp_path):
    """A copy of the run whose scores/ hold teacher samples (two per item, the first correct), as
    score_run writes them, so off-policy distillation reuses them instead of sampling."""
    import shutil

    from deltaprompts.divergence.records import Sample
    from deltaprompts.store import JsonlLog

    from deltaprompts.models.specs import load_backend

    run = tmp_path / "scored"
    shutil.copytree(scene_run, run)
    (run / "scores").mkdir()
    ident = load_backend(teacher_spec).identity
    (run / "scores" / "meta.json").write_text(json.dumps({"teacher": ident, "prompt_format": "plain"}))
    log = JsonlLog(run / "scores" / "samples-teacher.jsonl", Sample, lambda s: (s.item, s.index))
    log.append([Sample(item=it.id, index=i, text=it.question.answer if i == 0 else "wrong", answer_class="x",
                       score=1.0 if i == 0 else 0.0) for it in RunStore(run).iter_items() for i in (0, 1)])
    return run


@pytest.mark.parametrize("mode", ["off-policy", "on-policy"])
def test_distill_saves_a_student_that_loads(mode, micro_pair, scene_run, tmp_path):
    from deltaprompts.lab.distill import DistillConfig, distill
    from deltaprompts.models.specs import load_backend

    teacher = f"hf:{micro_pair['teacher']}"
    run = _scored_copy(scene_run, teacher, tmp_path)
    ids = [it.id for it in RunStore(run).iter_items()][:6]
    cfg = DistillConfig(mode=mode, steps=2, batch=3, k=2, max_new_tokens=3)
    rep = distill(run, teacher, f"hf:{micro_pair['student']}", tmp_path / "out", cfg, item_ids=ids, eval_run=scene_run)
    assert len(rep["losses"]) == 2 and rep["items"] == 6 and 0 <= rep["after"]["overall"] <= 1
    if mode == "off-policy":  # the teacher's correct samples on disk, one per item, no new model calls
        assert rep["data"] == {"source": "scores/samples-teacher.jsonl", "rows": 6, "items_with_correct_answer": 6}
    saved = json.loads((tmp_path / "out" / "distill.json").read_text())
    assert saved["config"]["mode"] == mode
    load_backend(f"hf:{tmp_path / 'out'}")


def test_distill_refuses_bad_input(micro_pair, scene_run, tmp_path):
    from deltaprompts.lab.distill import DistillConfig, distill

    teacher, student = f"hf:{micro_pair['teacher']}", f"hf:{micro_pair['student']}"
    with pytest.raises(UserError, match="--mode"):
        distill(scene_run, teacher, student, tmp_path / "a", DistillConfig(mode="sideways"))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="not in"):
        distill(scene_run, teacher, student, tmp_path / "b", DistillConfig(), item_ids=["nope"])
    with pytest.raises(UserError, match="local transformers"):  # on-policy reads the teacher's logits
        distill(scene_run, "sim:teacher", student, tmp_path / "c", DistillConfig(mode="on-policy"))


def test_cli_distill_reports_a_bad_mode_without_traceback(micro_pair, scene_run, tmp_path):
    from deltaprompts.cli import app

    res = CliRunner().invoke(app, ["distill", str(scene_run), "--teacher", f"hf:{micro_pair['teacher']}",
                                   "--student", f"hf:{micro_pair['student']}", "--out", str(tmp_path / "o"),
                                   "--mode", "sideways"])
    assert res.exit_code == 2 and "sideways" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["distill", str(scene_run), "--teacher", f"hf:{micro_pair['teacher']}",
                                   "--student", f"hf:{micro_pair['student']}", "--out", str(tmp_path / "o2"),
                                   "--mode", "on-policy", "--steps", "1", "--batch", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o2" / "distill.json").exists()


def test_off_policy_samples_the_items_without_stored_teacher_samples(scene_run, tmp_path):
    """A pipeline run root's scores/ hold Δ records but no samples: those items get fresh samples;
    items with stored samples reuse them (no new calls for them)."""
    import shutil

    from deltaprompts.divergence.records import Sample
    from deltaprompts.store import JsonlLog

    from deltaprompts.lab.distill import DistillConfig, teacher_answers
    from deltaprompts.models.specs import load_backend

    spec = "sim:t?skill=1.0"
    run = tmp_path / "root"
    shutil.copytree(scene_run, run)
    items = list(RunStore(run).iter_items())[:6]
    (run / "scores").mkdir()
    (run / "scores" / "meta.json").write_text(json.dumps({"teacher": load_backend(spec).identity,
                                                          "prompt_format": "plain"}))
    cfg = DistillConfig(k=2)
    rows, source = teacher_answers(run, items, spec, cfg)  # no samples file: every item sampled afresh
    assert source == "2 fresh teacher samples per item" and rows  # the sim teacher is right on some
    assert {it.id for it, _ in rows} <= {it.id for it in items}
    log = JsonlLog(run / "scores" / "samples-teacher.jsonl", Sample, lambda s: (s.item, s.index))
    log.append([Sample(item=it.id, index=0, text="stored", answer_class="x", score=1.0) for it in items[:2]])
    rows, source = teacher_answers(run, items, spec, cfg)
    assert source == "scores/samples-teacher.jsonl, and 2 fresh teacher samples for 4 items"
    assert [a for it, a in rows if it.id in {i.id for i in items[:2]}] == ["stored", "stored"]
    assert "stored" not in [a for it, a in rows if it.id not in {i.id for i in items[:2]}]
