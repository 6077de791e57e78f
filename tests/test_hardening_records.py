"""Issue 17, records and integrity: non-finite and huge numbers, tampered runs, non-finite CLI numbers,
unbounded sizes. Each bad input gives a clear one-line error (or a rejection reason), writes nothing,
and never a traceback."""

import json
import math
import shutil

import pytest
from typer.testing import CliRunner

from deltaprompts import engine
from deltaprompts.cli import app
from deltaprompts.errors import DeltaError, ProgramError, TemplateError, UserError
from deltaprompts.pipeline.teacher_questions import Rejected, item_from_reply
from deltaprompts.records import Facts, Node, Question, Spec
from deltaprompts.store import RunStore, ShardStats
from tests.pipeline.helpers import STUDENT, TEACHER, small_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(res, code: int = 2) -> str:
    """The error line of a refused command: exit `code`, one `error:` line (or click's usage error for
    an option out of its range), no traceback."""
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage:"):
        lines = [line for line in lines if line.startswith("Error: Invalid value")]
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), res.output
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hardening") / "run"
    res = invoke("generate", "--family", "scene.shapes", "--n", 6, "--seed", 1, "--shard-size", 3, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def base(run):
    return next(RunStore(run).iter_items())


# ------------------------------------------------------------------ 1. non-finite and huge numbers

FILTER = '{"op": "filter_cmp", "params": {"attr": "size", "cmp": "gt", "value": %s}, "args": [{"op": "scene"}]}'


@pytest.mark.parametrize("program, reason", [
    (FILTER % "1e999", "malformed_program"),
    (FILTER % "NaN", "malformed_program"),
    (FILTER % "-Infinity", "malformed_program"),
    (FILTER % ("9" * 5000), "malformed_json"),  # over Python's int digit limit: a ValueError, once uncaught
    ('"count(filter_cmp[attr=size, cmp=gt, value=%s](scene()))"' % ("9" * 5000), "malformed_program"),
    ('"count(filter_cmp[attr=size, cmp=gt, value=%s.5](scene()))"' % ("9" * 400), "malformed_program"),
    ('"query[attr=color](nth[attr=size, n=0, order=desc](scene()))"', "type_error"),
    ('"query[attr=color](nth[attr=size, n=-1, order=desc](scene()))"', "type_error"),
    ('"query[attr=color](nth[attr=size, n=2.9, order=desc](scene()))"', "type_error"),
])
def test_a_teacher_program_with_a_non_finite_huge_or_bad_number_is_rejected(base, program, reason):
    reply = '{"question": "How many?", "program": %s, "answer_type": "count"}' % program
    with pytest.raises(Rejected) as e:
        item_from_reply(reply, base)
    assert e.value.reason == reason


def test_nth_takes_a_whole_number_of_at_least_one(base):
    for n in (0, -1, 2.9, True):
        with pytest.raises(TemplateError, match="whole number"):
            engine.type_check(Node(op="nth", params={"attr": "size", "n": n, "order": "desc"}, args=[Node(op="scene")]))
        with pytest.raises(ProgramError) as e:  # a slot bound to a bad value is caught when the op runs
            engine.execute(Node(op="nth", params={"attr": "size", "n": n, "order": "desc"}, args=[Node(op="scene")]),
                           base.facts)
        assert e.value.reason == "bad_param"


def test_records_refuse_non_finite_numbers(base):
    q = base.question.model_dump()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            Question.model_validate({**q, "value": bad})
        with pytest.raises(ValueError, match="finite"):
            Question.model_validate({**q, "value": [1.0, {"x": bad}]})
        with pytest.raises(ValueError, match="finite"):
            Question.model_validate({**q, "tolerance": bad})
        with pytest.raises(ValueError, match="finite"):
            Node(op="filter_cmp", params={"attr": "size", "cmp": "gt", "value": bad})
        with pytest.raises(ValueError):
            Spec.model_validate({**base.spec.model_dump(), "knobs": {"k": bad}})
        with pytest.raises(ValueError, match="finite"):
            Facts.model_validate({**base.facts.model_dump(), "extra": {"axis": [0, bad]}})


def test_the_store_refuses_to_write_what_it_cannot_read_back(base, tmp_path):
    # model_construct and model_copy skip validation, as a bug would: NaN is written as null, which a param refuses
    node = Node.model_construct(op="filter_cmp", params={"attr": "size", "cmp": "gt", "value": math.nan},
                                args=[Node(op="scene")])
    bad = base.model_copy(update={"question": base.question.model_copy(update={"program": node})})
    store = RunStore(tmp_path / "r")
    with pytest.raises(DeltaError, match="would not read back"):
        store.write_items(0, [base, bad])
    assert not store.shard_path(0).exists() and not store.shard_done(0)


@pytest.mark.parametrize("section, value", [
    ("models", {"temperature": math.inf}),
    ("models", {"temperature": math.nan}),
    ("synthesize", {"prior_strength": math.inf}),
    ("screen", {"min_delta": math.nan}),
    ("synthesize", {"budget": 10 ** 20}),
    ("seed", {"generate": {"families": ["scene.shapes"], "n": 1e20}}),
])
def test_config_numbers_must_be_finite_and_bounded(tmp_path, section, value):
    with pytest.raises(UserError, match=section):
        small_config(tmp_path / "out", **{section: value})


# ------------------------------------------------------------------ 5. check and score verify a run's integrity


def _tamper(run, tmp_path, how: str):
    bad = tmp_path / how
    shutil.copytree(run, bad)
    shards = sorted((bad / "items").glob("shard-*.jsonl"))
    lines = shards[0].read_text().splitlines()
    if how == "edited_answer":  # e.g. purple -> 999
        item = json.loads(lines[0])
        item["question"]["answer"] = "998" if item["question"]["answer"] == "999" else "999"
        lines[0] = json.dumps(item)
    elif how == "duplicated_line":
        lines.append(lines[0])
    elif how == "emptied_shard":
        lines = []
    elif how == "emptied_run":
        for s in shards[1:]:
            s.write_text("")
        lines = []
    shards[0].write_text("".join(line + "\n" for line in lines))
    return bad


@pytest.mark.parametrize("how, message", [
    ("edited_answer", "answer_mismatch=1"),
    ("duplicated_line", "more than one line"),
    ("emptied_shard", "the manifest counts 6 items, the shards hold 3"),
    ("emptied_run", "the run has no items"),
])
def test_check_fails_and_score_refuses_a_tampered_run(run, tmp_path, how, message):
    bad = _tamper(run, tmp_path, how)
    res = invoke("check", bad)
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert message in " ".join(res.output.split())
    line = one_line_error(invoke("score", bad, "--teacher", TEACHER, "--student", STUDENT, "--k", 4, "-q"))
    assert "fails its integrity checks" in line
    assert not (bad / "scores").exists()


def test_check_and_score_pass_an_untouched_run(run, tmp_path):
    res = invoke("check", run)
    assert res.exit_code == 0 and "run integrity" not in res.output, res.output
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    res = invoke("score", copy, "--teacher", TEACHER, "--student", STUDENT, "--k", 4, "-q")
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------ 6. non-finite CLI numbers


@pytest.mark.parametrize("args", [
    ["check", "{run}", "--min-text-px", "nan"],
    ["check", "{run}", "--balance-ratio", "inf"],
    ["screen", "{run}", "--min-delta", "nan", "--out", "{out}"],
    ["screen", "{run}", "--min-delta", "0.3", "--min-teacher-acc", "nan", "--out", "{out}"],
    ["mine", "{run}", "--min-delta", "nan"],
    ["mine", "{run}", "--min-teacher-acc", "nan"],
])
def test_non_finite_cli_numbers_are_refused(run, tmp_path, args):
    out = tmp_path / "out"
    res = invoke(*[a.format(run=run, out=out) for a in args])
    line = one_line_error(res)
    assert "nan" in line or "inf" in line or "Invalid value for '--min-teacher-acc'" in line
    assert not out.exists() and not (run / "mine").exists() and not (run / "scores").exists()


# ------------------------------------------------------------------ 9. unbounded work


def test_generate_refuses_an_unbounded_n(tmp_path):
    out = tmp_path / "big"
    line = one_line_error(invoke("generate", "--family", "scene.shapes", "--n", "1" + "0" * 25, "--out", out, "-q"))
    assert "10000000" in line
    assert not out.exists()


def test_generate_keeps_only_a_few_shards_in_flight(tmp_path, monkeypatch):
    """The driver never holds one future (or one list entry) per shard: a huge n costs no memory up front."""
    import deltaprompts.generate as gen

    submitted: list[int] = []

    class Pool:  # stands in for the process pool: runs each shard when it is submitted
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def submit(self, fn, cfg, k, root):
            from concurrent.futures import Future

            submitted.append(k)
            assert len(submitted) <= 2 * 2 + k, "shards were submitted ahead of their results"
            f = Future()
            f.set_result(ShardStats(items=0, images=0))
            return f

    monkeypatch.setattr(gen, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(gen, "finalize", lambda store, cfg, manifest, seconds: manifest)
    cfg = gen.GenerateConfig(families=["scene.shapes"], n=40, shard_size=1)
    gen.generate(cfg, tmp_path / "r", workers=2)
    assert submitted == list(range(40))
