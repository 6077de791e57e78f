"""`generate --executor ray` (issue 20): the same bytes as the local pool, resumable, errors as themselves."""

import json
import os
import subprocess
import sys

import pytest

from deltaprompts.errors import TemplateError, UnknownNameError
from tests.test_cli import invoke, tree_digest

ARGS = ["generate", "--family", "scene.shapes,document.invoice", "--mc-fraction", "0.3", "--quiet", "--n", "16",
        "--seed", "5", "--shard-size", "2"]


@pytest.fixture(scope="module")
def local_ref(tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "local"
    res = invoke(*ARGS, "--workers", "2", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def test_ray_writes_the_same_items_and_images_as_the_local_pool(cluster, local_ref, tmp_path):
    res = invoke(*ARGS, "--executor", "ray", "--out", tmp_path / "ray")
    assert res.exit_code == 0, res.output
    assert "wrote 16 items" in res.output
    assert tree_digest(tmp_path / "ray") == tree_digest(local_ref)
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["status"] == "complete"


class Interrupted(Exception):
    pass


def test_an_interrupted_ray_run_resumes_over_ray_address_to_the_same_bytes(cluster, local_ref, tmp_path):
    from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs

    ray, ctx = cluster
    out = tmp_path / "cut"
    fams = ["scene.shapes", "document.invoice"]  # the config ARGS make, so that the CLI resumes it
    cfg = GenerateConfig(families=fams, knobs=resolve_all_knobs(fams, {}), n=16, seed=5, mc_fraction=0.3, shard_size=2)
    seen = []

    def progress(done: int, total: int) -> None:  # stop the run as its first shard lands, as a kill would
        seen.append(done)
        if done:
            raise Interrupted

    with pytest.raises(Interrupted):
        generate(cfg, out, executor="ray", progress=progress)
    done = len(list(out.glob("items/*.stats.json")))
    assert 1 <= done < cfg.n_shards, "the interrupt should land mid-run"
    # the resume is another process, a driver that joins the running cluster through RAY_ADDRESS
    env = {**os.environ, "RAY_ADDRESS": ctx.address_info["gcs_address"]}
    res = subprocess.run([sys.executable, "-m", "deltaprompts.cli", *ARGS, "--executor", "ray", "--resume",
                          "--out", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert tree_digest(out) == tree_digest(local_ref)
    assert json.loads((out / "manifest.json").read_text())["counts"]["items"] == 16
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2, "a joining driver must not stop the cluster"


def test_an_error_in_a_ray_task_is_raised_as_itself(cluster, tmp_path):
    from deltaprompts.generate import GenerateConfig, _ray_shards, resolve_all_knobs

    # a config the driver never checked: the template folder is missing only where the task runs
    cfg = GenerateConfig(families=["scene.shapes"], knobs=resolve_all_knobs(["scene.shapes"], {}), n=2,
                         template_dirs=[str(tmp_path / "missing")])
    with pytest.raises(TemplateError, match="template folder .*missing"):
        list(_ray_shards(cfg, str(tmp_path / "run"), iter([0]), 2, None))


def test_an_error_whose_class_has_its_own_init_survives_the_trip(cluster):
    from deltaprompts.generate import _TaskError

    ray, _ = cluster
    e = ray.get(ray.remote(lambda: _TaskError(UnknownNameError("family", "chart.bat", ["chart.bar"]))).remote()).rebuild()
    assert type(e) is UnknownNameError and e.name == "chart.bat"
    assert str(e) == "unknown family 'chart.bat'; did you mean 'chart.bar'? Allowed: chart.bar"


def test_executor_ray_without_ray_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    res = invoke(*ARGS, "--executor", "ray", "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert res.output.strip() == "error: --executor ray needs Ray: pip install 'deltaprompts[ray]'"


@pytest.mark.parametrize("args,message", [
    (["--executor", "dask"], "unknown executor 'dask'"),
    (["--ray-address", "ray://head:10001"], "--ray-address is the cluster of --executor ray"),
])
def test_bad_executor_options_fail_in_one_line(args, message, tmp_path):
    res = invoke(*ARGS, *args, "--out", tmp_path / "o")
    assert res.exit_code == 2 and message in res.output
