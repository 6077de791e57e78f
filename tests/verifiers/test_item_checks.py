"""Item well-posedness checks on hand-made items: each named check rejects what it should."""

import numpy as np
import pytest

from deltaprompts.questions import load_template, make_question
from deltaprompts.records import Entity, Facts, Item, Spec, TextSpan
from deltaprompts.verifiers.checks import CheckConfig, balance, check_item, depends_on

TEMPLATE = """
name: t.value
domain: chart
answer_type: number
slots:
  c: {attr: category}
program: "query[attr=value](unique(filter[attr=category, value=$c](scene())))"
phrasings: ["What is the value of {{ c }}?"]
"""


def chart_facts(**extra) -> Facts:
    ents = [Entity(id=f"c{i}", attrs={"category": name, "series": "s", "value": v}, box=(10 + 40 * i, 50, 40 + 40 * i, 200))
            for i, (name, v) in enumerate([("Asia", 10.0), ("Europe", 20.0), ("Africa", 30.0)])]
    texts = [TextSpan(text=e.attrs["category"], box=(10 + 40 * i, 205, 40 + 40 * i, 217), role="x_tick")
             for i, e in enumerate(ents)]
    # value labels on the bars: a value question is then scored at their printed precision
    extra = {"printed": {e.id: {"value": f"{e.attrs['value']:g}"} for e in ents}, **extra}
    return Facts(domain="chart", kind="bar", width=200, height=230, entities=ents, texts=texts, extra=extra)


def make_item(facts: Facts, seed: int = 0, answer=None) -> Item:
    tpl = load_template("t.yaml", TEMPLATE)
    q = make_question(tpl, facts, np.random.default_rng(seed))
    if answer is not None:
        q.answer, q.value = answer, float(answer)
    spec = Spec(family="chart.bar", version="1", seed=0, index=seed, data={})
    return Item(id=Item.make_id(spec, q), family="chart.bar", family_version="1", spec=spec,
                image={"path": "x.png", "sha256": "0", "width": 200, "height": 230}, facts=facts, question=q)


def test_a_clean_item_passes_every_check():
    assert check_item(make_item(chart_facts())) == []


def test_depends_on_finds_the_mark_and_its_tick_label():
    item = make_item(chart_facts())
    used, texts = depends_on(item)
    category = item.question.program.args[0].args[0].params["value"]
    assert [e.attrs["category"] for e in used] == [category]
    assert [t.text for t in texts] == [category]


def test_a_wrong_stored_answer_is_not_derivable():
    item = make_item(chart_facts())
    item.question.value = 99.0
    assert "answer_mismatch" in check_item(item)


@pytest.mark.parametrize("change,reason", [
    (lambda f: f.texts.__setitem__(slice(None), [t.model_copy(update={"box": (t.box[0], 205, t.box[2], 209)}) for t in f.texts]),
     "text_too_small"),
    (lambda f: f.texts.__setitem__(slice(None), [t.model_copy(update={"box": (t.box[0], 225, t.box[2], 240)}) for t in f.texts]),
     "text_clipped"),
])
def test_illegible_text_is_rejected(change, reason):
    facts = chart_facts()
    change(facts)
    assert reason in check_item(make_item(facts))


def test_overlapping_labels_are_rejected():
    facts = chart_facts()
    for t in facts.texts:  # all tick labels drawn on top of one another
        t.box = (10, 205, 60, 217)
    assert "text_overlap" in check_item(make_item(facts))


def test_a_mark_under_the_legend_is_rejected():
    facts = chart_facts(legend_box=[0, 40, 200, 210])
    assert "mark_under_legend" in check_item(make_item(facts))
    assert check_item(make_item(chart_facts(legend_box=[150, 0, 200, 30]))) == []


def test_a_barely_visible_scene_object_is_rejected():
    ents = [Entity(id="a", attrs={"color": "red", "visible_pixels": 30}, box=(0, 0, 10, 10)),
            Entity(id="b", attrs={"color": "blue", "visible_pixels": 900}, box=(20, 20, 50, 50))]
    facts = Facts(domain="scene", kind="s", width=64, height=64, entities=ents)
    tpl = load_template("s.yaml", "name: s.c\ndomain: scene\nanswer_type: count\nslots: {c: {choices: [red]}}\n"
                        "program: 'count(filter[attr=color, value=$c](scene()))'\nphrasings: ['How many {{ c }}?']\n")
    q = make_question(tpl, facts, np.random.default_rng(0))
    spec = Spec(family="scene.shapes", version="1", seed=0, index=0, data={})
    item = Item(id="x", family="scene.shapes", family_version="1", spec=spec,
                image={"path": "x.png", "sha256": "0", "width": 64, "height": 64}, facts=facts, question=q)
    assert "object_too_small" in check_item(item, CheckConfig(min_visible_px=100))
    assert "object_too_small" not in check_item(item, CheckConfig(min_visible_px=20))


def test_balance_caps_the_top_answer_at_the_ratio_and_is_order_free():
    facts = chart_facts()
    items = [make_item(facts, seed) for seed in range(60)]
    values = [it.question.value for it in items]
    drop = balance(items, ratio=1.1, min_family_size=20)
    kept = [it.question.value for it in items if it.id not in drop]
    counts = sorted((kept.count(v) for v in set(kept)), reverse=True)
    assert counts[0] <= 1.1 * counts[1]
    assert len(drop) == len(values) - len(kept) > 0 or max(map(values.count, values)) <= 1.1 * sorted(map(values.count, set(values)))[-2]
    assert balance(list(reversed(items)), 1.1, 20) == drop
    assert balance(items[:10], 1.1, 20) == set(), "small families are left alone"


def test_a_ground_truth_the_verifiers_cannot_read_is_rejected_not_raised():
    from deltaprompts.records import Facts, Item, Node, Question, Spec, ImageRef
    from deltaprompts.verifiers.checks import check_item

    q = Question(text="What is it?", program=Node(op="scene"), answer="", answer_type="string",
                 question_family="test.empty")
    item = Item(id="x", family="test", family_version="1", spec=Spec(family="test", version="1", seed=0, index=0,
                                                                       data={}),
                image=ImageRef(path="images/x.png", sha256="0" * 64, width=1, height=1),
                facts=Facts(domain="scene", kind="t", width=1, height=1), question=q)
    assert check_item(item, names=["own_answer"]) == ["answer_unreadable"]
