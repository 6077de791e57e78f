"""Teacher-written questions: valid programs become items with computed answers; everything else is
rejected with a reason, never executed as code and never crashing a round (unit level and through a
scripted OpenAI-compatible server)."""

import json
import re
import threading
from collections import Counter

import pytest

from deltaprompts import engine
from deltaprompts.pipeline.cells import Cell, build_cell
from deltaprompts.pipeline.rounds import run_pipeline
from deltaprompts.pipeline.teacher_questions import (RESPONSE_FORMAT, Rejected, compact_facts, item_from_reply,
                                                     program_text, teacher_prompt)
from deltaprompts.store import RunStore
from tests.models.openai_server import FakeOpenAIServer, prompt_text
from tests.pipeline.helpers import assert_no_duplicates, small_config


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    cell = Cell(id="c0", family="scene.shapes", knobs={"n_objects": 6, "occlusion": 0.0}, images=3, seed=4,
                candidates=2)
    items, _ = build_cell(cell, tmp_path_factory.mktemp("tq") / "cell")
    return items[0]


def partial_color(ents):
    """A colour some but not all (well visible) objects have, and how many have it."""
    counts = Counter(e["color"] for e in ents)
    for c, n in sorted(counts.items()):
        if n < len(ents) and all(e["visible_pixels"] >= 100 for e in ents if e["color"] == c):
            return c, n
    return None, 0


def reply(kind, ents, salt=""):
    c, _ = partial_color(ents)
    programs = {
        "valid": f"count(filter[attr=color, value={c}](scene()))",
        "unknown_op": "count(explode(scene()))",
        "type_error": "sum(scene())",
        "degenerate": f"count(filter[attr=color, value={c}](filter[attr=color, value={c}](scene())))",
        "not_unique": "query[attr=color](unique(scene()))",
        "missing_attr": "count(filter[attr=flavour, value=sweet](scene()))",
        "slot": "count(filter[attr=color, value=$c](scene()))",
    }
    if kind == "malformed_json":
        return "I think there are three of them."
    return json.dumps({"question": f"How many {c} shapes can you see in this picture{salt}?", "program": programs[kind],
                       "answer_type": "count"})


def facts_of(base):
    return [{"id": e.id, **e.attrs} for e in base.facts.entities]


def test_a_valid_program_becomes_an_item_with_its_computed_answer(base):
    ents = facts_of(base)
    c, n = partial_color(ents)
    item = item_from_reply("```json\n" + reply("valid", ents) + "\n```", base, provenance={"teacher": "t"})
    q = item.question
    assert q.source == "teacher" and q.answer == str(n) and q.value == n and q.answer_type == "count"
    assert q.question_family == "scene.teacher.count" and item.spec == base.spec and item.image == base.image
    assert item.provenance["teacher"] == "t" and item.id != base.id
    circles = {"op": "filter", "params": {"attr": "shape", "value": "circle"}, "args": [{"op": "scene"}]}
    tree = json.dumps({"question": "Are there any circles?", "answer_type": "yes_no",
                       "program": {"op": "exists", "args": [circles]}})
    try:
        assert item_from_reply(tree, base).question.answer in ("Yes", "No")
    except Rejected as e:  # every object may be a circle: then the filter changes nothing
        assert e.reason == "degenerate"


@pytest.mark.parametrize("kind, reason", [
    ("malformed_json", "malformed_json"), ("unknown_op", "unknown_op"), ("type_error", "type_error"),
    ("degenerate", "degenerate"), ("not_unique", "ill_posed:not_unique"), ("missing_attr", "ill_posed:missing_attr"),
    ("slot", "unbound_slot"),
])
def test_bad_replies_are_rejected_with_their_reason(base, kind, reason):
    with pytest.raises(Rejected) as e:
        item_from_reply(reply(kind, facts_of(base)), base)
    assert e.value.reason == reason


def test_other_rejections(base):
    ents = facts_of(base)
    cases = {
        '{"question": "How many?"}': "missing_field",
        '[1, 2]': "malformed_json",
        '{"question": "q", "program": "count(scene("}': "malformed_program",
        '{"question": "q", "program": 42}': "malformed_program",
        '{"question": "q", "program": "' + "exists(" * 30 + "scene()" + ")" * 30 + '"}': "too_complex",
        '{"question": "q", "program": "__import__(os)"}': "malformed_program",
        json.dumps({"question": "q", "program": "count(scene())", "answer_type": "yes_no"}): "answer_type",
        json.dumps({"question": "q", "program": "count(scene())", "answer_type": "choice"}): "answer_type",
    }
    for text, reason in cases.items():
        with pytest.raises(Rejected) as e:
            item_from_reply(text, base)
        assert e.value.reason == reason, text
    first = item_from_reply(reply("valid", ents), base)
    with pytest.raises(Rejected, match="duplicate_question"):
        item_from_reply(reply("valid", ents), base, seen={first.question.text.casefold()})


def test_the_prompt_and_the_program_syntax(base):
    text = teacher_prompt(base.facts, "the student miscounts", "scene.count_color", [base], 6000)
    assert "the student miscounts" in text and "filter_cmp(set) -> set [attr: str, cmp: gt|lt|ge|le" in text
    assert program_text(base.question.program) in text and '"kind":"shapes"' in text
    assert "answer" not in compact_facts(base.facts, 6000)
    assert len(compact_facts(base.facts, 600)) <= 800
    for tree in (base.question.program, engine.parse('filter[attr=label, value="net total"](scene())'),
                 engine.parse("filter[attr=x, value='12'](filter[attr=y, value=true](scene()))")):
        assert engine.parse(program_text(tree)) == tree


def scripted_server():
    """A server whose teacher replies cycle through kinds; other prompts get a short answer."""
    kinds = ["valid", "malformed_json", "unknown_op", "type_error", "degenerate", "not_unique"]
    state = {"n": 0}
    lock = threading.Lock()

    def answer(body, n):
        text = prompt_text(body)
        if text.startswith("You write one new question"):
            ents = json.loads(re.search(r"^\{\"kind\".*$", text, re.M).group())["entities"]
            out = []
            for j in range(n):
                with lock:
                    kind = kinds[state["n"] % len(kinds)]
                    state["n"] += 1
                out.append(reply(kind, ents, salt=f" ({state['n']})"))
        elif text.startswith("A student vision-language model"):
            out = ["These questions ask to count objects of one colour among many."] * n
        else:
            out = ["The answer is 2"] * n
        return [{"text": t, "tokens": ["x"], "logprobs": [-0.1], "finish_reason": "stop"} for t in out]

    return FakeOpenAIServer(answer)


def test_teacher_questions_through_an_openai_compatible_server(tmp_path):
    with scripted_server() as server:
        cfg = small_config(tmp_path / "run", rounds=1, models={"teacher": f"openai:teacher@{server.url}", "k": 3},
                           mine={"min_support": 2, "describe": True},
                           synthesize={"budget": 12, "teacher_candidates": 2},
                           seed={"generate": {"families": ["scene.shapes"], "n": 12, "cells": 1,
                                              "knobs": {"scene.shapes:n_objects": 6, "scene.shapes:occlusion": 0.0}}},
                           screen={"min_delta": 0.0, "min_teacher_acc": 0.0})
        run_pipeline(cfg)
        bodies = list(server.bodies)
    teacher_bodies = [b for b in bodies if prompt_text(b).startswith("You write one new question")]
    assert teacher_bodies and all(b["response_format"] == RESPONSE_FORMAT for b in teacher_bodies)
    assert all("response_format" not in b for b in bodies if b not in teacher_bodies)
    root = tmp_path / "run"
    row = json.loads((root / "rounds.json").read_text())[1]
    rejected = row["teacher"]["rejected"]
    assert row["teacher"]["replies"] == 24 and row["teacher"]["accepted"] >= 3
    for reason in ("malformed_json", "unknown_op", "type_error", "degenerate", "ill_posed:not_unique"):
        assert rejected.get(reason, 0) >= 1, rejected
    gen = list(RunStore(root / "round-01" / "gen").iter_items())
    teacher_items = [it for it in gen if it.question.source == "teacher"]
    assert len(gen) == 12 and len(teacher_items) >= 3  # template questions fill the rest
    assert row["teacher"]["items"] == len(teacher_items)
    for it in teacher_items:
        c = re.search(r"How many (\w+) shapes", it.question.text).group(1)
        assert it.question.answer == str(sum(e.attrs["color"] == c for e in it.facts.entities))
        assert it.tags["arm"] and it.provenance["teacher"].startswith("openai:teacher@")
    patterns = json.loads((root / "mine" / "patterns.json").read_text())["patterns"]
    assert patterns[0]["description"] == "These questions ask to count objects of one colour among many."
    assert_no_duplicates(root)
