"""`generate --data FILE`: charts of the user's own table, answers from its values, one-line errors."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.base import FAMILIES
from deltaprompts.generators.user_data import file_sha256, fitting_families, read_table, sample_spec, split_header

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "examples" / "domain-packs" / "energy-markets"
CSV = "Test,Result (mg/dL),Reference high (mg/dL)\nGlucose,92,99\nLDL cholesterol,131,100\nHDL cholesterol,48.5,60\n" \
      "Triglycerides,162,150\nUrea nitrogen,14,20\nCreatinine,0.9,1.3\n"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def items(run: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((run / "items").glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_csv_json_and_parquet_read_to_the_same_table(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    t = read_table(tmp_path / "t.csv")
    records = [{"Test": c, **{col.header: col.cells[i] for col in t.numeric}} for i, c in enumerate(t.label.cells)]
    (tmp_path / "t.json").write_text(json.dumps(records))
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(records), tmp_path / "t.parquet")
    for other in (read_table(tmp_path / "t.json"), read_table(tmp_path / "t.parquet")):
        assert other.label.cells == t.label.cells
        assert [c.cells for c in other.numeric] == [c.cells for c in t.numeric]
    assert not t.time and t.label.noun == "test"
    assert t.numeric[0].decimals == (0, 0, 1, 0, 0, 1)  # as written: 48.5 and 0.9 have one decimal
    assert split_header("Glucose (mg/dL)") == ("glucose", "mg/dL")
    assert split_header("HbA1c [%]") == ("HbA1c", "%")
    assert split_header("LDL cholesterol") == ("LDL cholesterol", "")


def test_kinds_follow_the_shape():
    energy = read_table(PACK / "generation_2024.csv")
    assert energy.time
    assert fitting_families(energy, []) == ["chart.bar", "chart.grouped_bar", "chart.line"]


def test_answers_are_the_tables_values(tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    path = str((tmp_path / "t.csv").resolve())
    fams = ["chart.bar", "chart.grouped_bar", "chart.scatter"]
    cfg = GenerateConfig(families=fams, n=9, seed=2, knobs=resolve_all_knobs(fams, {}), balance_ratio=None,
                         data_file=path, data_sha256=file_sha256(path))
    generate(cfg, tmp_path / "run")
    table = read_table(path)
    by_header = {c.header: c for c in table.numeric} | {c.name: c for c in table.numeric}
    got = items(tmp_path / "run")
    assert {it["family"] for it in got} == set(fams)
    for it in got:
        for e in it["facts"]["entities"]:
            a = e["attrs"]
            row = table.label.cells.index(a["category"])
            assert a["value"] == by_header[a["series"]].cells[row]  # the Facts hold the table's own values
        fam = FAMILIES.get(it["family"])()
        again = sample_spec(fam, 2, it["spec"]["index"], it["spec"]["knobs"], it["provenance"]["attempt"], table)
        assert again.data == it["spec"]["data"]  # the Spec is the same, so the bytes are
    # a --resume after the table changed is refused
    (tmp_path / "t.csv").write_text(CSV.replace("92,99", "93,99"))
    r = invoke("generate", "--data", path, "--family", ",".join(fams), "--n", 9, "--seed", 2, "--balance-ratio", 0,
               "--out", tmp_path / "run", "--resume", "-q")
    assert r.exit_code == 2 and "data_sha256" in r.output


@pytest.mark.parametrize("name, text, want", [
    ("bad.csv", CSV.replace("131", "n/a"), r"bad\.csv: row 2, column 'Result \(mg/dL\)': 'n/a' is not a number"),
    ("gap.csv", CSV.replace("162,", ","), r"gap\.csv: row 4, column 'Result \(mg/dL\)': an empty cell"),
    ("empty.csv", "", r"empty\.csv: the file is empty"),
    ("head.csv", "Test,Result\n", r"head\.csv: the table has a header but no rows"),
    ("nums.csv", "A,B\n1,2\n3,4\n5,6\n", r"nums\.csv: no label column"),
    ("dup.csv", CSV.replace("Urea nitrogen", "Glucose"), r"dup\.csv: row 5, column 'Test': 'Glucose' repeats row 1"),
    ("ragged.csv", CSV.replace("92,99", "92"), r"ragged\.csv: row 1: 2 cells for 3 columns"),
    ("table.xlsx", "x", r"table\.xlsx: unknown data file type '\.xlsx'; allowed: \.csv, \.json, \.parquet"),
    ("bad.json", "[{\"a\": 1,}]", r"bad\.json: not valid JSON \(line 1"),
    ("obj.json", "{\"a\": 1}", r"obj\.json: the JSON must be a non-empty list of records"),
    ("bad.parquet", "not parquet", r"bad\.parquet: not a readable parquet file"),
])
def test_a_bad_table_is_one_line_naming_row_and_column(tmp_path, name, text, want):
    (tmp_path / name).write_text(text)
    r = invoke("generate", "--data", tmp_path / name, "--n", 5, "--out", tmp_path / "run", "-q")
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    assert re.search(want, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


def test_a_family_that_does_not_fit_is_refused_with_the_reason(tmp_path):
    r = invoke("generate", "--data", PACK / "generation_2024.csv", "--family", "chart.hbar", "--n", 5,
               "--out", tmp_path / "run", "-q")
    assert r.exit_code == 2 and "chart.hbar does not fit" in r.output and "named categories" in r.output


def test_the_documented_commands_run_as_written(tmp_path, monkeypatch):
    """The bash block of docs/domain-packs.md, run from the repository root with a smaller --n."""
    doc = (ROOT / "docs" / "domain-packs.md").read_text()
    block = re.search(r"### The commands\n.*?```bash\n(.*?)```", doc, re.S).group(1)
    env: dict[str, str] = {}
    monkeypatch.chdir(ROOT)
    ran = 0
    for line in block.strip().splitlines():
        if re.fullmatch(r"\w+=\S+", line):
            k, v = line.split("=", 1)
            env[k] = v
            continue
        for k, v in env.items():
            line = line.replace(f"${k}", v)
        args = shlex.split(line)
        assert args[0] == "deltaprompts"
        args = [str(tmp_path / a) if a.startswith("runs/") else a for a in args[1:]]
        if args[0] == "generate":
            args[args.index("--n") + 1] = "14"
            args[args.index("--workers") + 1] = "1"
        r = invoke(*args)
        assert r.exit_code == 0, (line, r.output)
        ran += 1
    assert ran == 4
    assert {it["spec"]["data"]["topic"] for it in items(tmp_path / "runs" / "energy-table")} == {"data:generation_2024"}
    topics = {it["spec"]["data"]["topic"] for it in items(tmp_path / "runs" / "energy-topics")}
    assert topics and all(t.startswith("energy_") for t in topics)
