"""Runs written before `Question.family` became `question_family` still read, check, score and export."""

import json
import shutil

import pyarrow.parquet as pq

from deltaprompts.exports import export_run
from deltaprompts.records import Item
from deltaprompts.store import RunStore
from deltaprompts.verifiers.run_checks import verify_run


def _as_written_before(run) -> None:
    """Rewrite every item line with the old key, in place, as a run of the earlier version holds it."""
    for shard in RunStore(run).shard_files():
        lines = []
        for line in shard.read_text().splitlines():
            item = json.loads(line)
            item["question"] = {("family" if k == "question_family" else k): v for k, v in item["question"].items()}
            lines.append(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
        shard.write_text("".join(x + "\n" for x in lines))


def test_a_run_written_before_the_rename_reads_the_same(scored_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(scored_run, old)
    _as_written_before(old)
    assert '"family":"scene.' in (old / "items" / "shard-00000.jsonl").read_text()
    now, then = list(RunStore(scored_run).iter_items()), list(RunStore(old).iter_items())
    assert now == then and all(it.question.question_family for it in then)
    # written again, an old item is today's line: the new field name, everything else unchanged
    line = (scored_run / "items" / "shard-00000.jsonl").read_text().splitlines()[0]
    assert then[0].model_dump_json() == line and '"question_family":' in line
    assert Item.model_validate_json(line) == then[0]
    assert [it.id for it in verify_run(old)] == [it.id for it in now]  # the run checks pass
    a = export_run(old, "parquet", tmp_path / "a")
    b = export_run(scored_run, "parquet", tmp_path / "b")
    pa, pb = (next(f for f in x.files if f.endswith(".parquet")) for x in (a, b))
    ta = pq.read_table(tmp_path / "a" / pa).drop_columns(["image"])
    tb = pq.read_table(tmp_path / "b" / pb).drop_columns(["image"])
    assert ta.equals(tb) and set(ta.column("question_family").to_pylist()) == {it.question.question_family for it in now}
