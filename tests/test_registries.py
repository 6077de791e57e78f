"""Checks and export formats are registries: a plug-in registers by decorator and runs through the normal paths."""

from __future__ import annotations

import json

import pytest

from deltaprompts.errors import UnknownNameError
from deltaprompts.exports import EXPORTS, ExportOptions, export_format, export_run
from deltaprompts.generate import GenerateConfig, generate, resolve_all_knobs
from deltaprompts.store import RunStore, atomic_write
from deltaprompts.verifiers.checks import CHECKS, check_item, item_check


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    fams = ["scene.shapes"]
    generate(GenerateConfig(families=fams, n=4, seed=1, knobs=resolve_all_knobs(fams, {})), out)
    return out


def test_a_registered_check_runs_in_check_item(run):
    item = next(RunStore(run).iter_items())

    @item_check("test_always_rejects")
    def _always(it, cfg):
        return "test_reason"

    try:
        assert check_item(item)[-1] == "test_reason"  # plug-ins run after the built-ins
        assert check_item(item, names=["test_always_rejects"]) == ["test_reason"]
        assert list(CHECKS)[:2] == ["not_derivable", "degenerate"]  # registration order, not sorted
    finally:
        CHECKS._items.pop("test_always_rejects")


def test_an_unknown_check_says_did_you_mean(run):
    item = next(RunStore(run).iter_items())
    with pytest.raises(UnknownNameError, match="unknown check 'own_answr'; did you mean 'own_answer'"):
        check_item(item, names=["own_answr"])


def test_a_registered_export_format_runs_through_export_run(run, tmp_path, monkeypatch):

    @export_format("test-ids")
    def _ids(items, deltas, out, options: ExportOptions):
        atomic_write(out / "ids.json", json.dumps([it.id for it in items]))
        return ["ids.json"]

    try:
        summary = export_run(run, "test-ids", tmp_path / "o")
        assert summary.files == ["ids.json"] and summary.format == "test-ids"
        ids = json.loads((tmp_path / "o" / "ids.json").read_text())
        assert ids == [it.id for it in RunStore(run).iter_items()]
    finally:
        EXPORTS._items.pop("test-ids")


def test_an_unknown_format_says_did_you_mean(run, tmp_path):
    assert {"hf", "parquet", "llava", "messages", "lmms-eval"} <= set(EXPORTS.names())
    with pytest.raises(UnknownNameError, match="unknown export format 'llavaa'; did you mean 'llava'"):
        export_run(run, "llavaa", tmp_path / "o")


def test_a_builtin_module_that_fails_to_import_is_named_not_hidden():
    from deltaprompts.errors import DeltaError
    from deltaprompts.registry import Registry

    reg = Registry("thing", modules=("json", "deltaprompts.no_such_module_here"))
    for _ in range(2):  # the second lookup fails the same way, not with a half-filled registry
        with pytest.raises(DeltaError, match="deltaprompts.no_such_module_here failed to import"):
            reg.get("x")
