"""score_run and screen_run end to end on a generated run with two `sim:` backends: files,
records, resumability (no repeated model call), kill-safety, the response cache, and the CLI."""

import hashlib
import json
import shutil

import pytest
from typer.testing import CliRunner

from deltaprompts.divergence import Sample, total_variation
from deltaprompts.errors import DeltaError, UserError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.models.base import Sampling
from deltaprompts.models.specs import load_backend
from deltaprompts.score import role_seed, score_run
from deltaprompts.screen import screen_run
from deltaprompts.store import ScoreStore
from deltaprompts.store import RunStore

TEACHER, STUDENT = "sim:teacher?skill=0.9", "sim:student?skill=0.2"


class Counting:
    """Wraps a backend and counts sample calls and completions; can fail after some calls."""

    def __init__(self, backend, fail_after=None):
        self.backend, self.identity, self.fail_after = backend, backend.identity, fail_after
        self.calls = self.completions = 0
        if hasattr(backend, "score"):
            self.score = backend.score

    def sample(self, requests, sampling, indices):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise DeltaError("simulated crash of the model server")
        self.calls += 1
        self.completions += sum(map(len, indices))
        return self.backend.sample(requests, sampling, indices)


def models(fail_after=None):
    return Counting(load_backend(TEACHER), fail_after), Counting(load_backend(STUDENT))


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    fams = ["scene.shapes"]
    generate(GenerateConfig(families=fams, n=12, seed=0, knobs=resolve_all_knobs(fams, {})), out)
    return out


@pytest.fixture
def run(base_run, tmp_path):
    shutil.copytree(base_run, tmp_path / "run")
    return tmp_path / "run"


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_score_writes_samples_deltas_and_meta(run):
    t, s = models()
    res = score_run(run, t, s, k=8, sampling=Sampling(seed=5), batch_size=5)
    assert (res.items, res.scored, res.already_scored, res.simulated) == (12, 12, 0, True)
    assert res.completions == {"teacher": 96, "student": 96} and t.completions == s.completions == 96
    meta = json.loads((run / "scores/meta.json").read_text())
    assert meta["teacher"] == t.identity and "simulated" in meta["student"] and meta["k"] == 8
    assert meta["metric"] == "tv" and meta["simulated"] is True
    seeds = {r: meta["sampling"][r]["seed"] for r in ("teacher", "student")}
    assert seeds == {"teacher": role_seed(5, "teacher"), "student": role_seed(5, "student")}
    assert seeds["teacher"] != seeds["student"]
    items = {it.id: it for it in RunStore(run).iter_items()}
    for role in ("teacher", "student"):
        recs = [Sample.model_validate(x) for x in lines(run / f"scores/samples-{role}.jsonl")]
        assert sorted((r.item, r.index) for r in recs) == sorted((i, j) for i in items for j in range(8))
        assert all("simulated" in r.text for r in recs)
    deltas = ScoreStore(run).deltas(required=True)
    assert set(deltas) == set(items)
    for d in deltas.values():
        assert sum(d.teacher.values()) == d.n_teacher == 8 and sum(d.student.values()) == d.n_student == 8
        assert d.value == d.values["tv"] == pytest.approx(total_variation(d.teacher, d.student))
        assert d.identical == (d.teacher == d.student) and d.simulated and d.stop == "fixed" and d.rounds == 1
        assert d.zero_delta == (d.p_same > d.zero_level == 0.05)
        assert 0.0 <= d.lower["tv"] <= d.debiased["tv"] <= 1.0
        assert d.ci[0] <= d.value <= d.ci[1] and d.bootstrap == 1000
        assert d.values["gap"] == pytest.approx(d.teacher_accuracy - d.student_accuracy)
        assert "token_kl" in d.values and d.family == "scene.shapes" == items[d.item].family
    assert any(d.teacher_accuracy > 0 for d in deltas.values())  # the sim found the items' real answers


def test_shared_mixtures_still_differ_because_the_seeds_differ(run):
    t, s = load_backend("sim:a?zero=1&garble=0&alpha=1"), load_backend("sim:b?zero=1&garble=0&alpha=1")
    score_run(run, t, s, k=8)
    deltas = ScoreStore(run).deltas(required=True).values()
    assert all(d.values["token_kl"] == pytest.approx(0.0) for d in deltas)  # identical mixtures
    assert sum(not d.identical for d in deltas) >= 6  # but independent samples differ,
    assert sum(d.zero_delta for d in deltas) >= 10  # which the zero-delta test puts down to chance


def test_a_second_score_run_makes_no_model_call(run):
    score_run(run, *models(), k=8, adaptive=True)
    before = (run / "scores/deltas.jsonl").read_bytes()
    t, s = models()
    res = score_run(run, t, s, k=8, adaptive=True)
    assert (t.calls, s.calls, res.scored, res.already_scored) == (0, 0, 0, 12)
    assert (run / "scores/deltas.jsonl").read_bytes() == before


def test_other_settings_on_a_scored_run_are_refused(run):
    score_run(run, *models(), k=8)
    with pytest.raises(UserError, match=r"other settings \(k: 8 -> 16"):
        score_run(run, *models(), k=16)


def test_adaptive_scoring_uses_fewer_calls_and_records_its_rounds(run, tmp_path):
    fixed = shutil.copytree(run, tmp_path / "fixed")
    ft, fs = models()
    score_run(fixed, ft, fs, k=16)
    at, as_ = models()
    score_run(run, at, as_, k=16, adaptive=True)
    assert at.completions + as_.completions < ft.completions + fs.completions
    fixed_d, adapt_d = ScoreStore(fixed).deltas(required=True), ScoreStore(run).deltas(required=True)
    for item, d in adapt_d.items():
        assert d.stop in ("zero_delta", "above", "below", "budget") and d.n_teacher == 4 * d.rounds
        if d.stop == "budget":  # went the whole way: the same samples as the fixed run
            assert (d.teacher, d.student) == (fixed_d[item].teacher, fixed_d[item].student)


def test_a_crash_keeps_every_completion_and_the_resume_finishes_without_duplicates(run, tmp_path):
    clean = shutil.copytree(run, tmp_path / "clean")
    score_run(clean, *models(), k=8, batch_size=4)
    t, s = models(fail_after=1)
    with pytest.raises(DeltaError, match="simulated crash"):
        score_run(run, t, s, k=8, batch_size=4)
    for role in ("teacher", "student"):  # the first batch's samples are on disk, and its Deltas
        assert len(lines(run / f"scores/samples-{role}.jsonl")) == 4 * 8
    assert len(ScoreStore(run).deltas(required=True)) == 4
    t, s = models()
    res = score_run(run, t, s, k=8, batch_size=4)
    assert t.completions == s.completions == 8 * 8 and res.already_scored == 4  # only what was missing
    for role in ("teacher", "student"):
        keys = [(x["item"], x["index"]) for x in lines(run / f"scores/samples-{role}.jsonl")]
        assert len(keys) == len(set(keys)) == 96
    assert ScoreStore(run).deltas(required=True) == ScoreStore(clean).deltas(required=True)


def test_completions_a_failing_backend_did_return_are_kept(run):
    from deltaprompts.models.wrappers import PartialResults

    class HalfThenFail(Counting):
        def sample(self, requests, sampling, indices):
            got = self.backend.sample(requests, sampling, indices)
            raise PartialResults("server went away", [row[: len(row) // 2] for row in got])

    with pytest.raises(PartialResults):
        score_run(run, HalfThenFail(load_backend(TEACHER)), load_backend(STUDENT), k=8, batch_size=12)
    assert len(lines(run / "scores/samples-teacher.jsonl")) == 12 * 4
    t, s = models()
    score_run(run, t, s, k=8, batch_size=12)
    assert t.completions == 12 * 4 and s.completions == 12 * 8


def test_a_partial_line_from_a_kill_is_cut_and_resumed(run, tmp_path):
    clean = shutil.copytree(run, tmp_path / "clean")
    score_run(clean, *models(), k=8)
    score_run(run, *models(), k=8)
    # a kill mid-write: the last Deltas and teacher samples lost, a half-written line left behind
    samples = (run / "scores/samples-teacher.jsonl").read_text().splitlines(keepends=True)
    (run / "scores/samples-teacher.jsonl").write_text("".join(samples[:-5]) + samples[-5][:40])
    deltas = (run / "scores/deltas.jsonl").read_text().splitlines(keepends=True)
    (run / "scores/deltas.jsonl").write_text("".join(deltas[:-2]) + deltas[-2][:25])
    t, s = models()
    res = score_run(run, t, s, k=8)
    assert res.repaired_bytes == 40 + 25 and res.scored == 2
    assert t.completions == 5 and s.completions == 0
    for name in ("samples-teacher.jsonl", "samples-student.jsonl", "deltas.jsonl"):
        recs = lines(run / "scores" / name)
        keys = [(x["item"], x.get("index")) for x in recs]
        assert len(keys) == len(set(keys))
    assert ScoreStore(run).deltas(required=True) == ScoreStore(clean).deltas(required=True)


def test_the_response_cache_answers_a_fresh_scoring(run, tmp_path):
    again = shutil.copytree(run, tmp_path / "again")
    cache = tmp_path / "responses.sqlite"
    score_run(run, *models(), k=4, cache_path=cache)
    t, s = models()
    score_run(again, t, s, k=4, cache_path=cache)
    assert cache.exists() and t.completions == s.completions == 0
    assert ScoreStore(again).deltas(required=True) == ScoreStore(run).deltas(required=True)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_screen_keeps_high_delta_items_in_a_new_run_with_a_report(run, tmp_path):
    score_run(run, *models(), k=8)
    deltas = ScoreStore(run).deltas(required=True)
    out = tmp_path / "kept"
    rep = screen_run(run, out, min_delta=0.25, min_teacher_acc=0.1, rule="plugin")
    want = {i for i, d in deltas.items() if d.values["tv"] >= 0.25 and d.teacher_accuracy >= 0.1}
    assert rep.rule == "plugin" and "rule: plugin" in (out / "report/screen.txt").read_text()
    assert rep.kept == len(want) and rep.scored == 12 and rep.unscored == 0
    assert rep.zero_delta == sum(d.zero_delta for d in deltas.values())
    assert rep.zero_delta_fraction == pytest.approx(rep.zero_delta / 12)
    assert rep.kept_fraction == pytest.approx(len(want) / 12) and sum(rep.dropped.values()) == 12 - len(want)
    kept = list(RunStore(out).iter_items())
    assert {it.id for it in kept} == want
    for it in kept:
        assert sha(out / it.image.path) == it.image.sha256 == sha(run / it.image.path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["items"] == len(want) and manifest["screen"]["min_delta"] == 0.25
    assert set(ScoreStore(out).deltas(required=True)) == want
    assert (out / "report/delta_hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "report/screen.txt").read_text()
    assert table.startswith("SIMULATED MODELS") and "scene.shapes" in table
    assert json.loads((out / "report/screen.json").read_text())["kept"] == len(want)
    assert not list(tmp_path.glob(".*partial"))


def test_screen_refuses_bad_requests(run, tmp_path):
    with pytest.raises(UserError, match="run `deltaprompts score"):
        screen_run(run, tmp_path / "x", 0.3)
    score_run(run, load_backend("sim:t?score=0"), load_backend("sim:s?score=0"), k=4)
    with pytest.raises(UserError, match="'token_kl' is missing.*available: gap, js, kl, tv"):
        screen_run(run, tmp_path / "x", 0.3, metric="token_kl")
    with pytest.raises(UserError, match="is the run being screened"):
        screen_run(run, run, 0.3)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        screen_run(run, tmp_path / "busy", 0.3)
    with pytest.raises(UserError, match="min_teacher_acc"):
        screen_run(run, tmp_path / "y", 0.3, min_teacher_acc=2)


def test_cli_score_and_screen(run, tmp_path):
    from deltaprompts.cli import app

    cli = CliRunner()
    res = cli.invoke(app, ["score", str(run), "--teacher", TEACHER, "--student", STUDENT, "--k", "8", "--adaptive",
                           "--quiet"])
    assert res.exit_code == 0, res.output
    assert "SIMULATED MODELS" in res.output and "zero-delta:" in res.output and "scored 12 items" in res.output
    res = cli.invoke(app, ["screen", str(run), "--min-delta", "0.3", "--min-teacher-acc", "0.2",
                           "--out", str(tmp_path / "kept")])
    assert res.exit_code == 0, res.output
    assert "zero-delta:" in res.output and "kept:" in res.output and "scene.shapes" in res.output
    res = cli.invoke(app, ["score", str(run), "--teacher", "nope:x", "--student", STUDENT, "--quiet"])
    assert res.exit_code == 2 and "accepted forms" in res.output and "sim:NAME" in res.output
    res = cli.invoke(app, ["score", str(run), "--teacher", TEACHER, "--student", STUDENT, "--metric", "xx", "-q"])
    assert res.exit_code == 2 and "Allowed: js, kl, tv" in res.output


def test_readers_leave_a_torn_last_line_in_place_and_say_so(run):
    score_run(run, *models(), k=4)
    path = run / "scores/deltas.jsonl"
    lines_ = path.read_text().splitlines(keepends=True)
    torn = "".join(lines_[:-1]) + lines_[-1][:30]
    path.write_text(torn)
    with pytest.warns(UserWarning, match="last line is cut off"):
        deltas = ScoreStore(run).deltas(required=True)
    assert len(deltas) == 11 and path.read_text() == torn  # left out, and the file is not touched
    score_run(run, *models(), k=4)  # the writer repairs it and scores the item again
    assert len(ScoreStore(run).deltas(required=True)) == 12 and path.read_text().endswith("\n")


def test_completions_the_cache_answers_are_not_counted_as_model_calls(run, tmp_path):
    again = shutil.copytree(run, tmp_path / "again2")
    cache = tmp_path / "responses.sqlite"
    first = score_run(run, *models(), k=4, cache_path=cache)
    assert first.from_cache == {"teacher": 0, "student": 0} and first.completions == {"teacher": 48, "student": 48}
    second = score_run(again, *models(), k=4, cache_path=cache)
    assert second.completions == second.from_cache == {"teacher": 48, "student": 48}
