"""Teacher responses as training targets: rejection sampling over the stored teacher samples."""

import json
import shutil

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.divergence.records import Sample
from deltaprompts.errors import UserError
from deltaprompts.exports import export_run
from deltaprompts.store import RunStore, ScoreStore

THINK = "<think>Count the red ones: one, two, three.</think>The answer is {a}."


@pytest.fixture
def traced_run(tmp_path, scored_run):
    """The scored run with teacher samples: per item a long correct one (a reasoning block), a short
    correct one and a wrong one; the first item the teacher never gets right; log-probs set."""
    run = tmp_path / "run"
    shutil.copytree(scored_run, run)
    items = list(RunStore(run).iter_items())
    samples = []
    for n, it in enumerate(items):
        a = it.question.answer
        texts = [("wrong", 0.0, -9.0), ("wrong again", 0.0, -9.0)] if n == 0 else \
            [(THINK.format(a=a), 1.0, -2.0), (a, 1.0, -4.0), ("no idea", 0.0, -1.0)]
        samples += [Sample(item=it.id, index=k, text=t, answer_class="x", score=s, logprob=lp, tokens=4)
                    for k, (t, s, lp) in enumerate(texts)]
    ScoreStore(run, writer=True).sample_log("teacher").append(samples)
    return run, items


def _messages(out):
    return [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]


def test_shortest_correct_response_per_item_and_the_never_right_left_out(traced_run, tmp_path):
    run, items = traced_run
    s = export_run(run, "messages", tmp_path / "m", targets="teacher")
    assert s.items == len(items) - 1 and s.no_correct_trace == 1 and s.examples == len(items) - 1
    recs = {r["id"]: r for r in _messages(tmp_path / "m")}
    assert items[0].id not in recs
    for it in items[1:]:
        assert recs[it.id]["messages"][1]["content"][0]["text"] == it.question.answer  # the short correct one


def test_logprob_rule_keeps_the_reasoning_block_and_all_gives_several(traced_run, tmp_path):
    run, items = traced_run
    export_run(run, "llava", tmp_path / "l", targets="teacher", trace_rule="logprob")
    recs = {r["id"]: r for r in json.loads((tmp_path / "l" / "llava.json").read_text())}
    it = items[1]
    assert recs[it.id]["conversations"][1]["value"] == THINK.format(a=it.question.answer)  # intact, <think> kept
    s = export_run(run, "messages", tmp_path / "a", targets="teacher", trace_rule="all", max_traces=5)
    assert s.examples == 2 * (len(items) - 1)
    ids = [r["id"] for r in _messages(tmp_path / "a")]
    assert f"{it.id}#0" in ids and f"{it.id}#1" in ids and len(set(ids)) == len(ids)


def test_hf_rows_carry_the_trace_and_its_provenance(traced_run, tmp_path):
    run, items = traced_run
    s = export_run(run, "parquet", tmp_path / "p", targets="teacher", trace_rule="logprob")
    table = pq.read_table(tmp_path / "p" / next(f for f in s.files if f.endswith(".parquet"))).to_pylist()
    row = next(r for r in table if r["id"] == items[1].id)
    assert row["target"].startswith("<think>") and row["target_source"] == "teacher"
    assert row["target_model"] == "hand:teacher" and row["target_sample"] == 0 and row["target_score"] == 1.0
    plain = export_run(run, "parquet", tmp_path / "q")  # answer targets: the same columns, the ground truth
    table = pq.read_table(tmp_path / "q" / next(f for f in plain.files if f.endswith(".parquet"))).to_pylist()
    assert all(r["target"] == r["answer"] and r["target_source"] == "answer" for r in table)


def test_refusals_name_what_is_wrong(traced_run, scored_run, tmp_path):
    run, _ = traced_run
    with pytest.raises(UserError, match="has no scores/samples-teacher.jsonl"):
        export_run(scored_run, "messages", tmp_path / "x", targets="teacher")
    with pytest.raises(UserError, match="evaluation"):
        export_run(run, "lmms-eval", tmp_path / "y", targets="teacher")
    result = CliRunner().invoke(app, ["export", str(run), "--format", "messages", "--out", str(tmp_path / "z"),
                                      "--targets", "teachers"])
    assert result.exit_code == 2 and "did you mean 'teacher'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["export", str(run), "--format", "messages", "--out", str(tmp_path / "w"),
                                      "--targets", "teacher", "--prompt-format", "thinking"])
    assert result.exit_code == 0 and "1 items left out" in result.output  # traces hold the reasoning


def test_screen_keeps_the_samples_of_the_items_it_keeps(tmp_path):
    from deltaprompts.models.simulated import SimulatedBackend  # noqa: F401  (the sim: scheme)
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run
    from deltaprompts.screen import screen_run
    from tests.exports.helpers import make_run

    run = make_run(tmp_path / "r", n=10)
    score_run(run, load_backend("sim:t?skill=0.9"), load_backend("sim:s?skill=0.2"), k=4)
    screen_run(run, tmp_path / "kept", 0.0)
    kept = {it.id for it in RunStore(tmp_path / "kept").iter_items()}
    got = ScoreStore(tmp_path / "kept").samples("teacher")
    assert kept and {i for i, _ in got} == kept and len(got) == 4 * len(kept)
    assert got == {k: v for k, v in ScoreStore(run).samples("teacher").items() if k[0] in kept}


def test_sharegpt_is_what_llama_factory_reads(traced_run, tmp_path):
    run, items = traced_run
    s = export_run(run, "sharegpt", tmp_path / "s", targets="teacher")
    recs = json.loads((tmp_path / "s" / "sharegpt.json").read_text())
    info = json.loads((tmp_path / "s" / "dataset_info.json").read_text())
    (name, entry), = info.items()
    assert entry == {"file_name": "sharegpt.json", "formatting": "sharegpt",
                     "columns": {"messages": "conversations", "images": "images"}}
    assert len(recs) == s.examples == len(items) - 1
    r = recs[0]
    assert r["conversations"][0]["from"] == "human" and r["conversations"][0]["value"].startswith("<image>")
    assert r["conversations"][1]["from"] == "gpt" and all((tmp_path / "s" / p).is_file() for p in r["images"])


def test_the_prompt_set_carries_delta_interval_accuracies_and_provenance(scored_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    s = export_run(scored_run, "promptset", tmp_path / "ps")
    ds = datasets.load_dataset(str(tmp_path / "ps"), split="train")
    deltas = ScoreStore(scored_run).deltas()
    assert len(ds) == s.items == len(deltas)
    for r in ds:
        d = deltas[r["id"]]
        assert r["delta"] == d.value and (r["delta_lo"], r["delta_hi"]) == tuple(d.ci)
        assert r["delta_debiased"] == d.debiased["tv"] and r["zero_delta"] == d.zero_delta
        assert r["teacher_accuracy"] == d.teacher_accuracy and r["teacher"] == "hand:teacher"
        assert r["image"].size[0] > 0 and r["pattern"] is None
    with pytest.raises(UserError, match="needs every item's Δ"):
        export_run(_unscored(scored_run, tmp_path), "promptset", tmp_path / "x")


def _unscored(scored_run, tmp_path):
    run = tmp_path / "unscored"
    shutil.copytree(scored_run, run, ignore=shutil.ignore_patterns("scores"))
    return run


def test_targets_from_another_teacher_are_refused(traced_run, tmp_path):
    run, _ = traced_run  # its samples come from "hand:teacher"
    with pytest.raises(UserError, match=r"come from hand:teacher, not .*score the run with --teacher sim:t"):
        export_run(run, "messages", tmp_path / "o", targets="teacher", teacher="sim:t?skill=0.9")
