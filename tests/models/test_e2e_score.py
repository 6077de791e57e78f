"""score + screen end to end: a generated suite, a tiny model behind a local OpenAI-compatible server
as teacher and a tiny local transformers model as student; the cache makes a rerun free."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from tests.models.openai_server import FakeOpenAIServer, model_answerer

pytest.importorskip("transformers")
runner = CliRunner()


def test_score_and_screen_with_an_http_teacher_and_a_local_student(tmp_path, tiny_models, hf_backends, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    run = tmp_path / "run"
    res = runner.invoke(app, ["generate", "--family", "scene.shapes,chart.bar", "--n", "6", "--out", str(run), "--quiet"])
    assert res.exit_code == 0, res.output
    workdir = tmp_path / "server_images"
    workdir.mkdir()
    with FakeOpenAIServer(model_answerer(hf_backends["llava"], workdir)) as server:
        teacher = f"openai:tiny-llava@{server.url}?retries=2"
        score = ["score", str(run), "--teacher", teacher, "--student", f"hf:{tiny_models['idefics3']}?threads=1",
                 "--k", "4", "--max-new-tokens", "8", "--cache", str(tmp_path / "cache.sqlite")]
        res = runner.invoke(app, score)
        assert res.exit_code == 0, res.output
        calls = server.count
        assert calls > 0
        deltas = [json.loads(x) for x in (run / "scores" / "deltas.jsonl").read_text().splitlines()]
        assert len(deltas) == 6
        for d in deltas:
            assert sum(d["teacher"].values()) == sum(d["student"].values()) == 4
            assert d["n_teacher"] == d["n_student"] == 4 and 0.0 <= d["value"] <= 1.0

        res = runner.invoke(app, ["screen", str(run), "--min-delta", "0", "--min-teacher-acc", "0", "--out",
                                  str(tmp_path / "kept")])
        assert res.exit_code == 0, res.output
        assert "zero-delta" in res.output
        assert (tmp_path / "kept" / "manifest.json").exists()

        # a rerun from scratch (scores removed) is answered by the response cache: no new server request
        shutil.rmtree(run / "scores")
        res = runner.invoke(app, score)
        assert res.exit_code == 0, res.output
        assert server.count == calls
        again = [json.loads(x) for x in (run / "scores" / "deltas.jsonl").read_text().splitlines()]
        assert [d["value"] for d in again] == [d["value"] for d in deltas]
