"""`generate --topics FILE.yaml`: user topic packs, validated like the built-in ones; adding one moves
only the charts that draw its topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.errors import TemplateError
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.generators.chart_sampling import load_topics

PACK = Path(__file__).resolve().parents[1] / "examples" / "domain-packs" / "energy-markets" / "topics.yaml"
runner = CliRunner()


def _topic(id_: str, **over) -> dict:
    t = {"id": id_, "value_noun": "output", "unit": "GWh", "value_label": "Output (GWh)", "category_noun": "plant",
         "category_label": "Plant", "categories": [f"Plant {c}" for c in "ABCDEFGHIJ"], "series_noun": "year",
         "series": ["@years"], "range": [100, 900], "kinds": ["bar"], "titles": ["Output by Plant, {year}"]}
    return t | over


def _pack(tmp_path: Path, name: str, *topics: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"topics": list(topics)}))
    return str(path)


def _run(out: Path, packs: list[str]) -> dict[int, tuple[str, str, bytes]]:
    cfg = GenerateConfig(families=["chart.bar"], n=40, seed=4, knobs=resolve_all_knobs(["chart.bar"], {}),
                         balance_ratio=None, topic_files=packs)
    generate(cfg, out)
    got = {}
    for f in sorted((out / "items").glob("*.jsonl")):
        for line in f.read_text().splitlines():
            it = json.loads(line)
            got[it["spec"]["index"]] = (it["spec"]["data"]["topic"], line, (out / it["image"]["path"]).read_bytes())
    return got


def test_an_added_pack_moves_only_the_charts_that_draw_its_topics(tmp_path):
    before = _run(tmp_path / "before", [])
    pack = _pack(tmp_path, "plants.yaml", *(_topic(f"my_plants_{i}") for i in range(3)))
    after = _run(tmp_path / "after", [pack])
    moved = [i for i in after if after[i][0].startswith("my_plants_")]
    assert moved, "the pack's topics drew no chart"
    assert set(before) == set(after)
    for i in after:
        if i not in moved:
            assert after[i][1:] == before[i][1:], i  # same item line, same PNG bytes
    assert all(before[i][0] != after[i][0] for i in moved)


def test_topics_only_draws_only_the_packs_topics(tmp_path):
    fams = ["chart.line", "chart.pie"]
    cfg = GenerateConfig(families=fams, n=6, seed=1, knobs=resolve_all_knobs(fams, {}), balance_ratio=None,
                         topic_files=[str(PACK)], topics_only=True)
    generate(cfg, tmp_path / "run")
    ids = {t.id for t in load_topics([str(PACK)], only=True)}
    lines = [json.loads(x) for f in (tmp_path / "run" / "items").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert lines and {it["spec"]["data"]["topic"] for it in lines} <= ids
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]["topic_files"] == [str(PACK)]


def test_a_config_without_packs_writes_the_manifest_it_always_wrote():
    cfg = GenerateConfig(families=["chart.bar"], n=1)
    assert not {"topic_files", "topics_only", "data_file", "data_sha256"} & set(json.loads(cfg.model_dump_json()))


@pytest.mark.parametrize("topic, want", [
    (_topic("x", kinds=["barr"]), r"topic 'x': kinds: 'barr' is not a chart kind"),
    (_topic("x", colour="red"), r"topic 'x': colour="),
    ({k: v for k, v in _topic("x").items() if k != "unit"}, r"topic 'x': unit="),
    (_topic("x", range=[900, 100]), r"topic 'x': range: \[900.0, 100.0\] must be \[low, high\]"),
    (_topic("revenue_region"), r"topic 'revenue_region' is also defined in .*charts.yaml"),
])
def test_a_bad_pack_is_one_line_naming_file_topic_and_field(tmp_path, topic, want):
    pack = _pack(tmp_path, "bad.yaml", topic)
    with pytest.raises(TemplateError, match=want):
        load_topics([pack])
    r = runner.invoke(app, ["generate", "--family", "chart.bar", "--topics", pack, "--n", "2", "--out",
                            str(tmp_path / "run"), "-q"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "bad.yaml" in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_pack_mistakes_of_the_command_line(tmp_path):
    def gen(*args):
        return runner.invoke(app, ["generate", *map(str, args), "--n", "2", "--out", str(tmp_path / "run"), "-q"])

    r = gen("--family", "chart.bar", "--topics", tmp_path / "missing.yaml")
    assert r.exit_code == 2 and "missing.yaml: no such topic pack" in r.output
    r = gen("--family", "chart.bar", "--topics-only")
    assert r.exit_code == 2 and "--topics-only needs a topic pack" in r.output
    r = gen("--family", "chart.pie", "--topics", _pack(tmp_path, "bars.yaml", _topic("only_bars")), "--topics-only")
    assert r.exit_code == 2 and "can draw chart.pie" in r.output
    (tmp_path / "empty.yaml").write_text("topics: []\n")
    r = gen("--family", "chart.bar", "--topics", tmp_path / "empty.yaml")
    assert r.exit_code == 2 and "non-empty `topics:` list" in r.output


def test_resume_with_other_packs_is_refused(tmp_path):
    pack = _pack(tmp_path, "plants.yaml", _topic("my_plants"))
    base = ["generate", "--family", "chart.bar", "--n", "2", "--out", str(tmp_path / "run"), "-q"]
    assert runner.invoke(app, base + ["--topics", pack]).exit_code == 0
    r = runner.invoke(app, base + ["--resume"])
    assert r.exit_code == 2 and "topic_files" in r.output
