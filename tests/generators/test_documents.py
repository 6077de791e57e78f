"""Tests of the document families: determinism, text boxes read back from the PDF, exact totals, layouts, questions."""

from __future__ import annotations

import fnmatch
import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import KnobError, ProgramError, TemplateError
from deltaprompts.generators.documents import (ALWAYS_FIELDS, LAYOUT_PATH_ENV, Invoice, Receipt, doc_money, doc_pct,
                                               layout_files)
from deltaprompts.questions import format_answer, load_template, make_question
from deltaprompts.records import Spec

FAMILIES = (Invoice(), Receipt())
LAYOUTS = [(fam, name) for fam in FAMILIES for name in sorted(layout_files(fam.kind))]
QUESTION_DIR = Path(__file__).resolve().parents[2] / "templates" / "questions" / "document"


def _spec(fam, index: int = 0, seed: int = 5, **knobs) -> Spec:
    return fam.sample(seed, index, fam.resolve_knobs(knobs))


def _expected_text(name: str, value, data: dict) -> str:
    """How a field value is printed in the document's locale: money with its currency, rates with %,
    the rest as is."""
    if name in ("subtotal", "discount", "tax", "total", "tendered", "change"):
        return doc_money(round(value * 100), data)
    if name == "tax_rate":
        return doc_pct(data["tax_rate_bp"], data)
    if name == "discount_rate":
        return doc_pct(value * 100, data)
    return str(value)


def _chars(page) -> list[tuple[tuple[float, float], str]]:
    """Every character PyMuPDF reads on the page with its centre (points), in reading order."""
    out = []
    for block in page.get_text("rawdict")["blocks"]:
        for line in block.get("lines", []):
            for span in line["spans"]:
                for c in span["chars"]:
                    x0, y0, x1, y1 = c["bbox"]
                    out.append((((x0 + x1) / 2, (y0 + y1) / 2), c["c"]))
    return out


def test_layouts_exist():
    assert len(layout_files("invoice")) >= 2 and len(layout_files("receipt")) >= 2


@pytest.mark.parametrize("fam,layout", LAYOUTS, ids=[n for _, n in LAYOUTS])
def test_same_spec_same_bytes(fam, layout):
    spec = _spec(fam, 3, layout=layout)
    assert spec == _spec(type(fam)(), 3, layout=layout)
    a, b = fam.render(spec), type(fam)().render(Spec.model_validate_json(spec.model_dump_json()))
    assert a.png == b.png
    assert a.facts == b.facts
    assert fam.build_pdf(spec)[0].pdf == fam.build_pdf(spec)[0].pdf
    img = Image.open(io.BytesIO(a.png))
    assert img.size == (a.facts.width, a.facts.height) and not img.info  # no metadata chunks


@pytest.mark.parametrize("fam,layout", LAYOUTS, ids=[n for _, n in LAYOUTS])
def test_text_boxes_read_back_from_pdf(fam, layout):
    for index, knobs in enumerate([{"discount": "yes"}, {"discount": "no", "dpi": 144}, {"n_items": 1}]):
        spec = _spec(fam, index, layout=layout, **knobs)
        facts = fam.render(spec).facts
        scale = spec.data["dpi"] / 72
        with pymupdf.open(stream=fam.build_pdf(spec)[0].pdf, filetype="pdf") as doc:
            chars = _chars(doc[0])
        for span in facts.texts:
            x0, y0, x1, y1 = (v / scale for v in span.box)
            found = "".join(c for (cx, cy), c in chars if x0 - 1 <= cx <= x1 + 1 and y0 - 1 <= cy <= y1 + 1)
            assert " ".join(span.text.split()) == " ".join(found.split()), (span.role, span.text, found)
        shown = {}
        for span in facts.texts:
            if span.role.startswith("field:"):
                shown.setdefault(span.role[6:], []).append(span.text)
        for name, value in facts.fields.items():
            if value is None or (name in ALWAYS_FIELDS and name not in shown):
                continue  # not printed: None (so no question asks it), or implied by the page
            assert name in shown, name
            want = _expected_text(name, value, spec.data).casefold()
            assert [t.casefold() for t in shown[name]] == [want] * len(shown[name]), name
        for e in facts.entities:
            cells = [s for s in facts.texts if s.role.startswith(f"cell:{e.id}:")]
            assert cells, e.id
            for s in cells:  # every cell lies inside its row's box
                assert e.box[0] - 1 <= s.box[0] and s.box[2] <= e.box[2] + 1
                assert e.box[1] - 1 <= s.box[1] and s.box[3] <= e.box[3] + 1
                key = s.role.split(":")[2]
                if key in ("amount", "unit_price"):
                    assert s.text == doc_money(round(e.attrs[key] * 100), spec.data)
                elif key in ("quantity", "description", "line"):
                    assert s.text.casefold() == str(e.attrs[key]).casefold()


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_totals_add_up(fam):
    for index in range(50):
        spec = _spec(fam, index, seed=index)
        d = spec.data
        assert all(it["amount"] == it["quantity"] * it["unit_price"] for it in d["items"])
        assert d["subtotal"] == sum(it["amount"] for it in d["items"])
        assert d["total"] == d["subtotal"] - (d["discount"] or 0) + d["tax"]
        assert abs(d["tax"] - (d["subtotal"] - (d["discount"] or 0)) * d["tax_rate_bp"] / 10000) <= 0.5
        assert len({it["description"] for it in d["items"]}) == len(d["items"])
        if d.get("tendered") is not None:
            assert d["change"] == d["tendered"] - d["total"] >= 0
        fields = fam.fields(d)
        assert fields["total"] == pytest.approx(fields["subtotal"] - (fields["discount"] or 0) + fields["tax"])


@pytest.mark.parametrize("fam,layout", LAYOUTS, ids=[n for _, n in LAYOUTS])
def test_every_layout_renders_extremes(fam, layout):
    most = next(k for k in fam.knobs if k.name == "n_items").hi
    for index, knobs in enumerate([{"n_items": 1, "discount": "no"}, {"n_items": int(most), "discount": "yes"},
                                   {"noise": "scan", "dpi": 72}, {"currency": "GBP"}]):
        spec = _spec(fam, index + 10, layout=layout, **knobs)
        r = fam.render(spec)
        assert r.facts.kind == layout and r.facts.domain == "document"
        assert len(r.facts.entities) == len(spec.data["items"])
        for e in r.facts.entities:
            assert 0 <= e.box[0] < e.box[2] <= r.facts.width and 0 <= e.box[1] < e.box[3] <= r.facts.height
        assert r.facts.context["currency_symbol"] == spec.data["currency_symbol"]


def test_knobs_are_checked():
    fam = Invoice()
    with pytest.raises(KnobError):
        fam.resolve_knobs({"layout": "no_such_layout"})
    with pytest.raises(KnobError):
        fam.resolve_knobs({"n_items": 99})
    assert len(_spec(fam, 0, n_items=11).data["items"]) == 11
    assert _spec(fam, 0, currency="EUR").data["currency_symbol"] == "€"


_BROKEN = {
    "jinja": "page: {width: 200, height: 200}\nblocks:\n  - {type: text, x: 1, y: 1, text: {{ seller.name|q }\n",
    "yaml": "page: {width: 200, height: 200}\nblocks: [ {type: text\n",
    "block": "page: {width: 200, height: 200}\nblocks:\n  - {type: text, x: 1, y: 1, text: hi, colour: red}\n",
    "undefined": "page: {width: 200, height: 200}\nblocks:\n  - {type: text, x: 1, y: 1, text: {{ no_such_name|q }}}\n",
}


@pytest.mark.parametrize("kind", sorted(_BROKEN))
def test_broken_layout_names_the_file(kind, tmp_path, monkeypatch):
    path = tmp_path / f"invoice_broken_{kind}.yaml.j2"
    path.write_text(_BROKEN[kind])
    monkeypatch.setenv(LAYOUT_PATH_ENV, str(tmp_path))
    fam = Invoice()
    spec = _spec(fam, 0)
    spec.data["layout"] = f"invoice_broken_{kind}"
    with pytest.raises(TemplateError, match=f"invoice_broken_{kind}.yaml.j2"):
        fam.render(spec)


def test_user_layout_from_layout_path(tmp_path, monkeypatch):
    src = layout_files("receipt")["receipt_compact"].read_text()
    (tmp_path / "receipt_mine.yaml.j2").write_text(src.replace("SALES RECEIPT", "CUSTOMER COPY"))
    monkeypatch.setenv(LAYOUT_PATH_ENV, str(tmp_path))
    fam = Receipt()
    spec = _spec(fam, 0)
    spec.data["layout"] = "receipt_mine"
    facts = fam.render(spec).facts
    assert facts.kind == "receipt_mine" and any(t.text == "CUSTOMER COPY" for t in facts.texts)


@pytest.fixture(scope="module")
def documents():
    return [(fam.name, fam.render(_spec(fam, i, seed=21)).facts) for fam in FAMILIES for i in range(10)]


@pytest.mark.parametrize("path", sorted(QUESTION_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_question_templates(path, documents):
    tpl = load_template(path)
    assert tpl.domain == "document"
    if not any(fnmatch.fnmatchcase(f.name, g) for f in FAMILIES for g in tpl.applies_to):
        pytest.skip(f"{tpl.name} asks about other document families; their own tests cover it")
    rng = np.random.default_rng(0)
    made = 0
    for family, facts in documents:
        if not tpl.applies(family, facts):
            continue
        try:
            q = make_question(tpl, facts, rng, mc_fraction=0.3)
        except ProgramError:
            continue
        again = engine.execute(q.program, facts)
        assert again == q.value
        if q.options is None:
            assert format_answer(again, tpl.answer_type, facts) == q.answer
        made += 1
    assert made >= 1, f"{tpl.name} made no question over {len(documents)} documents"


def test_at_least_eight_document_question_families():
    assert len(list(QUESTION_DIR.glob("*.yaml"))) >= 8
