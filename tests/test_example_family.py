"""The documented example family works as a third-party plugin: entry point, templates, generate."""

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deltaprompts.cli import app
from deltaprompts.generators import base

DOCS = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.fixture()
def plugin(monkeypatch):
    """Load docs/examples/dots_family.py as if a package declared it under the entry point group."""
    spec = importlib.util.spec_from_file_location("dots_family", DOCS / "dots_family.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class EntryPoint:
        name = "example.dots"

        def load(self):
            return module.Dots

    registry = base.FAMILIES
    monkeypatch.setattr(registry, "_items", dict(registry._items))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr("deltaprompts.registry.entry_points", lambda group: [EntryPoint()] if group == registry._group else [])
    yield module.Dots


def test_example_family_generates_through_the_cli(plugin, tmp_path):
    res = CliRunner().invoke(app, ["generate", "--family", "example.dots", "--n", "6", "--templates", str(DOCS),
                                   "--out", str(tmp_path / "run"), "--quiet", "--knob", "n_dots=8"])
    assert res.exit_code == 0, res.output
    items = [json.loads(x) for p in (tmp_path / "run" / "items").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert len(items) == 6
    for it in items:
        color = it["question"]["program"]["args"][0]["params"]["value"]
        dots = it["spec"]["data"]["dots"]
        assert len(dots) == 8
        assert it["question"]["value"] == sum(d["color"] == color for d in dots)


def test_example_family_is_listed(plugin):
    res = CliRunner().invoke(app, ["list", "families"])
    assert res.exit_code == 0 and "example.dots" in res.output
