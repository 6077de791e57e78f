"""The lab build's auxiliary per-patch supervision (scene colour/shape, bar rank/position) and chart share."""

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
        assert t.shape == (4, 64) and (t[2:] == -100).all()  # no bar labels on a scene
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
    assert (data.patch_targets(chart, 128, 16, build.PATCH_COLORS, build.PATCH_SHAPES)[:2] == -100).all()
    assert (data.patch_targets(it, 128, 16, ("red",), build.PATCH_SHAPES) == -100).all()  # a colour off the list


def test_bar_charts_get_each_bars_value_rank_and_position_where_the_bar_is_drawn(chart_run):
    import numpy as np
    from PIL import Image

    from deltaprompts.lab import build, data

    run = chart_run
    charts = {it.image.path: it for it in _items(run)}.values()
    assert charts
    for it in charts:
        t = data.patch_targets(it, 128, 16, build.PATCH_COLORS, build.PATCH_SHAPES)
        assert (t[:2] == -100).all()  # no scene labels on a chart
        bars = sorted(it.facts.entities, key=lambda e: e.box[0])
        values = sorted((e.attrs["value"] for e in bars), reverse=True)
        with Image.open(run / it.image.path) as im:
            px = np.asarray(im.convert("RGB").resize((128, 128)), dtype=float)
        sx, sy = 128 / it.facts.width, 128 / it.facts.height
        for place, e in enumerate(bars):
            x0, y0, x1, y1 = e.box
            k = int((y0 + y1) / 2 * sy // 16) * 8 + int((x0 + x1) / 2 * sx // 16)  # the patch under the bar's centre
            assert t[3, k] == place and t[2, k] == values.index(e.attrs["value"])
            colour = np.array([int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5)])
            for k in (t[3] == place).nonzero().flatten().tolist():  # every patch labelled with this bar shows it
                r, c = divmod(k, 8)
                patch = px[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16].reshape(-1, 3)
                assert (np.abs(patch - colour).sum(1) < 60).mean() >= 0.15
        assert (t[2] == data.MAX_BARS).sum() > 0 and ((t[2] == data.MAX_BARS) == (t[3] == data.MAX_BARS)).all()


def test_training_with_patch_labels_learns_them_and_saves_a_plain_llava(scene_run, tmp_path):
    import torch

    from deltaprompts.lab import build

    torch.set_num_threads(1)
    tok, model, examples = _micro(scene_run, patch_size=16)
    batch = examples.batch(random.Random(0), 4, 2, model.config.image_seq_length)
    assert batch["patch_labels"].shape == (4, 4, 16)
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


def test_bar_labels_train_two_more_heads_on_the_charts(chart_run):
    import torch

    from deltaprompts.lab import build, data

    torch.set_num_threads(1)
    _, model, examples = _micro(chart_run, patch_size=16)
    batch = examples.batch(random.Random(0), 4, 1, model.config.image_seq_length)
    targets = batch.pop("patch_labels")
    for bars, heads in ((False, 2), (True, 4)):
        probe = build.PatchProbe(model, bars)
        model(**batch)
        assert [h.out_features for h in probe.heads][2:] == [data.MAX_BARS + 1] * (heads - 2)
        assert (probe.loss(targets).item() > 0) == bars  # charts carry only bar labels
        probe.close()
    logs: list[str] = []
    stats = build.train(model, examples, build.TrainConfig(steps=1, batch=8, warmup=1, vision_steps=60, bar_labels=True),
                        model.config.image_seq_length, 0, log=logs.append)
    vision_logs = [m for m in logs if m.startswith("vision step")]
    first, last = (float(m.split("patch loss ")[1].split()[0]) for m in (vision_logs[0], vision_logs[-1]))
    assert last < 0.7 * first and stats["vision_steps"] == 60


def test_chart_share_sets_the_share_of_chart_images_in_a_batch(scene_run, chart_run):
    import torch

    from deltaprompts.errors import UserError
    from deltaprompts.lab import build, data

    items = {r: _items(r) for r in (scene_run, chart_run)}
    tok = build.train_tokenizer([data.prompt_text(it) for its in items.values() for it in its])
    _, proc = build.new_model(tok, build.ModelSize(32, 1, 48, 1, 2), 64, 16, seed=1)

    def charts_drawn(share: float) -> tuple[float, float]:
        """(share of 2,000 draws that are charts, share of the images that are charts)."""
        ex = build.Examples(list(items.items()), proc, data.QUESTION_FAMILIES, chart_share=share)
        rng, charts = random.Random(0), set(ex.charts)
        picks = [ex._pick(rng) for _ in range(2000)]
        return sum(i in charts for i in picks) / len(picks), len(charts) / len(ex)

    uniform, natural = charts_drawn(0.0)
    assert abs(uniform - natural) < 0.04 and natural < 0.4
    assert abs(charts_drawn(0.5)[0] - 0.5) < 0.04 and abs(charts_drawn(0.9)[0] - 0.9) < 0.03
    # without a share, a batch draws its images as before (rng.randrange over all images, first)
    ex = build.Examples(list(items.items()), proc, data.QUESTION_FAMILIES)
    r = random.Random(7)
    want = [r.randrange(len(ex)) for _ in range(5)]
    got = ex.batch(random.Random(7), 5, 1, 16)["pixel_values"]
    assert torch.equal(got, data.to_pixels(ex.pixels[torch.tensor(want)], proc))
    with pytest.raises(UserError, match="chart_share=0.3 needs both chart and scene"):
        build.Examples([(scene_run, items[scene_run])], proc, data.QUESTION_FAMILIES, chart_share=0.3)
