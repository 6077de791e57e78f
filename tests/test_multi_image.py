"""Items made of several images (pages, an image pair, frames) travel whole through every stage:
generate writes each image, check hashes them, the backends' requests, every export, the gallery
and the report carry them in order."""

import base64
import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.exports import export_run
from deltaprompts.generators import Generator, Rendered
from deltaprompts.generators import base
from deltaprompts.generators.base import png_bytes
from deltaprompts.knobs import Knob
from deltaprompts.models.prompts import build_request
from deltaprompts.records import Entity, Facts, Item, Spec
from deltaprompts.store import RunStore
from tests.exports.test_lmms_eval import load_task_yaml

COLORS = {"red": (214, 39, 40), "blue": (31, 119, 180), "green": (44, 160, 44)}
TEMPLATE = """name: test.count_across_panels
domain: scene
applies_to: ["test.panels"]
answer_type: count
skills: [counting]
requires: {min_distinct: {color: 2}}
slots:
  c: {attr: color}
program: "count(filter[attr=color, value=$c](scene()))"
phrasings:
  - "Across all {{ n_images }} images, how many {{ c }} squares are there?"
"""


class Panels(Generator):
    """2-4 images of different sizes, each holding a few coloured squares; questions count across images."""

    name = "test.panels"
    domain = "scene"
    version = "1"
    knobs = (Knob("n_images", "int", 3, "images per item", lo=2, hi=4),)

    def sample_data(self, rng, knobs):
        n = knobs["n_images"]
        return {"sizes": [[96 + 16 * i, 80 + 8 * i] for i in range(n)],
                "squares": [{"image": int(rng.integers(n)), "x": 8 + 20 * k, "y": 10 + int(rng.integers(40)),
                             "color": str(rng.choice(sorted(COLORS)))} for k in range(4)]}

    def render(self, spec: Spec) -> Rendered:
        d = spec.data
        images = [Image.new("RGB", tuple(s), "white") for s in d["sizes"]]
        entities = []
        for k, sq in enumerate(d["squares"]):
            box = (sq["x"], sq["y"], sq["x"] + 14, sq["y"] + 14)
            ImageDraw.Draw(images[sq["image"]]).rectangle(box, fill=COLORS[sq["color"]])
            entities.append(Entity(id=f"sq{k}", attrs={"color": sq["color"], "visible_pixels": 225}, box=box,
                                   image=sq["image"]))
        w, h = d["sizes"][0]
        facts = Facts(domain="scene", kind="panels", width=w, height=h, entities=entities,
                      image_sizes=[tuple(s) for s in d["sizes"]], context={"n_images": len(images)})
        pngs = [png_bytes(im) for im in images]
        return Rendered(png=pngs[0], facts=facts, more_png=tuple(pngs[1:]))


@pytest.fixture()
def panels_run(monkeypatch, tmp_path):
    registry = base.FAMILIES
    monkeypatch.setattr(registry, "_items", {**registry._items, Panels.name: Panels})
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "count.yaml").write_text(TEMPLATE)
    run = tmp_path / "run"
    res = CliRunner().invoke(app, ["generate", "--family", "test.panels", "--n", "8", "--templates",
                                   str(tmp_path / "tpl"), "--out", str(run), "--quiet", "--mc-fraction", "0",
                                   "--balance-ratio", "0"])
    assert res.exit_code == 0, res.output
    return run, list(RunStore(run).iter_items())


def test_every_image_is_written_in_order_and_hashed(panels_run):
    run, items = panels_run
    assert len(items) == 8
    for it in items:
        assert len(it.images) == 3 and len(it.more_images) == 2
        assert [r.path for r in it.images] == [f"images/test.panels/{it.spec.key}.png",
                                               f"images/test.panels/{it.spec.key}-2.png",
                                               f"images/test.panels/{it.spec.key}-3.png"]
        for n, ref in enumerate(it.images):
            data = (run / ref.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == ref.sha256
            with Image.open(io.BytesIO(data)) as im:
                assert im.size == (ref.width, ref.height) == tuple(it.spec.data["sizes"][n])
                for e in it.facts.entities:  # each square's colour is on the image its Facts name, and only there
                    if e.image == n:
                        assert im.getpixel((e.box[0] + 7, e.box[1] + 7)) == COLORS[e.attrs["color"]]
        color = it.question.program.args[0].params["value"]
        assert it.question.value == sum(sq["color"] == color for sq in it.spec.data["squares"])
    assert json.loads((run / "manifest.json").read_text())["counts"]["images"] == 3 * len({i.spec.key for i in items})


def test_single_image_items_keep_their_json_shape(panels_run):
    _, items = panels_run
    line = json.loads(items[0].model_dump_json())
    assert len(line["more_images"]) == 2 and line["facts"]["image_sizes"]
    one = items[0].model_copy(update={"more_images": []})
    assert "more_images" not in json.loads(one.model_dump_json())
    assert Item.model_validate_json(items[0].model_dump_json()) == items[0]


def test_check_hashes_every_image(panels_run):
    run, items = panels_run
    res = CliRunner().invoke(app, ["check", str(run)])
    assert res.exit_code == 0, res.output
    (run / items[0].more_images[1].path).write_bytes(b"not the image")
    res = CliRunner().invoke(app, ["check", str(run)])
    assert res.exit_code != 0 and "image_hash_mismatch" in res.output


def test_a_backend_request_holds_every_image_before_the_question(panels_run):
    run, items = panels_run
    req = build_request(items[0], run)
    assert [p.split("/")[-1] for p in req.images] == [r.path.split("/")[-1] for r in items[0].images]
    assert req.image_sha256 == [r.sha256 for r in items[0].images]
    parts = req.messages[0].content
    assert [p["type"] for p in parts] == ["image", "image", "image", "text"]


def test_hf_export_holds_the_later_images_in_order(panels_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    run, items = panels_run
    export_run(run, "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf" / "arrow"))["train"]
    by_id = {it.id: it for it in items}
    for row in ds:
        it = by_id[row["id"]]
        got = [row["image"], *row["more_images"]]
        assert len(got) == 3
        for im, ref in zip(got, it.images):
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(Image.open(run / ref.path).convert("RGB")))


def test_chat_exports_list_every_image_with_one_placeholder_each(panels_run, tmp_path):
    run, items = panels_run
    export_run(run, "llava", tmp_path / "llava")
    export_run(run, "sharegpt", tmp_path / "sg")
    export_run(run, "messages", tmp_path / "msg")
    llava = json.loads((tmp_path / "llava" / "llava.json").read_text())
    sharegpt = json.loads((tmp_path / "sg" / "sharegpt.json").read_text())
    messages = [json.loads(x) for x in (tmp_path / "msg" / "messages.jsonl").read_text().splitlines()]
    for rec in llava:
        assert len(rec["image"]) == 3 and rec["conversations"][0]["value"].count("<image>") == 3
        for p in rec["image"]:
            assert (tmp_path / "llava" / p).is_file()
    for rec in sharegpt:
        assert len(rec["images"]) == 3 and rec["conversations"][0]["value"].count("<image>") == 3
    for rec in messages:
        assert [p["type"] for p in rec["messages"][0]["content"]].count("image") == len(rec["images"]) == 3
        for p in rec["images"]:
            assert (tmp_path / "msg" / p).is_file() or (tmp_path / "msg").joinpath(p).is_file()


def test_vlmevalkit_cell_is_a_list_of_images_vlmevalkit_reads(panels_run, tmp_path):
    pd = pytest.importorskip("pandas")
    run, items = panels_run
    export_run(run, "vlmevalkit", tmp_path / "vk", task="panels")
    df = pd.read_csv(tmp_path / "vk" / "panels_VQA.tsv", sep="\t", keep_default_na=False, dtype=str)
    by_id = {it.id: it for it in items}
    for _, row in df.iterrows():
        cell = row["image"]
        assert cell.startswith("[") and cell.endswith("]")  # VLMEvalKit's toliststr: a list of base64 images
        decoded = [base64.b64decode(s) for s in json.loads(cell)]
        assert [hashlib.sha256(b).hexdigest() for b in decoded] == [r.sha256 for r in by_id[row["id"]].images]


def test_lmms_eval_task_gives_the_model_every_image(panels_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    run, items = panels_run
    out = tmp_path / "task"
    export_run(run, "lmms-eval", out, task="dp_panels")
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    cfg = load_task_yaml(moved / "dp_panels.yaml")
    docs = datasets.load_dataset(path=cfg["dataset_path"], cache_dir=str(tmp_path / "cache"))[cfg["test_split"]]
    by_id = {it.id: it for it in items}
    for doc in docs:
        visuals = cfg["doc_to_visual"](doc)
        assert [im.size for im in visuals] == [(r.width, r.height) for r in by_id[doc["id"]].images]


def test_gallery_and_report_show_every_image(panels_run):
    run, items = panels_run
    res = CliRunner().invoke(app, ["show", str(run)])
    assert res.exit_code == 0, res.output
    html = (run / "gallery" / "index.html").read_text()
    for it in items:
        for ref in it.images:
            assert f"../{ref.path}" in html or ref.path in html
    assert "image 3 of 3" in html


def test_split_keeps_an_items_images_together(panels_run, tmp_path):
    run, items = panels_run
    res = CliRunner().invoke(app, ["split", str(run), "--eval-fraction", "0.5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "eval_llava"
    export_run(run, "llava", out, split="eval")
    for rec in json.loads((out / "llava.json").read_text()):
        assert all((out / p).is_file() for p in rec["image"])
