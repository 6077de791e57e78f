"""Ops, the compact program syntax, type checking and degeneracy, on hand-built Facts."""

import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError
from deltaprompts.records import Entity, Facts, Node


def scene_facts() -> Facts:
    objs = [("red", "circle", 10, (0, 0, 10, 10)), ("blue", "square", 30, (50, 0, 60, 10)),
            ("red", "square", 20, (100, 50, 110, 60)), ("green", "circle", 40, (20, 80, 30, 90))]
    return Facts(domain="scene", kind="t", width=120, height=100, entities=[
        Entity(id=f"o{i}", attrs={"color": c, "shape": s, "area": a}, box=b) for i, (c, s, a, b) in enumerate(objs)],
        fields={"total": 12.5})


def run(text: str, facts: Facts | None = None):
    node = engine.parse(text)
    engine.type_check(node)
    return engine.execute(node, facts or scene_facts())


def test_parse_round_trips_to_nodes():
    node = engine.parse("count(filter[attr=color, value='red'](scene()))")
    assert node == Node(op="count", args=[Node(op="filter", params={"attr": "color", "value": "red"},
                                                args=[Node(op="scene")])])
    assert engine.parse("filter_cmp[attr=area, cmp=gt, value=2.5](scene())").params["value"] == 2.5


@pytest.mark.parametrize("text,answer", [
    ("count(filter[attr=color, value=red](scene()))", 2),
    ("count(filter[attr=color, value=RED](scene()))", 2),
    ("query[attr=color](argmax[attr=area](scene()))", "green"),
    ("query[attr=shape](argmin[attr=area](filter[attr=color, value=red](scene())))", "circle"),
    ("query[attr=color](nth[attr=area, n=2, order=desc](scene()))", "blue"),
    ("sum(values[attr=area](filter[attr=shape, value=square](scene())))", 50.0),
    ("mean(values[attr=area](scene()))", 25.0),
    ("diff(query[attr=area](unique(filter[attr=color, value=green](scene()))), "
     "query[attr=area](unique(filter[attr=color, value=blue](scene()))))", 10.0),
    ("ratio(max(values[attr=area](scene())), min(values[attr=area](scene())))", 4.0),
    ("count(relate[direction=right](unique(filter[attr=color, value=blue](scene()))))", 1),
    ("count(relate[direction=below](unique(filter[attr=color, value=blue](scene()))))", 2),
    ("count(filter_cmp[attr=area, cmp=ge, value=20](scene()))", 3),
    ("sort[attr=area, order=asc, output=color](scene())", ["red", "red", "blue", "green"]),
    ("exists(filter[attr=color, value=purple](scene()))", False),
    ("greater(count(filter[attr=color, value=red](scene())), count(filter[attr=color, value=blue](scene())))", True),
    ("field[name=total]()", 12.5),
    ("count(same[attr=color](unique(filter[attr=area, value=10](scene()))))", 1),
])
def test_programs_execute_to_hand_computed_answers(text, answer):
    assert run(text) == answer


@pytest.mark.parametrize("text,reason", [
    ("query[attr=color](unique(filter[attr=shape, value=circle](scene())))", "not_unique"),
    ("query[attr=color](unique(filter[attr=shape, value=star](scene())))", "empty"),
    ("field[name=tax]()", "missing_field"),
    ("ratio(count(scene()), count(filter[attr=color, value=pink](scene())))", "division_by_zero"),
    ("query[attr=weight](argmax[attr=area](scene()))", "missing_attr"),
])
def test_ill_posed_programs_raise_with_a_reason(text, reason):
    with pytest.raises(ProgramError) as e:
        run(text)
    assert e.value.reason == reason


def test_ties_are_rejected():
    facts = scene_facts()
    facts.entities[1].attrs["area"] = 40
    with pytest.raises(ProgramError, match="tie"):
        run("query[attr=color](argmax[attr=area](scene()))", facts)


@pytest.mark.parametrize("text,message", [
    ("count(scene(), scene())", "takes 1 input"),
    ("count(filter[attr=color](scene()))", "missing ['value']"),
    ("nosuch(scene())", "unknown op 'nosuch'"),
    ("sum(scene())", "input 1 must be list, got set"),
    ("filter_cmp[attr=area, cmp=bigger, value=3](scene())", "allowed: gt, lt, ge, le"),
    ("count(filter[attr=color, value=red, colour=1](scene()))", "unknown ['colour']"),
])
def test_check_names_the_op_and_the_problem(text, message):
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        engine.type_check(engine.parse(text), "t.yaml")


@pytest.mark.parametrize("text", ["count(", "count(scene()) extra()", "filter[attr=](scene())", "count(scene()"])
def test_syntax_errors_are_template_errors(text):
    with pytest.raises(TemplateError):
        engine.parse(text)


def test_unknown_op_suggests_the_closest():
    with pytest.raises(TemplateError, match="did you mean 'argmax'"):
        engine.type_check(engine.parse("argmx[attr=area](scene())"))


def test_bind_replaces_slots_and_reports_missing_ones():
    node = engine.parse("count(filter[attr=color, value=$c](scene()))")
    assert engine.slots_of(node) == {"c"}
    assert engine.execute(engine.bind(node, {"c": "blue"}), scene_facts()) == 1
    with pytest.raises(TemplateError, match=r"slot \$c"):
        engine.bind(node, {})


def test_degenerate_steps_are_found():
    facts = scene_facts()
    no_op = engine.parse("count(filter_cmp[attr=area, cmp=gt, value=1](scene()))")
    assert engine.degenerate_step(no_op, facts) == "filter_cmp"
    useful = engine.parse("count(filter[attr=color, value=red](scene()))")
    assert engine.degenerate_step(useful, facts) is None
    # the red square is right of every other object: "objects left of it" selects all of them
    everything = engine.parse("count(relate[direction=left](unique(filter[attr=area, value=20](scene()))))")
    assert engine.degenerate_step(everything, facts) == "relate"
