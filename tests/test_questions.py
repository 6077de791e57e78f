"""Question templates: load-time checks that name the file and op, slot filling, answers, choices."""

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError
from deltaprompts.questions import format_answer, load_template, load_templates, make_question
from tests.test_programs import scene_facts

GOOD = """
name: scene.count_color
domain: scene
answer_type: count
slots:
  c: {attr: color}
program: "count(filter[attr=color, value=$c](scene()))"
phrasings:
  - "How many {{ c }} objects are there?"
  - "Count the {{ c }} things."
"""


def test_a_good_template_loads_and_makes_questions(tmp_path):
    tpl = load_template(tmp_path / "count.yaml", GOOD)
    assert tpl.steps == 3
    facts = scene_facts()
    counts = {"red": 2, "blue": 1, "green": 1}
    for seed in range(10):
        q = make_question(tpl, facts, np.random.default_rng(seed))
        color = q.program.args[0].params["value"]
        assert q.answer == str(counts[color]) and q.answer_type == "count"
        assert color in q.text
        assert engine.execute(q.program, facts) == q.value


@pytest.mark.parametrize("change,message", [
    (("count(filter", "cnt(filter"), "count.yaml (template scene.count_color): unknown op 'cnt'"),
    (("value=$c", "value=$d"), "undeclared slot(s) ['d']"),
    (("answer_type: count", "answer_type: integer"), "answer_type"),
    (("{{ c }} objects", "{{ c objects"), "phrasing 1"),
    (("c: {attr: color}", "c: {attr: color, choices: [a]}"), "exactly one of attr, choices, threshold"),
    (("count(filter[attr=color, value=$c](scene()))", "sum(filter[attr=color, value=$c](scene()))"),
     "op 'sum' input 1 must be list, got set"),
])
def test_broken_templates_name_the_file_and_the_problem(tmp_path, change, message):
    with pytest.raises(TemplateError) as e:
        load_template(tmp_path / "count.yaml", GOOD.replace(*change))
    assert message in str(e.value) and "count.yaml" in str(e.value)


def test_not_yaml_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template(tmp_path / "x.yaml", "name: [unclosed")


def test_user_template_folder_is_loaded_and_duplicates_are_errors(tmp_path):
    (tmp_path / "mine.yaml").write_text(GOOD.replace("scene.count_color", "mine.count_color"))
    names = [t.name for t in load_templates((str(tmp_path),))]
    assert "mine.count_color" in names
    builtin = load_templates()
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "dup.yaml").write_text(GOOD.replace("scene.count_color", builtin[0].name)
                                  .replace("domain: scene", f"domain: {builtin[0].domain}"))
    with pytest.raises(TemplateError, match=f"{builtin[0].name!r} is defined twice"):
        load_templates((str(dup),))


def test_threshold_slots_fall_strictly_between_values(tmp_path):
    tpl = load_template(tmp_path / "t.yaml", """
name: t.above
domain: scene
answer_type: count
slots:
  t: {threshold: area}
program: "count(filter_cmp[attr=area, cmp=gt, value=$t](scene()))"
phrasings: ["How many are bigger than {{ t }}?"]
""")
    areas = [10, 20, 30, 40]
    for seed in range(20):
        q = make_question(tpl, scene_facts(), np.random.default_rng(seed))
        t = q.program.args[0].params["value"]
        assert t not in areas and min(areas) < t < max(areas)
        assert q.value == sum(a > t for a in areas)


def test_multiple_choice_has_the_answer_once_among_distinct_options(tmp_path):
    tpl = load_template(tmp_path / "t.yaml", """
name: t.color_of_largest
domain: scene
answer_type: string
program: "query[attr=color](argmax[attr=area](scene()))"
phrasings: ["What colour is the largest object?"]
""")
    q = make_question(tpl, scene_facts(), np.random.default_rng(0), mc_fraction=1.0)
    assert q.answer_type == "choice" and q.options is not None
    assert q.options[q.answer] == "green"
    assert len(set(q.options.values())) == len(q.options) >= 3
    assert all(f"({k}) {v}" in q.text for k, v in q.options.items())


def test_degenerate_questions_are_rejected(tmp_path):
    tpl = load_template(tmp_path / "t.yaml", """
name: t.deg
domain: scene
answer_type: count
slots:
  t: {choices: [1]}
program: "count(filter_cmp[attr=area, cmp=gt, value=$t](scene()))"
phrasings: ["How many are bigger than {{ t }}?"]
""")
    with pytest.raises(ProgramError, match="degenerate"):
        make_question(tpl, scene_facts(), np.random.default_rng(0))


@pytest.mark.parametrize("value,atype,expected", [
    (12.0, "number", "12"), (3.14159, "number", "3.14"), (-0.001, "number", "0"), (25.04, "percent", "25%"),
    (1234.5, "currency", "€1234.50"), (2010, "year", "2010"), (True, "yes_no", "Yes"), (["a", "b"], "list", "a|b"),
    (7, "count", "7"),
])
def test_answers_are_formatted_per_type(value, atype, expected):
    facts = scene_facts()
    facts.context["currency_symbol"] = "€"
    assert format_answer(value, atype, facts) == expected


def test_a_count_that_is_not_an_integer_is_a_type_error():
    with pytest.raises(ProgramError, match="integer"):
        format_answer(2.5, "count", scene_facts())
