"""The VLMEvalKit export: custom-dataset TSVs with the documented columns, read back as VLMEvalKit reads them (pandas)."""

import base64
import io
import json

import pytest
from PIL import Image

from deltaprompts.exports import export_run
from deltaprompts.store import RunStore
from deltaprompts.verifiers import score_answer

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def exported(scored_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("vk") / "out"
    summary = export_run(scored_run, "vlmevalkit", out, task="dp_shapes")
    return out, summary, {it.id: it for it in RunStore(scored_run).iter_items()}


def read(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)  # VLMEvalKit's load() of a .tsv


def test_two_tsvs_cover_every_item_once_and_are_listed(exported):
    out, summary, items = exported
    assert summary.files == ["dp_shapes_MCQ.tsv", "dp_shapes_VQA.tsv"]
    mcq, vqa = read(out / "dp_shapes_MCQ.tsv"), read(out / "dp_shapes_VQA.tsv")
    assert sorted([*mcq["id"], *vqa["id"]]) == sorted(items)
    for df in (mcq, vqa):
        assert list(df.columns[:4]) == ["index", "image", "question", "answer"] and "category" in df.columns
        assert list(df["index"]) == [str(i) for i in range(len(df))]  # unique integer index


def test_mcq_rows_have_options_and_a_letter_answer(exported):
    out, _, items = exported
    mcq = read(out / "dp_shapes_MCQ.tsv")
    assert len(mcq) > 0 and {"A", "B", "C", "D"} <= set(mcq.columns)
    for _, r in mcq.iterrows():
        q = items[r["id"]].question
        assert {k: r[k] for k in q.options} == q.options and r["answer"] in q.options
        assert "Options:" not in r["question"] and q.text.startswith(r["question"])
        assert score_answer(r["answer"], q.answer, q.answer_type, q.options) == 1.0
        assert r["category"] == items[r["id"]].family


def test_vqa_rows_hold_the_raw_question_and_what_scoring_needs(exported):
    out, _, items = exported
    vqa = read(out / "dp_shapes_VQA.tsv")
    assert len(vqa) > 0 and "A" not in vqa.columns
    for _, r in vqa.iterrows():
        q = items[r["id"]].question
        assert r["question"] == q.text and r["answer"] == q.answer and r["answer_type"] == q.answer_type
        assert r["tolerance"] == ("" if q.tolerance is None else str(q.tolerance))


def test_images_decode_to_the_run_images(exported, scored_run):
    out, _, items = exported
    for name in ("dp_shapes_MCQ.tsv", "dp_shapes_VQA.tsv"):
        for _, r in read(out / name).iterrows():
            data = base64.b64decode(r["image"])
            assert data == (scored_run / items[r["id"]].image.path).read_bytes()
            assert Image.open(io.BytesIO(data)).size[0] > 0


def test_export_json_names_the_format(exported):
    out, _, _ = exported
    assert json.loads((out / "export.json").read_text())["format"] == "vlmevalkit"
