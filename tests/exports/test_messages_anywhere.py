"""The messages export loads from any working directory and after the folder moves; export.json lists every file."""

import json
import os
import shutil

import pytest

from deltaprompts.exports import export_run
from deltaprompts.store import RunStore

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def moved(scored_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("msg") / "out"
    export_run(scored_run, "messages", out)
    dest = tmp_path_factory.mktemp("elsewhere") / "moved"
    shutil.move(out, dest)
    return dest


def test_export_json_lists_every_file_images_included(moved):
    summary = json.loads((moved / "export.json").read_text())
    written = sorted(str(p.relative_to(moved)) for p in moved.rglob("*") if p.is_file() and p.name != "export.json")
    assert sorted(summary["files"] + summary["image_files"]) == written
    assert summary["images"] == len(summary["image_files"]) > 0
    assert "data/train-00000-of-00001.parquet" in summary["files"]


def test_the_parquet_form_loads_from_another_directory_with_images_embedded(moved, scored_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # neither the export folder nor the run
    ds = datasets.load_dataset("parquet", data_files=str(moved / "data" / "*.parquet"),
                               cache_dir=str(tmp_path / "cache"))["train"]
    lines = [json.loads(x) for x in (moved / "messages.jsonl").read_text().splitlines()]
    assert ds["id"] == [r["id"] for r in lines]
    items = {it.id: it for it in RunStore(scored_run).iter_items()}
    for row, line in zip(ds, lines):
        assert [[c.get("text") for c in m["content"]] for m in row["messages"]] == \
            [[c.get("text") for c in m["content"]] for m in line["messages"]]
        [image] = row["images"]
        with open(scored_run / items[row["id"]].image.path, "rb") as f:
            from PIL import Image
            assert image.tobytes() == Image.open(f).tobytes()  # pixel-identical


def test_the_jsonl_form_resolves_against_the_folder(moved):
    for line in (moved / "messages.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert all(not os.path.isabs(p) and (moved / p).is_file() for p in rec["images"])
