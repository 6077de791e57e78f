"""The lab pair: a micro pair saves and loads through hf:, and the shipped pair reproduces its recorded accuracy."""

from __future__ import annotations

import json

import pytest

from deltaprompts.errors import UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.prompts import build_request
from deltaprompts.models.specs import load_backend
from deltaprompts.store import RunStore


def test_lab_runs_hold_only_lab_question_families(scene_run):
    from deltaprompts.lab.data import QUESTION_FAMILIES

    items = list(RunStore(scene_run).iter_items())
    assert len(items) == 24
    assert {it.question.question_family for it in items} <= set(QUESTION_FAMILIES)
    assert all(it.question.options is None for it in items)  # short answers, no multiple choice
    manifest = RunStore(scene_run).read_manifest()
    assert manifest["counts"]["items"] == 24 and manifest["status"] == "complete"


def test_lab_run_is_reused_only_when_the_request_matches(scene_run, tmp_path):
    from deltaprompts.lab.data import make_run

    before = (scene_run / "manifest.json").read_text()
    make_run(scene_run, 24, 5, families=("scene.grid", "scene.shapes"), reuse=True)
    assert (scene_run / "manifest.json").read_text() == before  # same request: kept as it is
    with pytest.raises(UserError, match="not empty"):
        make_run(scene_run, 24, 6, families=("scene.grid", "scene.shapes"))


def test_lab_run_shards_carry_the_counts_of_the_manifest(scene_run):
    store = RunStore(scene_run)
    manifest = store.read_manifest()
    assert manifest["counts"] == store.tally()["counts"] and manifest["rejections"] == store.tally()["rejections"]
    assert sum(store.shard_stats(k).items for k in range(store.n_shards())) == 24
    assert not list(scene_run.parent.glob(f".{scene_run.name}.*"))  # no raw or partial folder left behind


def test_lab_templates_ship_in_the_package_but_load_only_when_asked():
    from deltaprompts.lab.data import CAPTION_FAMILIES, QUESTION_FAMILIES, template_dir
    from deltaprompts.questions import load_templates

    lab = {t.name for t in load_templates((str(template_dir()),))} - {t.name for t in load_templates()}
    assert lab == {q for q in QUESTION_FAMILIES + CAPTION_FAMILIES if q.startswith("chart.") or q in CAPTION_FAMILIES}
    assert template_dir().is_dir() and "templates" in template_dir().parts


def test_lab_run_rejects_unknown_question_families(tmp_path):
    from deltaprompts.lab.data import make_run

    with pytest.raises(UserError, match="not lab families"):
        make_run(tmp_path / "x", 5, 0, question_families=["chart.argmax"])


def test_encoder_matches_the_processor(micro_pair, scene_run):
    from PIL import Image
    from transformers import AutoProcessor

    from deltaprompts.lab import data

    proc = AutoProcessor.from_pretrained(micro_pair["teacher"])
    item = next(RunStore(scene_run).iter_items())
    enc = data.Encoder(proc)
    turns = [(data.prompt_text(item), item.question.answer)]
    ids, labels = enc.encode(turns, 4)
    text, _ = enc.chat(turns)
    with Image.open(scene_run / item.image.path) as im:
        ref = proc(images=[[im.convert("RGB")]], text=[text], return_tensors="pt")
    assert ref["input_ids"][0].tolist() == ids
    answer = proc.tokenizer.decode([t for t in labels if t != -100])
    assert answer == item.question.answer + proc.tokenizer.eos_token  # loss on the answer and end of turn only
    pixels = data.to_pixels(data.load_pixels(scene_run, [item.image.path], proc), proc)
    assert float((pixels[0] - ref["pixel_values"][0]).abs().max()) < 1e-6


def test_micro_pair_loads_through_hf_and_answers(micro_pair, scene_run):
    items = list(RunStore(scene_run).iter_items())[:3]
    for role in ("teacher", "student"):
        backend = load_backend(f"hf:{micro_pair[role]}?batch_size=4")
        out = backend.sample([build_request(it, scene_run) for it in items], Sampling(temperature=0.0, max_new_tokens=4),
                             [[0]] * len(items))
        assert [len(c) for c in out] == [1, 1, 1] and all(isinstance(c[0].text, str) for c in out)


def test_build_writes_both_models_with_accuracy(tmp_path):
    from deltaprompts.lab import build

    tiny = build.ModelSize(16, 1, 32, 1, 2)
    cfg = build.BuildConfig(image_size=32, patch_size=16, train_scene_items=30, eval_items=10, check_items=10,
                            teacher=tiny, student=tiny, teacher_train=build.TrainConfig(steps=2, batch=2, warmup=1),
                            student_train=build.TrainConfig(steps=1, batch=2, warmup=1))
    report = build.build(tmp_path / "pair", minutes=5, seed=3, cfg=cfg, log=lambda m: None,
                         families=("scene.grid",))
    for role in ("teacher", "student"):
        acc = json.loads((tmp_path / "pair" / role / "accuracy.json").read_text())
        assert acc["eval"]["n"] == 10 and acc["check"]["n"] == 10 and 0.0 <= acc["eval"]["overall"] <= 1.0
        assert acc["train"]["steps"] == getattr(cfg, f"{role}_train").steps
        assert load_backend(f"hf:{tmp_path / 'pair' / role}").identity.startswith("hf:")
    assert report["timings"]["total"] > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"out_dir": None}, "needs an output folder"),
    ({"out_dir": "x", "into_package": True}, "pick one"),
])
def test_build_needs_one_output_folder(kwargs, message, tmp_path):
    from deltaprompts.lab import build

    if kwargs["out_dir"]:
        kwargs["out_dir"] = tmp_path / kwargs["out_dir"]
    with pytest.raises(UserError, match=message):
        build.build(**kwargs, minutes=1, log=lambda m: None)
    assert not list(tmp_path.iterdir())


def test_build_refuses_to_write_into_the_package_unless_asked():
    from deltaprompts.lab import build

    with pytest.raises(UserError, match="--into-package"):
        build.build(build.shipped_dir(), minutes=1, log=lambda m: None)
    with pytest.raises(UserError, match="--into-package"):
        build.build(build.shipped_dir().parent / "elsewhere", minutes=1, log=lambda m: None)
    assert not (build.shipped_dir().parent / "elsewhere").exists()


def _shipped():
    from deltaprompts.models.toy import toy_model_dir

    try:
        return {role: toy_model_dir(role) for role in ("teacher", "student")}
    except UserError:
        return None


@pytest.mark.skipif(_shipped() is None, reason="the toy pair is not built in this installation")
def test_shipped_pair_reproduces_its_recorded_accuracy(tmp_path):
    """toy:teacher / toy:student, greedy, on the fixed 100-item check run: within 3 points of accuracy.json."""
    import torch

    from deltaprompts.lab import build
    from deltaprompts.lab.data import make_run

    torch.set_num_threads(1)
    dirs = _shipped()
    recorded = {role: json.loads((dirs[role] / "accuracy.json").read_text()) for role in dirs}
    run = tmp_path / "check"
    make_run(run, recorded["teacher"]["check"]["n"], recorded["teacher"]["check"]["seed"])
    items = list(RunStore(run).iter_items())
    for role in ("teacher", "student"):
        backend = load_backend(f"toy:{role}?batch_size=50")
        comps = backend.sample([build_request(it, run) for it in items], Sampling(temperature=0.0, max_new_tokens=8),
                               [[0]] * len(items))
        acc = build.accuracy(items, [c[0].text for c in comps])
        assert acc["n"] == recorded[role]["check"]["n"]
        assert abs(acc["overall"] - recorded[role]["check"]["overall"]) <= 0.03, role
    # the pair differs where it should: the student never saw the withheld families and fails them
    t, st = recorded["teacher"]["eval"], recorded["student"]["eval"]
    assert t["overall"] >= st["overall"] + 0.20  # the gap: the student at least 20 points below
    for fam in ("scene.query_color", "scene.largest_color"):
        assert fam not in recorded["student"]["question_families"] and st["families"][fam]["acc"] < 0.05
        assert t["families"][fam]["acc"] > 0.3


def test_cli_lab_build_rejects_a_bad_budget(tmp_path):
    from typer.testing import CliRunner

    from deltaprompts.cli import app

    res = CliRunner().invoke(app, ["lab", "build", "--out", str(tmp_path / "pair"), "--minutes", "0"])
    assert res.exit_code == 2 and "--minutes" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "pair").exists()
