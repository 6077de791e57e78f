"""Items printed in a locale (de_DE: 1.035,00 €) score the same in every export: the locale travels in
a column and the lmms-eval task's vendored scorer reads a German-written answer as the verifiers do."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.exports import export_run
from deltaprompts.generators.locales import format_number
from deltaprompts.store import RunStore
from deltaprompts.verifiers import score_item_answer
from tests.exports.test_lmms_eval import BLOCKER

datasets = pytest.importorskip("datasets")
pd = pytest.importorskip("pandas")

SCORER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("utils", sys.argv[1] + "/utils.py")
utils = importlib.util.module_from_spec(spec)
spec.loader.exec_module(utils)
assert "deltaprompts" not in sys.modules
import datasets
job = json.load(sys.stdin)
dd = datasets.load_dataset(path=utils.DATASET_PATH, cache_dir=job["cache"])
docs = dd[list(dd)[0]]
print(json.dumps({d["id"]: [utils.process_results(d, [p])["accuracy"] for p in job["preds"][d["id"]]] for d in docs}))
"""


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    run = tmp_path_factory.mktemp("de") / "run"
    res = CliRunner().invoke(app, ["generate", "--family", "document.bank_statement,document.payslip", "--n", "16",
                                   "--knob", "locale=de_DE", "--out", str(run), "--quiet", "--mc-fraction", "0"])
    assert res.exit_code == 0, res.output
    items = [it for it in RunStore(run).iter_items()]
    assert {it.question.locale for it in items} == {"de_DE"}
    return run, items


def predictions(item):
    """The answer as written, and numeric answers written the German way (1.035,00) and off by a lot."""
    preds = [item.question.answer]
    if item.question.answer_type in ("number", "currency", "percent") and isinstance(item.question.value, (int, float)):
        value = Decimal(str(item.question.value))
        preds += [format_number(value, "de_DE", 2), format_number(value * 3 + 7, "de_DE", 2)]
    return preds


def test_lmms_eval_scores_german_answers_without_deltaprompts(german, tmp_path):
    run, items = german
    out = tmp_path / "task"
    export_run(run, "lmms-eval", out, task="dp_de")
    preds = {it.id: predictions(it) for it in items}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    proc = subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=("deltaprompts",)) + SCORER, str(out)],
                          input=json.dumps({"cache": str(tmp_path / "cache"), "preds": preds}), capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    german_written = 0
    for it in items:
        want = [float(score_item_answer(it, p)) for p in preds[it.id]]
        assert got[it.id] == want, (it.question.answer, preds[it.id])
        if len(want) == 3:
            german_written += 1
            assert want[1:] == [1.0, 0.0]  # 1.035,00 is the answer; the far value is not
    assert german_written >= 3


def test_the_locale_column_is_in_hf_and_vlmevalkit(german, tmp_path):
    run, items = german
    export_run(run, "parquet", tmp_path / "pq")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "pq" / "data" / "*.parquet"))["train"]
    assert set(ds["locale"]) == {"de_DE"}
    export_run(run, "vlmevalkit", tmp_path / "vk", task="de")
    df = pd.read_csv(tmp_path / "vk" / "de_VQA.tsv", sep="\t", keep_default_na=False, dtype=str)
    assert set(df["locale"]) == {"de_DE"}
    for _, row in df.iterrows():
        q = SimpleNamespace(answer=row["answer"], answer_type=row["answer_type"], options=None, locale=row["locale"],
                            tolerance=float(row["tolerance"]) if row["tolerance"] else None,
                            abs_tol=float(row["abs_tol"]) if row["abs_tol"] else None)
        assert score_item_answer(SimpleNamespace(question=q), row["answer"]) == 1.0
