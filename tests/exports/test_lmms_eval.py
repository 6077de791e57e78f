"""The lmms-eval task folder: its YAML names real hooks, its dataset loads, utils.py scores docs without lmms-eval."""

import importlib.util
import json
import shutil
import sys

import pytest
import yaml

from deltaprompts.errors import UserError
from deltaprompts.exports import export_run
from deltaprompts.split import SplitConfig, split_run

datasets = pytest.importorskip("datasets")


class _Function(str):
    """What `!function utils.name` parses to here (lmms-eval resolves it to the function)."""


def load_task_yaml(path):
    loader = type("TaskLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda ld, node: _Function(ld.construct_scalar(node)))
    return yaml.load(path.read_text(), Loader=loader)


def import_by_path(path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmms_eval", None)  # proves the hooks need no lmms-eval
    spec = importlib.util.spec_from_file_location("task_utils_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def task(scored_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("lm") / "run"
    shutil.copytree(scored_run, run)
    result = split_run(run, SplitConfig(eval_fraction=0.5))
    out = tmp_path_factory.mktemp("lm") / "task"
    export_run(run, "lmms-eval", out, split="eval", task="dp_heldout")
    return out, result, tmp_path_factory.mktemp("cache")


def test_task_yaml_points_at_the_dataset_and_the_utils_hooks(task, monkeypatch):
    out, result, cache = task
    cfg = load_task_yaml(out / "dp_heldout.yaml")
    assert cfg["task"] == "dp_heldout" and cfg["output_type"] == "generate_until"
    assert cfg["dataset_path"] == str(out.resolve()) and cfg["test_split"] == "test"
    assert cfg["metric_list"] == [{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}]
    utils = import_by_path(out / "utils.py", monkeypatch)
    for key in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results"):
        assert isinstance(cfg[key], _Function) and cfg[key] == f"utils.{key}"
        assert callable(getattr(utils, key))
    # lmms-eval calls datasets.load_dataset(path=dataset_path, ...)[test_split]
    docs = datasets.load_dataset(path=cfg["dataset_path"], cache_dir=str(cache))[cfg["test_split"]]
    assert sorted(docs["id"]) == result.eval


def test_utils_scores_docs_with_the_verifiers(task, monkeypatch):
    out, _, cache = task
    utils = import_by_path(out / "utils.py", monkeypatch)
    docs = datasets.load_dataset(path=str(out), cache_dir=str(cache))["test"]
    assert len(docs) > 0
    for doc in docs:
        [image] = utils.doc_to_visual(doc)
        assert image.mode == "RGB" and image.size[0] > 0
        text = utils.doc_to_text(doc, {"pre_prompt": "Look. ", "post_prompt": ""})
        assert text == "Look. " + doc["question"] and utils.doc_to_target(doc) == doc["answer"]
        assert utils.process_results(doc, [doc["answer"]]) == {"accuracy": 1.0}
        assert utils.process_results(doc, ["The answer is " + doc["answer"] + "."]) == {"accuracy": 1.0}
        assert utils.process_results(doc, ["no idea whatsoever"]) == {"accuracy": 0.0}
        assert utils.process_results(doc, []) == {"accuracy": 0.0}


def test_utils_uses_options_and_tolerance_of_hand_written_docs(task, monkeypatch):
    utils = import_by_path(task[0] / "utils.py", monkeypatch)
    choice = {"question": "Which shape? Options: (A) hexagon (B) diamond", "answer": "B", "answer_type": "choice",
              "options": json.dumps({"A": "hexagon", "B": "diamond"}), "tolerance": None}
    assert [utils.process_results(choice, [p])["accuracy"] for p in ("B", "(B) diamond", "diamond", "A", "hexagon")] \
        == [1.0, 1.0, 1.0, 0.0, 0.0]
    number = {"question": "Ratio?", "answer": "3.29", "answer_type": "number", "options": None, "tolerance": 0.2}
    assert [utils.process_results(number, [p])["accuracy"] for p in ("3.3", "3.9", "4.5")] == [1.0, 1.0, 0.0]
    assert utils.process_results({**number, "tolerance": None}, ["3.9"])["accuracy"] == 0.0  # the default is tighter
    # a printed total: exact to the cent (abs_tol half a cent, no relative slack), as the score stage scores it
    total = {"question": "Total?", "answer": "$1000.00", "answer_type": "currency", "options": None, "tolerance": 0.0,
             "abs_tol": 0.005, "tolerance_source": "printed"}
    assert [utils.process_results(total, [p])["accuracy"] for p in ("$1,000.00", "1000", "$1,000.01", "$1,049.00")] \
        == [1.0, 1.0, 0.0, 0.0]
    assert utils.process_results({**total, "abs_tol": None, "tolerance": None}, ["$1,049.00"])["accuracy"] == 1.0


def test_a_task_name_lmms_eval_cannot_register_is_refused(scored_run, tmp_path):
    with pytest.raises(UserError, match="task name"):
        export_run(scored_run, "lmms-eval", tmp_path / "t", task="bad name!")
    assert not (tmp_path / "t").exists()
