"""Tolerances follow the render: printed values are exact at their printed precision, computed ones at
the precision their inputs imply or the question states, axis readings within an error derived from
the axis; counts and strings stay exact, and only answers of unknown provenance get the 5% default."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from deltaprompts import engine
from deltaprompts.errors import ProgramError, TemplateError
from deltaprompts.generators.base import FAMILIES
from deltaprompts.questions import format_answer, load_template, load_templates, make_question, rounding_note
from deltaprompts.records import Entity, Facts, Item, Question, TextSpan
from deltaprompts.rng import item_rng
from deltaprompts.tolerances import (AXIS_MIN_PX, attr_axis, AXIS_TICK_FRACTION, axis_error, printed_decimals, summary,
                                     tolerance_for)
from deltaprompts.verifiers import score_item_answer
from deltaprompts.verifiers.scoring import _item_arguments

NUMERIC = ("number", "percent", "currency")
# charts with value labels on and off, at several printed precisions; documents; scenes
RENDERS = [
    *[(f"chart.{kind}", {"value_labels": labels, "value_decimals": dec}, i)
      for kind in ("bar", "hbar", "grouped_bar", "stacked_bar", "line")
      for labels, dec in (("on", 0), ("on", 1), ("off", 0)) for i in range(2)],
    *[("chart.pie", {"value_decimals": dec}, i) for dec in (0, 2) for i in range(2)],
    *[(f"document.{kind}", {}, i) for kind in ("invoice", "receipt") for i in range(4)],
    # every other document family, at its default knobs
    *[(f, {}, i) for f in FAMILIES.names() if f.startswith("document.") and f not in ("document.invoice",
                                                                                       "document.receipt")
      for i in range(6)],
    *[(f"scene.{kind}", {}, i) for kind in ("shapes", "grid") for i in range(4)],
    # every other perception family, at its default knobs
    # (scene.clevr3d asks no numeric reading and its 3-D renders cost seconds: tests/generators/test_clevr3d.py)
    *[(f, {}, i) for f in FAMILIES.names() if f.startswith("scene.") and f not in ("scene.shapes", "scene.grid",
                                                                                    "scene.clevr3d")
      for i in range(10)],
    # every other chart kind, with its own knobs at their defaults
    *[(f, {}, i) for f in FAMILIES.names() if f.startswith("chart.") and f.split(".", 1)[1] not in
      ("bar", "hbar", "grouped_bar", "stacked_bar", "line", "pie") for i in range(8)],
]
# families whose answer is read against the axis when the chart prints no labels
AXIS_FAMILIES = {"chart.value_lookup", "chart.value_lookup_series", "chart.difference", "chart.sum", "chart.mean",
                 "chart.range", "chart.ratio", "chart.share_of_total", "chart.stacked_total", "chart.sum_series"}


def item_of(question: Question) -> SimpleNamespace:
    return SimpleNamespace(question=question)


@pytest.fixture(scope="module")
def questions() -> dict[tuple[str, str], tuple[Question, Facts]]:
    """One question per (question family, tolerance source) over the renders above."""
    renders = []
    for fam, knobs, index in RENDERS:
        gen = FAMILIES.get(fam)()
        renders.append((fam, gen.render(gen.sample(7, index, gen.resolve_knobs(knobs))).facts))
    out: dict[tuple[str, str], tuple[Question, Facts]] = {}
    for tpl in load_templates():
        for r, (fam, facts) in enumerate(renders):
            if not tpl.applies(fam, facts):
                continue
            for slot in range(12):  # some families rarely fit (a unique neighbour): several tries
                try:
                    q = make_question(tpl, facts, item_rng(7, tpl.name, r, "tolerance", slot))
                except ProgramError:
                    continue
                out.setdefault((tpl.name, q.tolerance_source), (q, facts))
                break
    return out


def shifted(q: Question, delta: float, decimals: int) -> str:
    """The answer moved by `delta`, written as the item format writes this answer type."""
    v = float(q.value) + delta
    if q.answer_type == "currency":
        return f"{q.answer[0]}{v:.2f}"
    return f"{v:.{decimals}f}" + ("%" if q.answer_type == "percent" else "")


def test_every_question_family_is_covered_with_the_sources_its_render_allows(questions):
    # scene.clevr3d is not rendered here (seconds per 3-D render); its question families ask no numeric
    # reading, so their tolerance is exact by answer type (tests/generators/test_clevr3d.py runs them)
    only_3d = {t.name for t in load_templates() if t.applies_to == ["scene.clevr3d"]}
    assert only_3d and all(t.answer_type not in NUMERIC for t in load_templates() if t.name in only_3d)
    names = {t.name for t in load_templates()} - only_3d
    assert {name for name, _ in questions} == names
    for name in AXIS_FAMILIES:
        assert {(name, "axis"), (name, "printed" if name.startswith("chart.value_lookup") else "computed")} <= \
            set(questions), name
    for t in load_templates():
        if t.answer_type not in NUMERIC and t.name not in only_3d:
            assert {src for name, src in questions if name == t.name} == {"exact"}, t.name


def test_printed_and_computed_answers_are_exact_at_their_precision(questions):
    seen = 0
    for (name, src), (q, _) in questions.items():
        if src not in ("printed", "computed"):
            continue
        seen += 1
        assert q.tolerance == 0.0 and q.abs_tol is not None, name  # no 5% anywhere
        unit = 2 * q.abs_tol
        decimals = round(-math.log10(unit))
        assert math.isclose(unit, 10.0 ** -decimals), (name, q.abs_tol)  # half a unit of a decimal place
        assert score_item_answer(item_of(q), q.answer) == 1.0, name
        assert score_item_answer(item_of(q), shifted(q, 0, decimals)) == 1.0, name
        for sign in (-1, 1):
            assert score_item_answer(item_of(q), shifted(q, sign * unit, decimals)) == 0.0, (name, q.answer)
    assert seen >= 25


def test_axis_readings_score_within_the_axis_tolerance(questions):
    for (name, src), (q, facts) in questions.items():
        if src != "axis":
            continue
        assert q.tolerance == 0.0, name
        if name in AXIS_FAMILIES:  # the classic kinds' families read the value axis
            one = axis_error(facts)
            if q.program.op not in ("ratio", "percent_of"):  # in the axis's units: never tighter than one reading
                assert q.abs_tol >= one * 0.999, name
            if q.program.op == "query" and facts.kind != "stacked_bar":
                assert q.abs_tol == pytest.approx(one, rel=1e-3), name  # one reading of one mark
        elif q.program.op == "query":  # a newer kind's reading of another axis (attr_axis): one reading
            entity = engine.execute(q.program.args[0], facts)
            attr = q.program.params["attr"]
            axis = attr_axis(facts, entity, attr)
            one = axis_error(facts, axis) if axis else axis_error(facts)
            assert q.abs_tol == pytest.approx(one, rel=1e-3), name
        for sign in (-1, 1):
            assert score_item_answer(item_of(q), shifted(q, sign * 0.9 * q.abs_tol, 6)) == 1.0, name
            assert score_item_answer(item_of(q), shifted(q, sign * 1.1 * q.abs_tol, 6)) == 0.0, name


def test_counts_strings_and_choices_stay_exact(questions):
    for (name, src), (q, _) in questions.items():
        if src != "exact":
            continue
        assert q.tolerance is None and q.abs_tol is None and _item_arguments(item_of(q))[3] == {}, name
        assert score_item_answer(item_of(q), q.answer) == 1.0, name
        if q.answer_type in ("count", "year"):
            assert score_item_answer(item_of(q), str(int(q.answer) + 1)) == 0.0, name
        if q.answer_type == "yes_no":
            assert score_item_answer(item_of(q), "No" if q.answer == "Yes" else "Yes") == 0.0, name


def test_a_multiple_choice_question_is_exact():
    tpl = next(t for t in load_templates() if t.name == "document.field_total")
    facts = doc_facts()
    q = next(q for s in range(40) if (q := make_question(tpl, facts, np.random.default_rng(s), 1.0)).options)
    assert q.answer_type == "choice" and (q.tolerance, q.abs_tol, q.tolerance_source) == (None, None, "exact")


# ---------------------------------------------------------------- the examples, on hand-made Facts


def doc_facts() -> Facts:
    lines = [("Widget", 2, 250.0, 500.0), ("Gadget", 1, 451.0, 451.0)]
    ents = [Entity(id=f"line{i}", attrs={"description": d, "quantity": qty, "unit_price": up, "amount": amt, "line": i})
            for i, (d, qty, up, amt) in enumerate(lines, 1)]
    texts = [TextSpan(text=f"${v:,.2f}" if key != "quantity" else str(v), box=(0, 0, 1, 1), role=f"cell:{e.id}:{key}")
             for e in ents for key, v in (("quantity", e.attrs["quantity"]), ("unit_price", e.attrs["unit_price"]),
                                           ("amount", e.attrs["amount"]))]
    texts += [TextSpan(text=t, box=(0, 0, 1, 1), role=f"field:{k}")
              for k, t in (("subtotal", "$951.00"), ("tax", "$49.00"), ("total", "$1,000.00"))]
    return Facts(domain="document", kind="invoice", width=100, height=100, entities=ents, texts=texts,
                 fields={"subtotal": 951.0, "tax": 49.0, "total": 1000.0},
                 context={"currency_symbol": "$", "doc": "invoice"})


def chart_facts(values: list[float], labels: list[str] | None = None, kind: str = "bar") -> Facts:
    """Bars over a 0-105 value axis 400 px tall with ticks every 20 (labels printed if given)."""
    ents = [Entity(id=f"s0c{i}", attrs={"category": f"C{i}", "series": "s", "value": v},
                   box=(10 + 30 * i, 450 - v / 105 * 400, 30 + 30 * i, 450)) for i, v in enumerate(values)]
    printed = {e.id: {"value": t} for e, t in zip(ents, labels)} if labels else {}
    return Facts(domain="chart", kind=kind, width=500, height=500, entities=ents,
                 extra={"axes_box": [0, 50, 500, 450], "printed": printed,
                        "value_axis": {"axis": "y", "range": [0.0, 105.0], "ticks": [0, 20, 40, 60, 80, 100]}})


def ask(program: str, answer_type: str, facts: Facts, decimals: int | None = None) -> Question:
    extra = f"decimals: {decimals}\n" if decimals is not None else ""
    tpl = load_template("t.yaml", f"name: t.q\ndomain: {facts.domain}\nanswer_type: {answer_type}\n{extra}"
                                  f"program: \"{program}\"\nphrasings: [\"Q?\"]\n")
    return make_question(tpl, facts, np.random.default_rng(0))


def test_an_invoice_total_is_exact_to_the_cent():
    q = ask("field[name=total]()", "currency", doc_facts())
    assert (q.answer, q.tolerance, q.abs_tol, q.tolerance_source) == ("$1000.00", 0.0, 0.005, "printed")
    scores = [score_item_answer(item_of(q), p) for p in ("$1,000.00", "1000", "$1,049.00", "$950", "$1,000.01")]
    assert scores == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_computed_document_values_take_their_inputs_or_stated_precision():
    diff = ask("diff(field[name=total](), field[name=tax]())", "currency", doc_facts())
    assert (diff.answer, diff.abs_tol, diff.tolerance_source) == ("$951.00", 0.005, "computed")
    share = ask("percent_of(field[name=tax](), field[name=subtotal]())", "percent", doc_facts(), decimals=1)
    assert share.text.endswith("Round to one decimal place.") and share.answer == "5.2%" and share.abs_tol == 0.05
    assert [score_item_answer(item_of(share), p) for p in ("5.2%", "5.15%", "5.3%", "5%")] == [1.0, 1.0, 0.0, 0.0]


def test_labelled_bars_are_exact_and_4_percent_off_is_wrong():
    facts = chart_facts([50.0, 75.0], ["50", "75"])
    q = ask("query[attr=value](unique(filter[attr=category, value=C1](scene())))", "number", facts)
    assert (q.answer, q.abs_tol, q.tolerance_source) == ("75", 0.5, "printed")
    assert [score_item_answer(item_of(q), p) for p in ("75", "75.4", "76", "72", "78")] == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_an_axis_reading_gets_a_tolerance_from_ticks_and_pixels():
    facts = chart_facts([50.0, 75.0])
    one = max(AXIS_TICK_FRACTION * 20, AXIS_MIN_PX * 105 / 400)
    assert axis_error(facts) == pytest.approx(one) == 4.0
    q = ask("query[attr=value](unique(filter[attr=category, value=C1](scene())))", "number", facts)
    assert (q.abs_tol, q.tolerance, q.tolerance_source) == (4.0, 0.0, "axis")
    assert [score_item_answer(item_of(q), p) for p in ("75", "71.5", "78.9", "70", "80")] == [1.0, 1.0, 1.0, 0.0, 0.0]
    # dense ticks: the pixels bound it instead
    dense = chart_facts([50.0, 75.0])
    dense.extra["value_axis"]["ticks"] = list(range(0, 106, 1))
    assert axis_error(dense) == pytest.approx(AXIS_MIN_PX * 105 / 400)


def test_errors_of_axis_readings_carry_through_the_arithmetic():
    facts = chart_facts([50.0, 75.0, 25.0])
    e = axis_error(facts)
    cases = {"sum(values[attr=value](scene()))": 3 * e, "mean(values[attr=value](scene()))": e,
             "diff(max(values[attr=value](scene())), min(values[attr=value](scene())))": 2 * e,
             "ratio(query[attr=value](unique(filter[attr=category, value=C1](scene()))), "
             "query[attr=value](unique(filter[attr=category, value=C0](scene()))))": (e + 75 / 50 * e) / 50,
             "percent_of(query[attr=value](unique(filter[attr=category, value=C1](scene()))), "
             "sum(values[attr=value](scene())))": 100 * (e * (150 - 75) / 150 ** 2 + 75 * 2 * e / 150 ** 2)}
    for program, want in cases.items():
        tol = tolerance_for(engine.parse(program), 1.0, "number", facts, 2)
        assert tol.source == "axis" and tol.abs_tol == pytest.approx(want, rel=1e-3), program


def test_a_stacked_total_is_one_reading_of_the_top_and_a_segment_two():
    # three segments of category C stacked 0-30-50-90 on the 0-105 axis, 400 px tall from y=450 up
    px = lambda v: 450 - v / 105 * 400  # noqa: E731
    ents = [Entity(id=f"s{s}c0", attrs={"category": "C", "series": f"S{s}", "value": hi - lo},
                   box=(10, round(px(hi), 2), 40, round(px(lo), 2)))
            for s, (lo, hi) in enumerate([(0, 30), (30, 50), (50, 90)])]
    facts = Facts(domain="chart", kind="stacked_bar", width=500, height=500, entities=ents,
                  extra={"axes_box": [0, 50, 500, 450], "printed": {},
                         "value_axis": {"axis": "y", "range": [0.0, 105.0], "ticks": [0, 20, 40, 60, 80, 100]}})
    e = axis_error(facts)
    total = tolerance_for(engine.parse("sum(values[attr=value](filter[attr=category, value=C](scene())))"), 90.0,
                          "number", facts)
    assert total.abs_tol == pytest.approx(e)
    base = tolerance_for(engine.parse("query[attr=value](unique(filter[attr=series, value=S0](scene())))"), 30.0,
                         "number", facts)
    upper = tolerance_for(engine.parse("query[attr=value](unique(filter[attr=series, value=S2](scene())))"), 40.0,
                          "number", facts)
    assert base.abs_tol == pytest.approx(e) and upper.abs_tol == pytest.approx(2 * e)


def test_an_unprinted_value_without_an_axis_is_rejected():
    facts = chart_facts([50.0, 75.0])
    facts.extra["value_axis"] = None  # a pie: no axis to read a hidden percentage against
    with pytest.raises(ProgramError) as err:
        ask("query[attr=value](unique(filter[attr=category, value=C1](scene())))", "number", facts)
    assert err.value.reason == "unreadable_value"


def test_a_receipt_line_of_one_unit_implies_its_unit_price_at_the_cents_of_its_column():
    facts = doc_facts()
    facts.texts = [t for t in facts.texts if t.role not in ("cell:line2:quantity", "cell:line2:unit_price")]
    q = ask("query[attr=unit_price](unique(filter[attr=description, value=Gadget](scene())))", "currency", facts)
    assert (q.answer, q.abs_tol, q.tolerance_source) == ("$451.00", 0.005, "printed")


# ---------------------------------------------------------------- templates, formatting, records


def test_a_template_that_must_round_says_how_far():
    text = "name: t.m\ndomain: chart\nanswer_type: number\nprogram: \"mean(values[attr=value](scene()))\"\n" \
           "phrasings: [\"Mean?\"]\n"
    with pytest.raises(TemplateError, match=r"t.yaml \(template t.m\): op 'mean' .* set decimals"):
        load_template("t.yaml", text)
    with pytest.raises(TemplateError, match="decimals applies to number, percent, currency answers, not 'count'"):
        load_template("t.yaml", "name: t.c\ndomain: chart\nanswer_type: count\ndecimals: 1\n"
                                "program: \"count(scene())\"\nphrasings: [\"How many?\"]\n")
    assert rounding_note(2) == "Round to two decimal places."
    assert rounding_note(0) == "Round to the nearest whole number."


def test_answers_round_half_up_at_the_stated_decimals():
    facts = Facts(domain="chart", kind="bar", width=1, height=1)
    assert format_answer(2.125, "number", facts) == "2.13" and format_answer(2.675, "number", facts) == "2.68"
    assert format_answer(12.25, "percent", facts) == "12.3%" and format_answer(12.34, "percent", facts, 2) == "12.34%"
    assert format_answer(8.200000000000001, "number", facts, 1) == "8.2" and format_answer(1e20, "number", facts) \
        == "100000000000000000000"
    assert printed_decimals("$1,234.50") == 2 and printed_decimals("41%") == 0 and printed_decimals("-€0.5") == 1


def test_old_items_still_load_and_keep_the_default_5_percent():
    old = {"text": "Total?", "program": {"op": "field", "params": {"name": "total"}}, "answer": "100",
           "answer_type": "number", "tolerance": None, "family": "x.y"}
    q = Question.model_validate(old)
    assert (q.abs_tol, q.tolerance_source) == (None, None)
    assert score_item_answer(item_of(q), "104") == 1.0 and score_item_answer(item_of(q), "106") == 0.0
    assert Question.model_validate({**old, "tolerance": 0.1}).tolerance == 0.1
    assert summary([q]) == {"by_source": {"unknown": 1}, "unknown": "the verifiers' default: within 5% relative "
                                                                     "(rel_tol 0.05)"}
    with pytest.raises(ValueError, match="abs_tol"):
        Question.model_validate({**old, "abs_tol": -1})


def test_divergence_classes_take_the_item_tolerance():
    from deltaprompts.verifiers import item_answer_class

    q = ask("field[name=total]()", "currency", doc_facts())
    assert _item_arguments(item_of(q))[3] == {"rel_tol": 0.0, "abs_tol": 0.005}
    assert item_answer_class(item_of(q), "$1,000.00") == item_answer_class(item_of(q), "The total is $1000.") \
        != item_answer_class(item_of(q), "$1,000.01")


def test_number_ops_need_a_gradient_and_their_gradients_are_right():
    from deltaprompts.programs import OPS, op

    with pytest.raises(ValueError, match="needs a gradient"):
        op("t_no_gradient", ("number",), "number")
    for name in OPS.names():
        spec = OPS.get(name)
        if spec.gradient is None or any(t not in ("number", "list") for t in spec.inputs):
            continue
        call = (lambda v: spec.fn(None, {}, v)) if spec.inputs == ("list",) else (lambda v: spec.fn(None, {}, *v))
        # a list op may take a list of a given length (the two legs of a right triangle)
        for xs in ([3.0, 7.0, 5.0], [3.0, 4.0]) if spec.inputs == ("list",) else ([3.0, 7.0],):
            try:
                call(xs)
            except (ProgramError, AttributeError, TypeError):  # another length, or an op that reads the Facts
                continue
            grad = spec.gradient(xs)
            for i in range(len(xs)):
                h = 1e-6
                up = [x + h * (j == i) for j, x in enumerate(xs)]
                assert (call(up) - call(xs)) / h == pytest.approx(grad[i], abs=1e-4), (name, i)


# ---------------------------------------------------------------- Facts of the renderers, seed and audit


def test_chart_facts_say_what_they_print_and_where_the_ticks_are():
    from deltaprompts.generators import chart_plotly
    from deltaprompts.generators.chart_spec import ChartData

    for fam, knobs in (("chart.bar", {"value_labels": "on", "value_decimals": 1}), ("chart.pie", {})):
        gen = FAMILIES.get(fam)()
        spec = gen.sample(3, 0, gen.resolve_knobs(knobs))
        for facts in (gen.render(spec).facts, chart_plotly.build_figure(ChartData.model_validate(spec.data))[1]):
            labels = sorted(t.text for t in facts.texts if t.role == "value_label")
            printed = facts.extra["printed"]
            assert sorted(text for attrs in printed.values() for text in attrs.values()) == labels
            attr = "percent" if fam == "chart.pie" else "value"
            for e in facts.entities:
                if e.id in printed:  # the label prints the entity's value at the label's precision
                    text = printed[e.id][attr].replace(",", "").rstrip("%")
                    assert float(text) == pytest.approx(e.attrs[attr], abs=1e-9)
            if fam == "chart.bar":
                ticks = facts.extra["value_axis"]["ticks"]
                shown = [float(t.text.replace(",", "").replace("\u2212", "-"))
                         for t in facts.texts if t.role == "y_tick"]
                assert ticks == pytest.approx(shown) and len(ticks) >= 2


def test_external_answers_are_unknown_and_seed_and_audit_say_so(tmp_path):
    from PIL import Image

    from deltaprompts.models.specs import load_backend
    from deltaprompts.pipeline.audit import audit_run
    from deltaprompts.pipeline.config import ExternalSeed
    from deltaprompts.pipeline.external import import_external
    from deltaprompts.store import RunStore

    rows = []
    for i in range(3):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "question": f"Value {i}?", "answer": str(100 + i)})
    (tmp_path / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = import_external(ExternalSeed(path=str(tmp_path / "set.jsonl")), tmp_path / "run")
    assert m["tolerances"]["by_source"] == {"unknown": 3} and "5%" in m["tolerances"]["unknown"]
    item = next(RunStore(tmp_path / "run").iter_items())
    assert item.question.tolerance_source == "unknown"
    assert score_item_answer(item, str(float(item.question.answer) * 1.04)) == 1.0  # the default 5%
    rep = audit_run(tmp_path / "run", load_backend("sim:teacher?skill=0.9"), load_backend("sim:student?skill=0.3"), k=2)
    assert rep.tolerances["by_source"] == {"unknown": 3}
    assert any("3 unknown" in n and "5%" in n for n in rep.notes)
    assert json.loads((tmp_path / "run" / "audit.json").read_text())["tolerances"]["by_source"] == {"unknown": 3}


def test_the_seed_stage_states_the_tolerances_of_its_items(tmp_path):
    from deltaprompts.pipeline.config import SeedConfig
    from deltaprompts.pipeline.seed import seed_stage
    from deltaprompts.store import RunStore

    cfg = SeedConfig.model_validate({"generate": {"families": ["document.invoice"], "n": 8, "questions_per_image": 4}})
    m = seed_stage(tmp_path, cfg, 0)
    items = list(RunStore(tmp_path / "seed").iter_items())
    counts = m["tolerances"]["by_source"]
    assert sum(counts.values()) == len(items) == 8 and "unknown" not in counts
    assert json.loads((tmp_path / "seed" / "manifest.json").read_text())["tolerances"] == m["tolerances"]
    assert seed_stage(tmp_path, cfg, 0)["tolerances"] == m["tolerances"]  # a complete run is left as it is
    for it in items:
        assert Item.model_validate_json(it.model_dump_json()) == it
