"""Registry, knobs, RNG streams, records and the run store."""

import json

import pytest

from deltaprompts.errors import DeltaError, KnobError, UnknownNameError, UserError
from deltaprompts.knobs import Knob, parse_knob_args, resolve_knobs
from deltaprompts.records import RECORDS, Item
from deltaprompts.registry import Registry
from deltaprompts.rng import derive_seed, item_rng
from deltaprompts.store import RunStore, atomic_write


def test_registry_suggests_close_names_and_refuses_duplicates():
    reg: Registry[int] = Registry("widget")
    reg.register("chart.bar", 1)
    reg.register("chart.bar", 1)  # the same object again is fine
    with pytest.raises(DeltaError, match="registered twice"):
        reg.register("chart.bar", 2)
    with pytest.raises(UnknownNameError) as e:
        reg.get("chart.bat")
    assert "did you mean 'chart.bar'" in str(e.value) and "Allowed: chart.bar" in str(e.value)


KNOBS = (Knob("n", "int", 4, "how many", lo=2, hi=8, difficulty="higher is harder"),
         Knob("labels", "bool", True, "value labels"),
         Knob("style", "choice", "plain", "look", choices=("plain", "dark")),
         Knob("dpi", "float", 100.0, "resolution", lo=50, hi=300))


def test_knobs_parse_cli_strings_and_fill_defaults():
    got = resolve_knobs("f", KNOBS, {"n": "6", "labels": "off", "dpi": "150"})
    assert got == {"n": 6, "labels": False, "style": "plain", "dpi": 150.0}


@pytest.mark.parametrize("given,message", [
    ({"n": "9"}, "knob 'n': '9' is out of range; allowed: int in [2, 8]"),
    ({"n": "4.5"}, "knob 'n': '4.5' is not valid; allowed: int in [2, 8]"),
    ({"labels": "maybe"}, "knob 'labels': 'maybe' is not valid; allowed: true or false"),
    ({"style": "neon"}, "knob 'style': 'neon' is not valid; allowed: one of plain, dark"),
])
def test_bad_knob_values_name_the_knob_value_and_range(given, message):
    with pytest.raises(KnobError) as e:
        resolve_knobs("f", KNOBS, given)
    assert str(e.value) == message


def test_unknown_knob_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown knob 'nn' for family f; did you mean 'n'\\? Allowed: dpi, labels, n, style"):
        resolve_knobs("f", KNOBS, {"nn": 3})
    with pytest.raises(KnobError, match="expected name=value"):
        parse_knob_args(["n"])


def test_rng_streams_depend_only_on_their_parts():
    assert derive_seed(1, "a", 2) == derive_seed(1, "a", 2) != derive_seed(1, "a", 3)
    assert item_rng(0, "f", 5).integers(0, 2**32) == item_rng(0, "f", 5).integers(0, 2**32)
    assert item_rng(0, "f", 5).integers(0, 2**32) != item_rng(0, "g", 5).integers(0, 2**32)


def test_every_record_exports_a_json_schema():
    for name, model in RECORDS.items():
        schema = model.model_json_schema()
        assert schema.get("type") == "object" or "$ref" in schema, name
        assert schema.get("properties") or schema["$defs"][name]["properties"]
    assert "question" in Item.model_json_schema()["properties"]


def test_store_refuses_a_non_empty_dir_and_resumes_only_a_run(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty: pass --resume .* or --overwrite"):
        RunStore(tmp_path).prepare(resume=False, overwrite=False)
    with pytest.raises(UserError, match="does not look like a deltaprompts run"):
        RunStore(tmp_path).prepare(resume=False, overwrite=True)
    with pytest.raises(UserError, match="nothing to resume"):
        RunStore(tmp_path).prepare(resume=True, overwrite=False)
    assert (tmp_path / "keep.txt").exists()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "f.json"
    atomic_write(target, json.dumps({"x": 1}))
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_a_dir_holding_only_a_killed_write_is_not_a_run(tmp_path):
    (tmp_path / ".manifest.json.abc.tmp").write_text("{")
    assert RunStore(tmp_path).prepare(resume=False, overwrite=False) is None
    assert list(tmp_path.iterdir()) == []
