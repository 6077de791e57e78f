"""The pipeline config: TOML and YAML load the same; every error names its key and what is allowed."""

from pathlib import Path

import pytest
import yaml

from deltaprompts.errors import UserError
from deltaprompts.pipeline.config import load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline.toml"

TOML = """
out = "runs/x"
rounds = 3
[models]
teacher = "sim:t"
student = "sim:s"
k = 4
[seed.generate]
families = ["scene.shapes"]
n = 20
[seed.generate.vary]
"scene.shapes:n_objects" = [3, 8]
[synthesize]
budget = 10
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_yaml_give_the_same_config(tmp_path):
    import tomllib

    a = load_config(write(tmp_path, "c.toml", TOML))
    b = load_config(write(tmp_path, "c.yaml", yaml.safe_dump(tomllib.loads(TOML))))
    assert a == b
    assert a.out == str((tmp_path / "runs" / "x").resolve())  # relative to the config file
    assert a.models.k == 4 and a.mine.min_support == 5 and a.screen.min_teacher_acc == 0.5
    assert a.keep_threshold() == 0.3 and "rounds" not in a.resume_key()


def test_the_example_config_is_valid():
    cfg = load_config(EXAMPLE)
    assert cfg.models.teacher == "toy:teacher" and cfg.models.student == "toy:student"
    assert cfg.seed.generate.template_dirs == ["@lab"] and cfg.rounds >= 1


@pytest.mark.parametrize("patch, message", [
    ({"synthesize": {"budgett": 3, "budget": 3}}, r"unknown key 'synthesize.budgett'; allowed here: arms, budget"),
    ({"models": {"teacher": "sim:t", "student": "sim:s", "k": 0}}, r"models.k = 0: Input should be greater than"),
    ({"models": {"teacher": "sim:t"}}, r"models.student is required"),
    ({"seed": {"generate": {"families": ["scene.nope"], "n": 3}}},
     r"seed.generate.families: unknown family 'scene.nope'"),
    ({"seed": {"generate": {"families": ["scene.shapes"], "n": 3, "knobs": {"n_objects": 999}}}},
     r"seed.generate.knobs: knob 'n_objects': 999 is out of range"),
    ({"seed": {"generate": {"families": ["scene.shapes"], "n": 3, "vary": {"n_objects": [8, 3]}}}},
     r"seed.generate.vary: n_objects: a numeric knob varies over \[lo, hi\]"),
    ({"seed": {}}, r"seed: give exactly one of \[seed.generate\] and \[seed.external\]"),
    ({"seed": {"external": {"path": "x.jsonl"}}}, r"synthesize.families is required with \[seed.external\]"),
    ({"mine": {"event": "sometimes"}}, r"mine.event = 'sometimes': Input should be 'delta' or 'failure'"),
    ({"rounds": -1}, r"rounds = -1"),
])
def test_errors_name_the_key(tmp_path, patch, message):
    import tomllib

    data = tomllib.loads(TOML)
    data.update(patch)
    with pytest.raises(UserError, match=message):
        parse_config(data, "c.toml", tmp_path)


def test_unreadable_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(write(tmp_path, "bad.toml", "out = [\n"))
    with pytest.raises(UserError, match=r"\.toml, \.yaml or \.yml"):
        load_config(write(tmp_path, "c.json", "{}"))
    with pytest.raises(UserError, match="expected a mapping"):
        load_config(write(tmp_path, "c.yaml", "- 1\n- 2\n"))
