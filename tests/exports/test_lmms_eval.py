"""The lmms-eval task folder: it stands alone (moved, without deltaprompts), its YAML names real hooks, and its
vendored scorer gives exactly deltaprompts.verifiers' scores."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from deltaprompts.errors import UserError
from deltaprompts.exports import export_run
from deltaprompts.split import SplitConfig, split_run
from deltaprompts.verifiers import score_answer, score_item_answer
from tests.verifiers.test_cases import EXAMPLES, ROWS, _options

datasets = pytest.importorskip("datasets")


def load_task_yaml(path):
    """Load a task YAML as lmms-eval does: `!function mod.attr` is attribute `attr` of mod.py beside the YAML."""
    def import_function(loader, node):
        *module, attr = loader.construct_scalar(node).split(".")
        spec = importlib.util.spec_from_file_location(".".join(module), path.parent / f"{'.'.join(module)}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return getattr(mod, attr)

    loader = type("TaskLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", import_function)
    return yaml.load(path.read_text(), Loader=loader)


@pytest.fixture(scope="module")
def task(scored_run, tmp_path_factory):
    """An eval-side task exported, then moved to another folder (the original is gone)."""
    run = tmp_path_factory.mktemp("lm") / "run"
    shutil.copytree(scored_run, run)
    result = split_run(run, SplitConfig(eval_fraction=0.5))
    out = tmp_path_factory.mktemp("lm") / "task"
    export_run(run, "lmms-eval", out, split="eval", task="dp_heldout")
    moved = tmp_path_factory.mktemp("elsewhere") / "moved_task"
    shutil.move(out, moved)
    return moved, result, tmp_path_factory.mktemp("cache"), run


def test_task_yaml_points_at_the_moved_folder_and_the_utils_hooks(task):
    out, result, cache, _ = task
    cfg = load_task_yaml(out / "dp_heldout.yaml")
    assert cfg["task"] == "dp_heldout" and cfg["output_type"] == "generate_until"
    assert Path(cfg["dataset_path"]) == out.resolve() and cfg["test_split"] == "test"
    assert cfg["metric_list"] == [{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}]
    for key in ("doc_to_visual", "doc_to_text", "doc_to_target", "process_results"):
        assert callable(cfg[key]) and cfg[key].__name__ == key
    # lmms-eval calls datasets.load_dataset(path=dataset_path, ...)[test_split], from any working directory
    docs = datasets.load_dataset(path=cfg["dataset_path"], cache_dir=str(cache))[cfg["test_split"]]
    assert sorted(docs["id"]) == result.eval
    summary = json.loads((out / "export.json").read_text())
    assert {"utils.py", "dp_heldout.yaml", "deltaprompts_scoring.py"} <= set(summary["files"])


def test_the_instruction_lives_in_lmms_eval_specific_kwargs(task):
    out, _, cache, run = task
    from deltaprompts.exports import prompt_text
    from deltaprompts.store import RunStore

    cfg = load_task_yaml(out / "dp_heldout.yaml")
    kwargs = cfg["lmms_eval_specific_kwargs"]["default"]
    assert kwargs["pre_prompt"] == "" and kwargs["post_prompt"]
    items = {it.id: it for it in RunStore(run).iter_items()}
    utils = cfg["doc_to_text"].__globals__
    for doc in datasets.load_dataset(path=str(out), cache_dir=str(cache))["test"]:
        item = items[doc["id"]]
        assert doc["question"] == item.question.text  # the raw question, no instruction
        # the default kwargs rebuild exactly the prompt the score stage asked (plain format)
        assert utils["doc_to_text"](doc, kwargs) == prompt_text(item, "plain")
        override = {"pre_prompt": "Look. ", "post_prompt": " Go."}  # a per-model entry replaces the default
        assert utils["doc_to_text"](doc, override) == "Look. " + doc["question"] + " Go."


def test_a_format_that_rewrites_the_question_is_refused_and_raw_has_no_instruction(scored_run, tmp_path):
    from deltaprompts.exports.lmms_eval import instructions
    from deltaprompts.store import RunStore

    items = list(RunStore(scored_run).iter_items())
    assert instructions(items, "raw") == {"post_prompt": ""}
    assert instructions(items, "boxed")["post_prompt"] == "\nPut your final answer in \\boxed{}."
    choice = [it for it in items if it.question.options]
    if choice:
        with pytest.raises(UserError, match="post_prompt"):
            instructions(choice, "multiple_choice")


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Blocker())
"""

SCORER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("utils", sys.argv[1] + "/utils.py")  # as lmms-eval's !function does
utils = importlib.util.module_from_spec(spec)
spec.loader.exec_module(utils)
assert "deltaprompts" not in sys.modules
import datasets
job = json.load(sys.stdin)
docs = datasets.load_dataset(path=utils.DATASET_PATH, cache_dir=job["cache"])["test"]
out = {"docs": {}}
for d in docs:
    preds = [d["answer"], "The answer is " + d["answer"] + ".", "\\\\boxed{" + d["answer"] + "}"] + job["wrong"]
    out["docs"][d["id"]] = [utils.process_results(d, [p])["accuracy"] for p in preds] + [utils.process_results(d, [])["accuracy"]]
out["cases"] = [utils.scoring.score_answer(p, t, a, o, **k) for p, t, a, o, k in job["cases"]]
out["modules"] = sorted(m for m in sys.modules if m.startswith(("deltaprompts", "rapidfuzz")))
print(json.dumps(out))
"""

WRONG = ["no idea whatsoever", "yes", "no", "(A)", "B", "0", "42", "3.5", "red", "Answer: 7", "", "<think>x</think>"]


@pytest.mark.parametrize("blocked", [("deltaprompts",), ("deltaprompts", "rapidfuzz")], ids=["no-deltaprompts", "no-rapidfuzz-either"])
def test_utils_scores_every_item_as_the_verifiers_without_deltaprompts(task, blocked, tmp_path):
    out, _, cache, run = task
    cases = [(r["prediction"], r["ground_truth"], r["answer_type"], _options(r["options"]), {}) for r in ROWS]
    cases += [(p, t, a, None, k) for p, t, a, k, _ in EXAMPLES]
    script = BLOCKER.format(blocked=blocked) + SCORER
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    proc = subprocess.run([sys.executable, "-c", script, str(out)], input=json.dumps(
        {"cache": str(cache), "wrong": WRONG, "cases": cases}), capture_output=True, text=True, cwd=tmp_path,
        env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not [m for m in got["modules"] if m.split(".")[0] in blocked]
    docs = datasets.load_dataset(path=str(out), cache_dir=str(cache))["test"]
    assert len(got["docs"]) == len(docs) > 0
    for d in docs:
        q = SimpleNamespace(answer=d["answer"], answer_type=d["answer_type"], tolerance=d["tolerance"],
                            options=json.loads(d["options"]) if d["options"] else None, abs_tol=d["abs_tol"])
        preds = [d["answer"], "The answer is " + d["answer"] + ".", "\\boxed{" + d["answer"] + "}", *WRONG, ""]
        want = [float(score_item_answer(SimpleNamespace(question=q), p)) for p in preds]
        assert got["docs"][d["id"]] == want, d["id"]
        assert want[:3] == [1.0, 1.0, 1.0] and want[3] == 0.0
    assert got["cases"] == [score_answer(p, t, a, o, **k) for p, t, a, o, k in cases]


def test_the_vendored_scorer_is_regenerated_from_the_verifiers(task):
    from deltaprompts.exports.lmms_eval import scoring_source

    assert (task[0] / "deltaprompts_scoring.py").read_text() == scoring_source()
    assert not re.search(r"\b(import|from) deltaprompts\b(?!_scoring)", scoring_source())


def test_utils_uses_options_and_tolerance_of_hand_written_docs(task):
    utils = load_task_yaml(task[0] / "dp_heldout.yaml")["process_results"].__globals__
    pr = utils["process_results"]
    choice = {"question": "Which shape? Options: (A) hexagon (B) diamond", "answer": "B", "answer_type": "choice",
              "options": json.dumps({"A": "hexagon", "B": "diamond"}), "tolerance": None}
    assert [pr(choice, [p])["accuracy"] for p in ("B", "(B) diamond", "diamond", "A", "hexagon")] \
        == [1.0, 1.0, 1.0, 0.0, 0.0]
    number = {"question": "Ratio?", "answer": "3.29", "answer_type": "number", "options": None, "tolerance": 0.2}
    assert [pr(number, [p])["accuracy"] for p in ("3.3", "3.9", "4.5")] == [1.0, 1.0, 0.0]
    assert pr({**number, "tolerance": None}, ["3.9"])["accuracy"] == 0.0  # the default is tighter
    total = {"question": "Total?", "answer": "$1000.00", "answer_type": "currency", "options": None, "tolerance": 0.0,
             "abs_tol": 0.005, "tolerance_source": "printed"}
    assert [pr(total, [p])["accuracy"] for p in ("$1,000.00", "1000", "$1,000.01", "$1,049.00")] \
        == [1.0, 1.0, 0.0, 0.0]
    assert pr({**total, "abs_tol": None, "tolerance": None}, ["$1,049.00"])["accuracy"] == 1.0


def test_a_task_name_lmms_eval_cannot_register_is_refused(scored_run, tmp_path):
    with pytest.raises(UserError, match="task name"):
        export_run(scored_run, "lmms-eval", tmp_path / "t", task="bad name!")
    assert not (tmp_path / "t").exists()
