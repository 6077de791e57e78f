"""Tests of the finance and order document families: printed values read back inside their boxes, sums that add up, determinism, locales, questions."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import KnobError, ProgramError
from deltaprompts.generators import cjk_font
from deltaprompts.generators.documents import ALWAYS_FIELDS, Invoice, Receipt, doc_money, layout_files
from deltaprompts.generators.documents_finance import (DOC_LOCALES, BankStatement, Menu, Payslip, PurchaseOrder,
                                                       UtilityBill)
from deltaprompts.questions import format_answer, load_template, make_question
from deltaprompts.records import Spec
from deltaprompts.verifiers import score_item_answer
from tests.generators.test_documents import _chars

FAMILIES = (BankStatement(), Payslip(), UtilityBill(), PurchaseOrder(), Menu())
LAYOUTS = [(fam, name) for fam in FAMILIES for name in sorted(layout_files(fam.kind))]
QUESTION_DIR = Path(__file__).resolve().parents[2] / "templates" / "questions" / "document"
MONEY_CELLS = {"amount", "unit_price", "deposit", "withdrawal", "balance", "price"}


def _spec(fam, index: int = 0, seed: int = 5, **knobs) -> Spec:
    return fam.sample(seed, index, fam.resolve_knobs(knobs))


def _norm(text: str) -> str:
    """Text with every kind of space as one plain space (PyMuPDF reads Babel's no-break spaces as spaces)."""
    return " ".join(re.sub(r"[\u00a0\u202f]", " ", text).split())


def test_every_family_has_two_layouts():
    for fam in FAMILIES:
        assert len(layout_files(fam.kind)) >= 2, fam.kind


@pytest.mark.parametrize("fam,layout", LAYOUTS, ids=[n for _, n in LAYOUTS])
def test_same_spec_same_bytes(fam, layout):
    spec = _spec(fam, 3, layout=layout, locale="fr_FR")
    assert spec == _spec(type(fam)(), 3, layout=layout, locale="fr_FR")
    a, b = fam.render(spec), type(fam)().render(Spec.model_validate_json(spec.model_dump_json()))
    assert a.png == b.png and a.facts == b.facts
    img = Image.open(io.BytesIO(a.png))
    assert img.size == (a.facts.width, a.facts.height)


@pytest.mark.parametrize("fam,layout", LAYOUTS, ids=[n for _, n in LAYOUTS])
def test_printed_values_read_back_inside_their_boxes(fam, layout):
    for index, locale in enumerate(DOC_LOCALES + (("zh_CN",) if cjk_font.available() else ())):
        spec = _spec(fam, index, layout=layout, locale=locale, dpi=120 if index % 2 else 100)
        facts = fam.render(spec).facts
        scale = spec.data["dpi"] / 72
        with pymupdf.open(stream=fam.build_pdf(spec)[0].pdf, filetype="pdf") as doc:
            chars = _chars(doc[0])
        for span in facts.texts:  # every recorded text is what PyMuPDF reads inside its box
            x0, y0, x1, y1 = (v / scale for v in span.box)
            found = "".join(c for (cx, cy), c in chars if x0 - 1 <= cx <= x1 + 1 and y0 - 1 <= cy <= y1 + 1)
            assert _norm(span.text) == _norm(found), (locale, span.role, span.text, found)
        shown: dict[str, list[str]] = {}
        for span in facts.texts:
            if span.role.startswith("field:"):
                shown.setdefault(span.role[6:], []).append(span.text)
        for name, value in facts.fields.items():
            if value is None or (name in ALWAYS_FIELDS and name not in shown):
                continue
            assert name in shown, (layout, name)
            assert shown[name] == [fam.printed(name, value, spec.data)] * len(shown[name]), (locale, name)
        for e in facts.entities:
            cells = [s for s in facts.texts if s.role.startswith(f"cell:{e.id}:")]
            assert cells, e.id
            for s in cells:
                assert e.box[0] - 1 <= s.box[0] and s.box[2] <= e.box[2] + 1
                assert e.box[1] - 1 <= s.box[1] and s.box[3] <= e.box[3] + 1
                key = s.role.split(":")[2]
                if key in MONEY_CELLS:
                    assert s.text == doc_money(round(e.attrs[key] * 100), spec.data), (e.id, key)
                elif key in e.attrs:
                    assert s.text == str(e.attrs[key]), (e.id, key)


@pytest.mark.parametrize("seed", range(30))
def test_money_adds_up(seed):
    bank = _spec(BankStatement(), seed, seed=seed, misprint="no").data
    balance = bank["opening_balance"]
    for r in bank["items"]:
        assert (r["deposit"] is None) != (r["withdrawal"] is None)
        balance += (r["deposit"] or 0) - (r["withdrawal"] or 0)
        assert r["balance"] == balance >= 0
    assert bank["closing_balance"] == balance and len({r["details"] for r in bank["items"]}) == len(bank["items"])
    pay = _spec(Payslip(), seed, seed=seed).data
    assert pay["gross_pay"] == sum(r["amount"] for r in pay["earnings"])
    assert pay["total_deductions"] == sum(r["amount"] for r in pay["deductions"])
    assert pay["net_pay"] == pay["gross_pay"] - pay["total_deductions"] > 0
    bill = _spec(UtilityBill(), seed, seed=seed).data
    assert bill["usage"] == bill["current_reading"] - bill["previous_reading"] > 0
    assert abs(bill["energy_charge"] - bill["usage"] * float(bill["rate"]) * 100) <= 0.5
    assert bill["total"] == bill["energy_charge"] + bill["fixed_charge"] + (bill["tax"] or 0)
    po = _spec(PurchaseOrder(), seed, seed=seed).data
    assert all(it["amount"] == it["quantity"] * it["unit_price"] for it in po["items"])
    assert po["total"] == po["subtotal"] + po["shipping"] + po["tax"]
    assert len({it["sku"] for it in po["items"]}) == len(po["items"])


def test_misprint_knob_breaks_only_the_closing_balance():
    d = _spec(BankStatement(), 4, misprint="yes").data
    assert d["misprint"] and d["closing_balance"] != d["true_closing"] == d["items"][-1]["balance"]
    assert _spec(BankStatement(), 4, misprint="no").data["closing_balance"] == d["true_closing"]


def test_menu_marks_and_dietary_attrs():
    facts = Menu().render(_spec(Menu(), 2, seed=9)).facts
    for e in facts.entities:
        marks = set(filter(None, e.attrs["marks"].split(", ")))
        assert (e.attrs["vegetarian"] == "yes") == bool(marks & {"V", "VG"})
        assert (e.attrs["vegan"] == "yes") == ("VG" in marks)
    assert len({e.attrs["dish"] for e in facts.entities}) == len(facts.entities)


def test_de_DE_documents_print_german_money_and_dates():
    pattern = re.compile(r"\d{1,3}(\.\d{3})*,\d{2} €")
    for fam in (*FAMILIES, Invoice()):
        knobs = {"currency": "EUR"} if fam.name == "document.invoice" else {"locale": "de_DE"}
        for index in range(12):
            spec = _spec(fam, index, **knobs)
            if spec.data["locale"] == "de_DE":
                break
        else:
            pytest.fail(f"{fam.name}: no de_DE document in 12 samples")
        with pymupdf.open(stream=fam.build_pdf(spec)[0].pdf, filetype="pdf") as doc:
            text = doc[0].get_text()
        assert pattern.search(_norm(text)), (fam.name, text[:300])
        assert not re.search(r"€\d", text), fam.name  # no English-style €1,035.00
    inv = Invoice().render(_spec(Invoice(), 1, currency="EUR", layout="invoice_classic")).facts
    if inv.context["locale"] == "de_DE":
        assert re.fullmatch(r"\d{1,2}\.\s?\S+\.? \d{4}|\d{2}\.\d{2}\.\d{2,4}|\d{4}-\d{2}-\d{2}", inv.fields["issue_date"])


@pytest.mark.skipif(not cjk_font.available(), reason="fonts-noto-cjk is not installed")
def test_zh_CN_documents_print_yuan_and_chinese_dates():
    spec = _spec(BankStatement(), 1, locale="zh_CN")
    facts = BankStatement().render(spec).facts
    assert facts.fields["opening_balance"] is not None and spec.data["currency"] == "CNY"
    opening = next(t.text for t in facts.texts if t.role == "field:opening_balance")
    assert re.fullmatch(r"¥\d{1,3}(,\d{3})*\.\d{2}", opening)
    assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}/\d{1,2}/\d{1,2}|\d{4}-\d{2}-\d{2}", e.attrs["date"])
               for e in facts.entities)
    assert "random" in [k for k in BankStatement.knobs if k.name == "locale"][0].choices
    assert "zh_CN" not in DOC_LOCALES  # a random locale never needs the CJK font


def test_locale_knob_sets_currency_and_rejects_unknown():
    assert _spec(Payslip(), 0, locale="en_GB").data["currency"] == "GBP"
    assert _spec(Payslip(), 0, locale="es_ES").data["currency"] == "EUR"
    with pytest.raises(KnobError):
        Payslip().resolve_knobs({"locale": "xx_XX"})


@pytest.fixture(scope="module")
def documents():
    return [(fam.name, fam.render(_spec(fam, i, seed=21)).facts) for fam in FAMILIES for i in range(8)]


OWN = sorted(p for p in QUESTION_DIR.glob("*.yaml")
             if any(load_template(p).applies_to == [f.name] for f in FAMILIES))


def test_at_least_fifteen_question_families_of_their_own():
    assert len(OWN) >= 15


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.stem)
def test_question_families_make_items_whose_answers_reexecute(path, documents):
    tpl = load_template(path)
    rng = np.random.default_rng(0)
    made = 0
    for family, facts in documents:
        if not tpl.applies(family, facts):
            continue
        try:
            q = make_question(tpl, facts, rng, mc_fraction=0.3)
        except ProgramError:
            continue
        assert engine.execute(q.program, facts) == q.value
        if q.options is None:
            assert format_answer(q.value, tpl.answer_type, facts, tpl.decimals) == q.answer
        loc = facts.context["locale"]
        assert q.locale == (None if loc.startswith("en_") else loc)
        item = type("I", (), {"question": q})()
        assert score_item_answer(item, q.answer) == 1.0
        made += 1
    assert made >= 4, f"{tpl.name} made {made} questions over {len(documents)} documents"


def test_english_documents_carry_no_question_locale(documents):
    tpl = load_template(QUESTION_DIR / "payslip_net_pay.yaml")
    facts = Payslip().render(_spec(Payslip(), 0, locale="en_US")).facts
    q = make_question(tpl, facts, np.random.default_rng(0))
    assert q.locale is None and "locale" not in q.model_dump_json()
    facts = Payslip().render(_spec(Payslip(), 0, locale="fr_FR")).facts
    q = make_question(tpl, facts, np.random.default_rng(0))
    assert q.locale == "fr_FR" and '"locale":"fr_FR"' in q.model_dump_json()
    printed = next(t.text for t in facts.texts if t.role == "field:net_pay")
    item = type("I", (), {"question": q})()
    assert score_item_answer(item, f"The net pay is {printed}.") == 1.0  # read in French conventions


def test_receipt_prints_in_its_locale():
    spec = _spec(Receipt(), 2, currency="EUR")
    facts = Receipt().render(spec).facts
    total = next(t.text for t in facts.texts if t.role == "field:total")
    assert total == doc_money(round(facts.fields["total"] * 100), spec.data) and "," in total


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_20_item_runs_pass_check(family, tmp_path):
    from .kinds_common import generate_run

    items, report = generate_run(family, tmp_path / "run", n=20, seed=2)
    assert len(items) == report.items == 20 and not report.problems, report.problems
    assert not report.failed and report.ill_posed == 0, report.failed
    for item in items:
        assert engine.execute(item.question.program, item.facts) == item.question.value
        loc = item.facts.context["locale"]
        assert item.question.locale == (None if loc.startswith("en_") else loc)
    assert len({i.question.question_family for i in items}) >= 4
