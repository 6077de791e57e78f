"""Exports load back with the real readers: datasets (parquet, load_dataset, load_from_disk), LLaVA JSON, chat JSONL."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from deltaprompts.errors import UnknownNameError, UserError
from deltaprompts.exports import export_run
from deltaprompts.store import ScoreStore
from deltaprompts.models.prompts import render_prompt
from deltaprompts.store import RunStore

datasets = pytest.importorskip("datasets")
COLUMNS = {"id", "image", "question", "answer", "answer_type", "options", "tolerance", "abs_tol", "tolerance_source",
           "family", "question_family", "tags", "delta", "target", "target_source", "target_model", "target_sample",
           "target_score", "more_images", "locale"}


def pixels(image_or_path):
    im = image_or_path if isinstance(image_or_path, Image.Image) else Image.open(image_or_path)
    return np.asarray(im.convert("RGB"))


def test_hf_export_loads_with_load_dataset_parquet_and_load_from_disk(scored_run, tmp_path):
    out = tmp_path / "hf"
    summary = export_run(scored_run, "hf", out, shard_rows=5)
    items = {it.id: it for it in RunStore(scored_run).iter_items()}
    deltas = ScoreStore(scored_run).deltas()
    shards = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert shards == [f"train-0000{k}-of-00003.parquet" for k in range(3)]
    assert summary.items == 12 and (out / "export.json").exists()
    cache = str(tmp_path / "cache")
    loaded = [datasets.load_dataset(str(out), cache_dir=cache)["train"],
              datasets.load_dataset("parquet", data_dir=str(out / "data"), cache_dir=cache)["train"],
              datasets.load_from_disk(str(out / "arrow"))["train"]]
    for ds in loaded:
        assert set(ds.column_names) == COLUMNS and len(ds) == 12
        assert isinstance(ds.features["image"], datasets.Image)
    for row in loaded[0]:
        it = items[row["id"]]
        assert np.array_equal(pixels(row["image"]), pixels(scored_run / it.image.path))
        assert row["question"] == render_prompt(it.question, "plain") and row["answer"] == it.question.answer
        assert row["delta"] == pytest.approx(deltas[it.id].value)
        assert (json.loads(row["options"]) if row["options"] else None) == it.question.options
        assert json.loads(row["tags"]) == it.tags and row["question_family"] == it.question.question_family
        q = it.question
        assert (row["tolerance"], row["abs_tol"], row["tolerance_source"]) == (q.tolerance, q.abs_tol, q.tolerance_source)
    assert [r["id"] for r in loaded[1]] == [r["id"] for r in loaded[2]]


def test_parquet_export_of_an_unscored_run_has_null_deltas(generated_run, tmp_path):
    out = tmp_path / "pq"
    export_run(generated_run, "parquet", out, prompt_format="raw")
    assert not (out / "arrow").exists()
    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), cache_dir=str(tmp_path / "c"))["train"]
    items = {it.id: it for it in RunStore(generated_run).iter_items()}
    assert all(r["delta"] is None for r in ds)
    assert all(r["question"] == items[r["id"]].question.text for r in ds)


def test_llava_export_points_at_copied_images(scored_run, tmp_path):
    out = tmp_path / "llava"
    summary = export_run(scored_run, "llava", out, prompt_format="boxed")
    assert summary.files == ["llava.json"] and summary.images == 6  # two questions per image, each image once
    records = json.loads((out / "llava.json").read_text())
    items = {it.id: it for it in RunStore(scored_run).iter_items()}
    assert len(records) == 12
    for r in records:
        it = items[r["id"]]
        human, gpt = r["conversations"]
        assert human["from"] == "human" and human["value"] == "<image>\n" + render_prompt(it.question, "boxed")
        assert gpt == {"from": "gpt", "value": f"\\boxed{{{it.question.answer}}}"}
        assert (out / r["image"]).read_bytes() == (scored_run / it.image.path).read_bytes()


def test_messages_jsonl_renders_through_a_real_processor_chat_template(scored_run, tmp_path):
    pytest.importorskip("transformers")
    from transformers import AutoProcessor

    from deltaprompts.models.tiny import build_tiny_vlm

    out = tmp_path / "msgs"
    export_run(scored_run, "messages", out)
    proc = AutoProcessor.from_pretrained(build_tiny_vlm("llava", tmp_path / "tiny"))
    image_id = proc.tokenizer.convert_tokens_to_ids("<image>")
    ds = datasets.load_dataset("json", data_files=str(out / "messages.jsonl"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    items = {it.id: it for it in RunStore(scored_run).iter_items()}
    assert len(ds) == 12
    for rec in ds:
        it = items[rec["id"]]
        text = proc.apply_chat_template(rec["messages"])
        prompt = proc.apply_chat_template(rec["messages"][:1], add_generation_prompt=True)
        assert "<image>" in prompt and render_prompt(it.question, "plain") in prompt
        assert text.startswith(prompt) and text[len(prompt):].startswith(it.question.answer)
        image = Image.open(out / rec["images"][0])
        encoded = proc(images=[image], text=[text])
        assert encoded["input_ids"][0].count(image_id) == 16  # the placeholder expanded to the image's tokens


def test_export_of_the_eval_side_takes_only_eval_items(scored_run, tmp_path):
    import shutil

    from deltaprompts.split import SplitConfig, split_run

    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    with pytest.raises(UserError, match="deltaprompts split"):
        export_run(run, "messages", tmp_path / "x", split="eval")
    result = split_run(run, SplitConfig(eval_fraction=0.5))
    export_run(run, "messages", tmp_path / "eval", split="eval")
    export_run(run, "parquet", tmp_path / "evalpq", split="eval")
    ids = [json.loads(line)["id"] for line in (tmp_path / "eval" / "messages.jsonl").read_text().splitlines()]
    assert sorted(ids) == result.eval
    assert [p.name for p in (tmp_path / "evalpq" / "data").iterdir()] == ["test-00000-of-00001.parquet"]


def test_bad_requests_are_clear_errors_and_leave_old_exports_whole(scored_run, tmp_path):
    with pytest.raises(UnknownNameError, match="export format 'csv'.*Allowed: hf, llava, lmms-eval, messages, parquet"):
        export_run(scored_run, "csv", tmp_path / "o")
    with pytest.raises(UnknownNameError, match="prompt format"):
        export_run(scored_run, "llava", tmp_path / "o", prompt_format="fancy")
    with pytest.raises(UserError, match="thinking cannot make training targets"):
        export_run(scored_run, "messages", tmp_path / "o", prompt_format="thinking")
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))  # nothing half-written
    with pytest.raises(UserError, match="inside the run"):
        export_run(scored_run, "llava", scored_run / "export")
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        export_run(scored_run, "llava", keep)
    with pytest.raises(UserError, match="refusing to delete"):
        export_run(scored_run, "llava", keep, overwrite=True)
    assert (keep / "notes.txt").read_text() == "mine"
    out = tmp_path / "again"
    export_run(scored_run, "llava", out)
    export_run(scored_run, "messages", out, overwrite=True)
    assert (out / "messages.jsonl").exists() and not (out / "llava.json").exists()


def test_image_bytes_in_parquet_are_the_run_png(scored_run, tmp_path):
    import pyarrow.parquet as pq

    export_run(scored_run, "parquet", tmp_path / "pq")
    table = pq.read_table(next((tmp_path / "pq" / "data").glob("*.parquet")))
    items = {it.id: it for it in RunStore(scored_run).iter_items()}
    for rid, image in zip(table.column("id").to_pylist(), table.column("image").to_pylist()):
        assert image["bytes"] == (scored_run / items[rid].image.path).read_bytes()
        assert Image.open(io.BytesIO(image["bytes"])).format == "PNG"
