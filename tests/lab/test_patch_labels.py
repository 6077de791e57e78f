"""The auxiliary per-patch colour/shape supervision of the lab build (TrainConfig.patch_labels)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("transformers")


def _items(run):
    from deltaprompts.store import RunStore

    return list(RunStore(run).iter_items())


def _micro(run, patch_size=None):
    """A micro lab model (64 px, 16-px patches) on the run's items, and its Examples."""
    from deltaprompts.lab import build, data

    items = _items(run)
    tok = build.train_tokenizer([data.prompt_text(it) for it in items] + [it.question.answer for it in items])
    model, proc = build.new_model(tok, build.ModelSize(32, 1, 48, 1, 2), 64, 16, seed=1)
    return tok, model, build.Examples([(run, items)], proc, data.QUESTION_FAMILIES, patch_size=patch_size)


def test_patch_targets_follow_the_facts(scene_run):
    from deltaprompts.lab import build, data

    for it in {it.image.path: it for it in _items(scene_run)}.values():
        t = data.patch_targets(it, 128, 16, build.PATCH_COLORS, build.PATCH_SHAPES)
        assert t.shape == (2, 64)
        covered = set()
        for e in it.facts.entities:  # the patch under each object's centre carries its colour and shape
            k = int(e.attrs["y"] * 128 / it.facts.height // 16) * 8 + int(e.attrs["x"] * 128 / it.facts.width // 16)
            assert t[0, k] == build.PATCH_COLORS.index(e.attrs["color"])
            assert t[1, k] == build.PATCH_SHAPES.index(e.attrs["shape"])
            x0, y0, x1, y1 = e.box
            covered |= {r * 8 + c for r in range(8) for c in range(8)
                        if x0 < (c + 1) * 16 and c * 16 < x1 and y0 < (r + 1) * 16 and r * 16 < y1}
        empty = [k for k in range(64) if k not in covered]
        assert empty and all(t[0, k] == len(build.PATCH_COLORS) and t[1, k] == len(build.PATCH_SHAPES) for k in empty)


def test_patch_targets_ignore_images_that_are_not_scenes(scene_run):
    from deltaprompts.lab import build, data

    it = _items(scene_run)[0]
    chart = it.model_copy(update={"family": "chart.bar"})
    assert (data.patch_targets(chart, 128, 16, build.PATCH_COLORS, build.PATCH_SHAPES) == -100).all()
    assert (data.patch_targets(it, 128, 16, ("red",), build.PATCH_SHAPES) == -100).all()  # a colour off the list


def test_training_with_patch_labels_learns_them_and_saves_a_plain_llava(scene_run, tmp_path):
    import torch

    from deltaprompts.lab import build

    torch.set_num_threads(1)
    tok, model, examples = _micro(scene_run, patch_size=16)
    batch = examples.batch(random.Random(0), 4, 2, model.config.image_seq_length)
    assert batch["patch_labels"].shape == (4, 2, 16)
    logs: list[str] = []
    stats = build.train(model, examples, build.TrainConfig(steps=60, batch=8, warmup=1, patch_labels=1.0),
                        model.config.image_seq_length, 0, log=logs.append)
    first, last = (float(m.split("patch loss ")[1].split()[0]) for m in (logs[0], logs[-1]))
    assert last < 0.7 * first and stats["patch_loss"] == pytest.approx(last, abs=1e-3)
    assert not model.model.multi_modal_projector._forward_hooks  # the probe is gone
    plain, _ = build.new_model(tok, build.ModelSize(32, 1, 48, 1, 2), 64, 16, seed=1)
    assert set(model.state_dict()) == set(plain.state_dict())
    model.save_pretrained(tmp_path / "m")
    from transformers import AutoModelForImageTextToText

    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_patch_probe_loss_is_zero_without_labelled_patches(scene_run):
    import torch

    from deltaprompts.lab import build

    _, model, examples = _micro(scene_run, patch_size=16)
    batch = examples.batch(random.Random(0), 2, 1, model.config.image_seq_length)
    targets = batch.pop("patch_labels")
    probe = build.PatchProbe(model)
    model(**batch)
    assert probe.loss(targets).item() > 0
    none = probe.loss(torch.full_like(targets, -100))  # a batch of charts only: no NaN
    assert none.item() == 0.0 and none.requires_grad
    probe.close()


def test_patch_labels_need_targets(scene_run):
    from deltaprompts.errors import UserError
    from deltaprompts.lab import build

    _, model, examples = _micro(scene_run)
    with pytest.raises(UserError, match="patch_size"):
        build.train(model, examples, build.TrainConfig(steps=1, batch=2, patch_labels=1.0), model.config.image_seq_length, 0)


def test_vision_steps_train_the_tower_first_then_hold_it_for_the_decoder(scene_run):
    import torch

    from deltaprompts.lab import build

    torch.set_num_threads(1)
    _, model, examples = _micro(scene_run, patch_size=16)
    vision = {n: p.detach().clone() for n, p in model.named_parameters() if build.is_vision(n)}
    seen: dict[str, torch.Tensor] = {}
    logs: list[str] = []
    cfg = build.TrainConfig(steps=3, batch=8, warmup=1, vision_steps=60)
    real_train_vision = build.train_vision

    def spy(model, *args, **kwargs):  # the tower as the decoder stage finds it
        out = real_train_vision(model, *args, **kwargs)
        seen.update({n: p.detach().clone() for n, p in model.named_parameters() if n in vision})
        return out

    build.train_vision = spy
    try:
        stats = build.train(model, examples, cfg, model.config.image_seq_length, 0, log=logs.append)
    finally:
        build.train_vision = real_train_vision
    vision_logs = [m for m in logs if m.startswith("vision step")]
    first, last = (float(m.split("patch loss ")[1].split()[0]) for m in (vision_logs[0], vision_logs[-1]))
    assert last < 0.7 * first and stats["vision_steps"] == 60 and stats["steps"] == 3
    assert any(not torch.equal(seen[n], vision[n]) for n in vision)  # stage 1 moved the tower...
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n].detach(), seen[n]) for n in vision)  # ...stage 2 did not
    assert all(p.requires_grad for p in model.parameters())  # and the model is left trainable
    assert not model.model.multi_modal_projector._forward_hooks


def test_vision_steps_need_targets(scene_run):
    from deltaprompts.errors import UserError
    from deltaprompts.lab import build

    _, model, examples = _micro(scene_run)
    with pytest.raises(UserError, match="vision_steps"):
        build.train(model, examples, build.TrainConfig(steps=1, batch=2, vision_steps=5), model.config.image_seq_length, 0)
