"""`score` and `run` with `--executor ray` (issue 20): the same scores/ bytes as a local run, resumable,
errors as themselves, `hf:` models in Ray actors; on a local Ray cluster of 2 CPUs."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import invoke

SIM = ["--teacher", "sim:t?skill=0.9&zero=0.3", "--student", "sim:s?skill=0.2&zero=0.3"]


def digest(run: Path, sub: str = "scores") -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / sub).glob("*"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A generated run of 12 items (no scores)."""
    out = tmp_path_factory.mktemp("rayscore") / "run"
    res = invoke("generate", "--family", "scene.shapes,document.invoice", "--n", 12, "--seed", 4, "--quiet",
                 "--out", out)
    assert res.exit_code == 0, res.output
    return out


def scored(run: Path, dest: Path, *args) -> Path:
    """A copy of `run` at `dest`, scored with `args` (sim models, k 8, batches of 3)."""
    shutil.copytree(run, dest)
    res = invoke("score", dest, *SIM, "--k", 8, "--batch-size", 3, "--quiet", *args)
    assert res.exit_code == 0, res.output
    assert "scored 12 items (0 already scored)" in res.output
    return dest


@pytest.fixture(scope="module")
def local_ref(run, tmp_path_factory):
    return scored(run, tmp_path_factory.mktemp("local") / "run")


def test_ray_writes_the_same_scores_as_a_local_run(cluster, run, local_ref, tmp_path):
    ray_run = scored(run, tmp_path / "ray", "--executor", "ray")
    assert digest(ray_run) == digest(local_ref)
    assert set(digest(ray_run)) == {"deltas.jsonl", "forced.jsonl", "meta.json", "samples-student.jsonl",
                                    "samples-teacher.jsonl"}
    # adaptive rounds too: Deltas and forced scores byte for byte; the samples files hold the same lines (a local
    # run's prefetch thread logs the next batch's first round while this batch's later rounds come in)
    for r, mode in ((run, "local"), (run, "ray")):
        dest = tmp_path / f"adaptive-{mode}"
        shutil.copytree(r, dest)
        res = invoke("score", dest, *SIM, "--k", 32, "--adaptive", "--batch-size", 3, "--quiet", "--executor", mode)
        assert res.exit_code == 0, res.output
    a, b = tmp_path / "adaptive-local" / "scores", tmp_path / "adaptive-ray" / "scores"
    for name in ("deltas.jsonl", "forced.jsonl", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for role in ("teacher", "student"):
        lines = [sorted((d / f"samples-{role}.jsonl").read_text().splitlines()) for d in (a, b)]
        assert lines[0] == lines[1] and len(lines[0]) > 12 * 8


class Interrupted(Exception):
    pass


def test_an_interrupted_ray_score_resumes_over_ray_address_to_the_same_bytes(cluster, run, local_ref, tmp_path):
    from deltaprompts.models.base import Sampling
    from deltaprompts.models.specs import load_backend
    from deltaprompts.score import score_run
    from deltaprompts.score_ray import RayScoring

    ray, ctx = cluster
    cut = tmp_path / "cut"
    shutil.copytree(run, cut)

    def progress(done: int, total: int) -> None:  # stop as the first batch lands, as a kill would
        if done:
            raise Interrupted

    with pytest.raises(Interrupted), RayScoring() as pool:
        score_run(cut, load_backend(SIM[1]), load_backend(SIM[3]), k=8, batch_size=3, sampling=Sampling(),
                  progress=progress, executor=pool)
    assert len((cut / "scores" / "deltas.jsonl").read_text().splitlines()) == 3
    env = {**os.environ, "RAY_ADDRESS": ctx.address_info["gcs_address"]}
    res = subprocess.run([sys.executable, "-m", "deltaprompts.cli", "score", str(cut), *SIM, "--k", "8",
                          "--batch-size", "3", "--quiet", "--executor", "ray"],
                         capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr
    assert "scored 9 items (3 already scored)" in res.stdout
    assert digest(cut) == digest(local_ref)
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2, "a joining driver stopped the cluster"


def test_a_model_error_in_a_worker_is_the_same_one_line_error(cluster, run, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    dest = tmp_path / "dead"
    shutil.copytree(run, dest)
    # an openai: client cannot be pickled: the worker builds it from its spec, and its server is not there
    res = invoke("score", dest, "--teacher", "openai:m@http://127.0.0.1:9/v1?retries=0", "--student", SIM[3],
                 "--k", 2, "--quiet", "--executor", "ray")
    assert res.exit_code == 1
    assert "error: OpenAI-compatible server http://127.0.0.1:9/v1 (model m) failed: connection error" in res.output
    assert "Traceback" not in res.output
    assert not (dest / "scores" / "deltas.jsonl").exists()


def test_hf_models_score_in_ray_actors_as_they_do_locally(cluster, run, tmp_path):
    pytest.importorskip("transformers")
    from deltaprompts.models.tiny import build_tiny_vlm

    model = build_tiny_vlm("llava", tmp_path / "llava")
    # one model as both teacher and student (their samples differ by seed): one actor holds it for both
    args = ["--teacher", f"hf:{model}?threads=1", "--student", f"hf:{model}?threads=1", "--k", 3,
            "--max-new-tokens", 6, "--batch-size", 5, "--quiet"]
    runs = {}
    for mode in ("local", "ray"):
        runs[mode] = tmp_path / mode
        shutil.copytree(run, runs[mode])
        res = invoke("score", runs[mode], *args, "--executor", mode)
        assert res.exit_code == 0, res.output
        assert "scored 12 items" in res.output
    assert digest(runs["ray"]) == digest(runs["local"])
    forced = [json.loads(x) for x in (runs["ray"] / "scores" / "forced.jsonl").read_text().splitlines()]
    assert len(forced) == 12 * 3 and all(f["teacher_logprob"] < 0 and f["student_logprob"] < 0 for f in forced)
    # GPUs by request: a cluster without them says so instead of waiting for ever
    shutil.copytree(run, tmp_path / "gpu")
    res = invoke("score", tmp_path / "gpu", *args, "--executor", "ray", "--gpus-per-model", 1)
    assert res.exit_code == 2 and "need 1 CPUs and 1 GPUs; the Ray cluster has 2 CPUs and 0 GPUs" in res.output


def test_run_on_ray_writes_the_same_pipeline_as_a_local_run(cluster, tmp_path):
    import yaml

    from deltaprompts.pipeline.rounds import run_pipeline
    from tests.pipeline.helpers import small_config

    run_pipeline(small_config(tmp_path / "local", rounds=1))
    config = tmp_path / "ray.yaml"
    cfg = small_config(tmp_path / "ray", rounds=1)
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    res = invoke("run", config, "--executor", "ray")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["status"] == "complete"
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*")
                   if p.suffix in (".jsonl", ".png") or p.name == "rounds.json")
    assert any(p.parts[:2] == ("round-01", "gen") for p in local) and Path("seed/scores/deltas.jsonl") in local
    for rel in local:
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes(), rel


@pytest.mark.parametrize("args,message", [
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--ray-address", "ray://head:10001"], "--ray-address: options of --executor ray; add --executor ray"),
    (["--gpus-per-model", "1", "--workers", "2"], "--workers, --gpus-per-model: options of --executor ray"),
])
def test_bad_executor_options_fail_in_one_line(args, message, run):
    res = invoke("score", run, *SIM, *args)
    assert res.exit_code == 2 and message in res.output


def test_executor_ray_without_ray_names_the_extra(monkeypatch, run, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    res = invoke("score", run, *SIM, "--executor", "ray")
    assert res.exit_code == 2
    assert res.output.strip() == "error: --executor ray needs Ray: pip install 'deltaprompts[ray]'"
    (tmp_path / "cfg.toml").write_text("")
    res = invoke("run", tmp_path / "cfg.toml", "--executor", "ray")
    assert res.output.strip() == "error: --executor ray needs Ray: pip install 'deltaprompts[ray]'"


def test_a_model_a_worker_cannot_build_comes_back_as_its_error():
    from deltaprompts.errors import UserError
    from deltaprompts.score_ray import ScoreWorker, _TaskError

    # a spec that builds on the driver's machine but not on a worker's (here: one that builds nowhere)
    got = ScoreWorker({"teacher": "sim:no such name", "student": "sim:s"}, None).identities()
    assert isinstance(got, _TaskError)
    e = got.rebuild()
    assert type(e) is UserError and "sim spec 'sim:no such name'" in str(e)


def test_audit_on_ray_scores_and_reports_as_locally(cluster, run, tmp_path):
    outs = {}
    for mode in ("local", "ray"):
        dest = tmp_path / mode
        shutil.copytree(run, dest)
        res = invoke("audit", dest, *SIM, "--k", 8, "--executor", mode)
        assert res.exit_code == 0, res.output
        # the report without its last line, the audit.json path (which the console may wrap)
        outs[mode] = res.output[:res.output.rindex("audit:")].splitlines()
    assert outs["ray"] == outs["local"] and any(line.startswith("zero-delta: ") for line in outs["ray"])
    assert digest(tmp_path / "ray") == digest(tmp_path / "local")
    reports = [json.loads((tmp_path / mode / "audit.json").read_text()) for mode in ("ray", "local")]
    assert [r.pop("run") for r in reports] == [str(tmp_path / "ray"), str(tmp_path / "local")]
    assert reports[0] == reports[1]
