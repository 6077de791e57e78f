"""External seed sets: JSONL and Hugging Face datasets import as runs, round-trip, are scored and audited."""

import base64
import json

import pytest
from PIL import Image

from deltaprompts.errors import UserError
from deltaprompts.models.base import Sampling
from deltaprompts.models.specs import load_backend
from deltaprompts.pipeline.audit import audit_run, prepare_source
from deltaprompts.pipeline.config import ExternalSeed
from deltaprompts.pipeline.external import import_external, infer_answer_type
from deltaprompts.pipeline.rounds import run_pipeline
from deltaprompts.records import Item
from deltaprompts.score import score_run
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore
from tests.pipeline.helpers import STUDENT, TEACHER, assert_no_duplicates, small_config


def png(path, color, size=(40, 30)):
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def jsonl(tmp_path):
    (tmp_path / "imgs").mkdir()
    rows = []
    for i, (q, a) in enumerate([("How many bars?", "4"), ("What is the title?", "Sales 2024"), ("Total?", 1250.5),
                                ("Is it red?", True), ("Largest value?", "1,234"), ("Which year?", "2019")]):
        rows.append({"img": f"imgs/{i}.png", "q": q, "a": a, "source": "chartqa" if i % 2 else "plotqa", "w": i})
        png(tmp_path / "imgs" / f"{i}.png", (20 * i, 90, 160))
    data_url = "data:image/png;base64," + base64.b64encode(png(tmp_path / "x.png", "red").read_bytes()).decode()
    rows.append({"img": data_url, "q": "What colour fills the image?", "a": "red", "source": "x", "w": 9})
    rows.append({"img": "imgs/missing.png", "q": "Lost?", "a": "1", "source": "x", "w": 9})
    rows.append({"img": "imgs/0.png", "q": "  ", "a": "1", "source": "x", "w": 9})
    rows.append({"img": "imgs/0.png", "q": "How many bars?", "a": "4", "source": "chartqa", "w": 0})  # row 0 again
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ext(path, **kw):
    return ExternalSeed(path=str(path), image_column="img", question_column="q", answer_column="a",
                        tag_columns=["source"], **kw)


def test_answer_types_are_inferred():
    assert [infer_answer_type(v) for v in ("4", "1,234", "-0.5", "Sales 2024", 3, 2.5, True, "12a")] == \
        ["number", "number", "number", "string", "number", "number", "yes_no", "string"]


def test_jsonl_import_round_trips_and_counts_what_it_leaves_out(jsonl, tmp_path):
    out = tmp_path / "run"
    m = import_external(ext(jsonl), out)
    items = list(RunStore(out).iter_items())
    assert m["status"] == "complete" and m["counts"]["items"] == len(items) == 7
    assert m["rejections"] == {"unreadable_image": 1, "empty_question": 1, "duplicate_row": 1}
    by_q = {it.question.text: it for it in items}
    assert by_q["How many bars?"].question.answer_type == "number" and by_q["How many bars?"].question.value == 4
    assert by_q["Total?"].question.answer == "1250.5" and by_q["Largest value?"].question.value == 1234
    assert by_q["What is the title?"].question.answer_type == "string"
    assert by_q["Is it red?"].question.answer == "Yes" and by_q["Is it red?"].question.answer_type == "yes_no"
    for it in items:
        assert it.facts.kind == "external" and it.facts.domain == "chart" and it.family == "external.set"
        assert it.question.program.op == "field" and it.facts.fields["answer"] == it.question.value
        assert (out / it.image.path).is_file() and Item.model_validate_json(it.model_dump_json()) == it
    assert by_q["How many bars?"].tags["knobs"] == {"source": "plotqa"}
    # the image bytes are kept as they were
    assert (out / by_q["How many bars?"].image.path).read_bytes() == (jsonl.parent / "imgs" / "0.png").read_bytes()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (out / "items").iterdir())
    assert import_external(ext(jsonl), out)["counts"] == m["counts"]  # idempotent: nothing rewritten
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (out / "items").iterdir()) == before


def test_a_killed_import_resumes_without_duplicates(jsonl, tmp_path, monkeypatch):
    import deltaprompts.pipeline.external as external

    monkeypatch.setattr(external, "SHARD", 3)
    out = tmp_path / "run"
    real = external.make_item
    calls = {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(external, "make_item", dying)
    with pytest.raises(KeyboardInterrupt):
        import_external(ext(jsonl), out)
    monkeypatch.setattr(external, "make_item", real)
    m = import_external(ext(jsonl), out)
    fresh = import_external(ext(jsonl), tmp_path / "fresh")
    assert m["counts"] == fresh["counts"] and m["rejections"] == fresh["rejections"]
    assert [it.id for it in RunStore(out).iter_items()] == [it.id for it in RunStore(tmp_path / "fresh").iter_items()]


def test_bad_columns_and_paths_are_user_errors(jsonl, tmp_path):
    with pytest.raises(UserError, match="no column.*answer.*columns: img, q, a"):
        import_external(ExternalSeed(path=str(jsonl), image_column="img", question_column="q"), tmp_path / "a")
    with pytest.raises(UserError, match="does not exist"):
        import_external(ExternalSeed(path=str(tmp_path / "nope.jsonl")), tmp_path / "b")


def test_hf_dataset_with_pil_images_is_imported(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": [Image.new("RGB", (32, 24), c) for c in ("red", "green", "blue")],
                                     "question": ["Colour?", "Count?", "Name?"], "answer": ["red", "3", "blue"]})
    datasets.DatasetDict({"test": ds, "train": ds}).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(UserError, match="splits test, train"):
        import_external(ExternalSeed(path=str(tmp_path / "hf")), tmp_path / "a")
    m = import_external(ExternalSeed(path=str(tmp_path / "hf"), split="test", answer_type="string", domain="scene"),
                        tmp_path / "run")
    items = list(RunStore(tmp_path / "run").iter_items())
    assert m["counts"]["items"] == 3 and {it.question.answer for it in items} == {"red", "3", "blue"}
    assert all(it.question.answer_type == "string" and it.facts.domain == "scene" for it in items)
    with Image.open(tmp_path / "run" / items[0].image.path) as im:
        assert im.size == (32, 24)


def test_imported_items_are_scored_and_audited(jsonl, tmp_path):
    run = prepare_source(jsonl, tmp_path / "audit", ext(jsonl))
    assert (run / "manifest.json").exists() and prepare_source(run) == run
    t, s = load_backend(TEACHER), load_backend(STUDENT)
    rep = audit_run(run, t, s, k=4, sampling=Sampling(seed=2), level=0.9)
    deltas = ScoreStore(run).deltas(required=True)
    assert rep.items == len(deltas) == 7 and rep.simulated
    assert rep.zero_delta == sum(d.zero_delta for d in deltas.values())
    assert rep.wilson[0] <= rep.zero_delta_fraction <= rep.wilson[1]
    assert rep.bootstrap[0] <= rep.zero_delta_fraction <= rep.bootstrap[1]
    assert sum(r.items for r in rep.question_families) == 7
    assert json.loads((run / "audit.json").read_text())["zero_delta"] == rep.zero_delta
    again = score_run(run, t, s, k=4, sampling=Sampling(seed=2))
    assert again.scored == 0  # audit scored everything once


def test_a_pipeline_on_an_external_seed(jsonl, tmp_path):
    cfg = small_config(tmp_path / "run", rounds=1,
                       seed={"external": {"path": str(jsonl), "image_column": "img", "question_column": "q",
                                          "answer_column": "a"}},
                       synthesize={"families": ["scene.shapes"], "knobs": {"n_objects": 5}, "teacher_questions": False},
                       screen={"min_delta": 0.0, "min_teacher_acc": 0.0})
    m = run_pipeline(cfg)
    rows = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert [r["round"] for r in rows] == [0, 1] and rows[0]["generated"] == 7
    assert list(rows[1]["arms"]) == ["family:scene.shapes"] and rows[1]["generated"] == 8
    assert m["counts"]["items"] == rows[0]["added"] + rows[1]["added"] == 15
    assert_no_duplicates(tmp_path / "run")


def test_list_answers_import_and_score_their_own_answers_end_to_end(tmp_path):
    from deltaprompts.verifiers import answer_class, score_item_answer

    (tmp_path / "imgs").mkdir()
    answers = ["apples, pears", ["apples", "pears", "plums"], "1,000, 2,000", [1000, 2500.5],
               ["Research and Development", "Sales, North"], "red; green\nblue", ["a|b", "c"], []]
    rows = []
    for i, a in enumerate(answers):
        png(tmp_path / "imgs" / f"{i}.png", (30 * i, 20, 90))
        rows.append({"img": f"imgs/{i}.png", "q": f"Which ones ({i})?", "a": a})
    path = tmp_path / "lists.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = ExternalSeed(path=str(path), image_column="img", question_column="q", answer_column="a", answer_type="list")
    m = import_external(cfg, tmp_path / "run")
    assert m["rejections"] == {"separator_in_element": 1, "empty_answer": 1}  # none fails its own answer
    by_q = {it.question.text: it for it in RunStore(tmp_path / "run").iter_items()}
    assert [by_q[f"Which ones ({i})?"].question.answer for i in range(6)] == [  # the item format
        "apples|pears", "apples|pears|plums", "1,000|2,000", "1000|2500.5",
        "Research and Development|Sales, North", "red|green|blue"]
    other_forms = ["apples, pears", "apples; pears; plums", "1000, 2000", "1,000 and 2,500.5",
                   "Research and Development; Sales, North", "red, green and blue"]
    for i, form in enumerate(other_forms):
        item = by_q[f"Which ones ({i})?"]
        assert item.question.answer_type == "list"
        assert score_item_answer(item, item.question.answer) == 1.0
        assert score_item_answer(item, f"The answer is {form}.") == 1.0, form

    run = tmp_path / "run"
    score_run(run, load_backend(TEACHER), load_backend(STUDENT), k=4, sampling=Sampling(seed=2))
    items = {it.id: it for it in by_q.values()}
    own = 0
    for line in (run / "scores" / "samples-teacher.jsonl").read_text().splitlines():
        sample = json.loads(line)
        item = items[sample["item"]]
        if sample["text"].endswith(f"The answer is {item.question.answer}"):  # the simulated right answer
            own += 1
            assert sample["score"] == 1.0
            assert sample["answer_class"] == answer_class(item.question.answer, "list")
    assert own > 0
