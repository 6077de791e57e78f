"""The record documents (statement, form, timetable, paper, report): every printed value and field is
found in the PDF text inside its Facts box on its page, boxes hold ink, same Spec -> same bytes,
their question families make questions that re-execute, and CJK text is set in Noto Sans CJK."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import numpy as np
import pymupdf
import pytest
from PIL import Image

from deltaprompts import engine
from deltaprompts.errors import KnobError, ProgramError
from deltaprompts.generators import FAMILIES, cjk_font
from deltaprompts.generators.documents import layout_files
from deltaprompts.questions import format_answer, load_templates, make_question, templates_for
from deltaprompts.records import Spec

NAMES = ("document.statement", "document.form", "document.timetable", "document.paper", "document.report")
CASES = [(n, lay) for n in NAMES for lay in sorted(layout_files(n.split(".")[1]))]


def _spec(name: str, index: int, **given) -> Spec:
    fam = FAMILIES.get(name)()
    return fam.sample(7, index, fam.resolve_knobs(given))


def _page_text(fam, spec: Spec, page: int) -> pymupdf.Page:
    drawing, _ = fam.build_pdf(spec, page)
    return pymupdf.open(stream=drawing.pdf, filetype="pdf")


def _text_in(doc: pymupdf.Document, box, scale: float) -> str:
    x0, y0, x1, y1 = (v / scale for v in box)
    return " ".join(doc[0].get_textbox(pymupdf.Rect(x0 - 1, y0 - 1, x1 + 1, y1 + 1)).split())


#: attributes printed in an entity's own row (a form: inside its box); a board timetable's stop heads its column
_ROW_ATTRS = {"document.statement": ("row",), "document.form": ("field", "value", "option"),
              "timetable_grid": ("stop",), "timetable_board": ("trip",), "document.paper": ("method",),
              "document.report": ("region", "item")}


def test_each_family_has_two_layouts():
    for n in NAMES:
        assert len(layout_files(n.split(".")[1])) >= 2, n


@pytest.mark.parametrize("name,layout", CASES, ids=[lay for _, lay in CASES])
def test_printed_values_read_back_inside_their_boxes(name, layout):
    fam = FAMILIES.get(name)()
    for index in range(2):
        spec = _spec(name, index, layout=layout, locale="en_US" if index == 0 else "de_DE")
        r = fam.render(spec)
        facts, scale = r.facts, spec.data["dpi"] / 72
        n_pages = len(r.pngs)
        assert facts.image_sizes == ([] if n_pages == 1 else [Image.open(io.BytesIO(p)).size for p in r.pngs])
        docs = [_page_text(fam, spec, pg) for pg in range(n_pages)]
        imgs = [np.asarray(Image.open(io.BytesIO(p)).convert("L"), dtype=int) for p in r.pngs]
        printed = facts.extra["printed"]
        for e in facts.entities:
            if e.id.startswith("chart."):
                continue  # the chart's own boxes: test_report_chart_is_merged_into_page_two
            found = _text_in(docs[e.image], e.box, scale)
            for attr, text in printed.get(e.id, {}).items():
                assert " ".join(text.split()) in found, (e.id, attr, text, found)
            for attr in _ROW_ATTRS[name if name != "document.timetable" else layout]:
                if attr in e.attrs:  # the names a question uses are printed in the entity's row (or box)
                    band = (0, e.box[1], 10_000, e.box[3]) if name != "document.form" else e.box
                    want = " ".join(str(e.attrs[attr]).split()).casefold()
                    assert want in _text_in(docs[e.image], band, scale).casefold(), (e.id, attr)
            x0, y0, x1, y1 = (int(v) for v in e.box)
            patch = imgs[e.image][y0:y1 + 1, x0:x1 + 1]
            assert patch.size and patch.max() - patch.min() > 80, (e.id, "no ink in the box")
        for name_, value in facts.fields.items():
            if value is None:
                continue
            spans = [t for t in facts.texts if t.role == f"field:{name_}"]
            assert spans, name_
            for t in spans:
                want = " ".join(str(value).split()).casefold()  # a layout may print it in capitals
                assert want in _text_in(docs[t.image], t.box, scale).casefold(), (name_, value)
        for d in docs:
            d.close()


@pytest.mark.parametrize("name", NAMES)
def test_same_spec_same_bytes(name):
    fam = FAMILIES.get(name)()
    spec = _spec(name, 4)
    a = fam.render(spec)
    b = FAMILIES.get(name)().render(Spec.model_validate_json(spec.model_dump_json()))
    assert a.pngs == b.pngs and a.facts == b.facts
    assert spec == _spec(name, 4)


def test_report_is_three_pages_with_a_total_carried_over():
    fam = FAMILIES.get("document.report")()
    spec = _spec("document.report", 1)
    r = fam.render(spec)
    assert len(r.pngs) == 3 and len(r.facts.image_sizes) == 3
    pages = {e.image for e in r.facts.entities if e.attrs.get("table") == "sales"}
    assert pages == {0, 1}
    assert {e.image for e in r.facts.entities if e.attrs.get("table") == "detail"} == {2}
    carried = [t for t in r.facts.texts if t.role.startswith("cell:carried:q")]
    brought = [t for t in r.facts.texts if t.role.startswith("cell:brought:q")]
    assert {t.image for t in carried} == {0} and {t.image for t in brought} == {1}
    assert [t.text for t in carried] == [t.text for t in brought]
    page1 = [e for e in r.facts.entities if e.attrs.get("table") == "sales" and e.image == 0]
    first_q = sum(e.attrs["value"] for e in page1 if e.attrs["quarter"] == "Q1")
    assert carried[0].text.replace(",", "").replace(".", "").replace("\u202f", "").replace("\xa0", "") == str(first_q)


def test_report_chart_is_merged_into_page_two():
    fam = FAMILIES.get("document.report")()
    spec = _spec("document.report", 2)
    r = fam.render(spec)
    bars = [e for e in r.facts.entities if e.attrs.get("table") == "chart"]
    assert len(bars) >= 4 and {e.image for e in bars} == {1}
    img = np.asarray(Image.open(io.BytesIO(r.pngs[1])).convert("RGB"), dtype=int)
    scale = spec.data["dpi"] / 72
    fx, fy, fw, fh = (v * scale for v in spec.data["figure"])
    for e in bars:  # inside the figure box, and the bar's own colour at its centre
        x0, y0, x1, y1 = e.box
        assert fx - 1 <= x0 < x1 <= fx + fw + 1 and fy - 1 <= y0 < y1 <= fy + fh + 1
        want = np.array([int(e.attrs["color"][i:i + 2], 16) for i in (1, 3, 5)])
        got = img[int((y0 + y1) / 2), int((x0 + x1) / 2)]
        assert np.abs(got - want).max() <= 12, (e.id, got, want)
    assert any(t.role == "chart:title" and t.image == 1 for t in r.facts.texts)
    assert all(f"chart.s0c{k}" in r.facts.extra["printed"] for k in range(len(bars)))


def test_statement_misprint_is_found_by_adds_up():
    fam = FAMILIES.get("document.statement")()
    seen = set()
    for index in range(12):
        spec = _spec("document.statement", index)
        facts = fam.render(spec).facts
        bad = spec.data["misprint"]
        for si, s in enumerate(spec.data["sections"]):
            prog = engine.parse(f'adds_up[by="group,column"](where[attr=section, value="{s["name"]}"](scene()))')
            assert engine.execute(prog, facts) is (bad is None or bad[0] != si)
        seen.add(bad is None)
    assert seen == {True, False}


def test_knobs_are_checked():
    with pytest.raises(KnobError, match="locale"):
        FAMILIES.get("document.form")().resolve_knobs({"locale": "xx_XX"})
    with pytest.raises(Exception, match="layout"):
        FAMILIES.get("document.paper")().resolve_knobs({"layout": "paper_nope"})


@pytest.mark.parametrize("name", NAMES)
def test_question_families_make_questions_that_reexecute(name):
    fam = FAMILIES.get(name)()
    templates = load_templates()
    kind = name.split(".")[1]
    own = {t.name for t in templates if t.applies_to == [name]}
    assert len(own) >= 2, name
    made: dict[str, int] = {}
    rng = np.random.default_rng(0)
    for index in range(6):
        facts = fam.render(_spec(name, index)).facts
        for tpl in templates_for(name, facts, templates):
            try:
                q = make_question(tpl, facts, rng, mc_fraction=0.3)
            except ProgramError:
                continue
            assert engine.execute(q.program, facts) == q.value
            if q.options is None:
                assert format_answer(q.value, tpl.answer_type, facts, tpl.decimals) == q.answer
            assert "{" not in q.text and kind in tpl.name
            made[tpl.name] = made.get(tpl.name, 0) + 1
    assert own <= set(made), (name, own - set(made))
    assert "document.count_items" not in made  # a form or a timetable has no line items


@pytest.mark.skipif(not cjk_font.available(), reason="fonts-noto-cjk is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("name,locale", [("document.form", "ja_JP"), ("document.form", "zh_CN"),
                                         ("document.statement", "ja_JP")])
def test_cjk_text_is_set_in_noto_cjk_and_read_back(name, locale):
    fam = FAMILIES.get(name)()
    spec = _spec(name, 0, locale=locale)
    r = fam.render(spec)
    cjk = [t for t in r.facts.texts if any(0x3040 <= ord(c) <= 0x9FFF for c in t.text)]
    assert len(cjk) >= 1, [t.text for t in r.facts.texts]
    doc = _page_text(fam, spec, 0)
    assert any("NotoSansCJK" in f[3] for f in doc[0].get_fonts())
    for t in cjk:
        assert t.text in _text_in(doc, t.box, spec.data["dpi"] / 72), t.text
    img = np.asarray(Image.open(io.BytesIO(r.png)).convert("L"), dtype=int)
    for t in cjk:  # the glyphs are drawn (no empty tofu-free box)
        x0, y0, x1, y1 = (int(v) for v in t.box)
        assert (img[y0:y1 + 1, x0:x1 + 1] < 128).mean() > 0.05, t.text


@pytest.mark.skipif(not cjk_font.available(), reason="fonts-noto-cjk is not installed")
def test_cjk_render_is_the_same_in_a_fresh_process():
    """The font subset is built per process: a second process must draw the same bytes."""
    spec = _spec("document.form", 1, locale="zh_CN")
    here = hashlib.sha256(FAMILIES.get("document.form")().render(spec).png).hexdigest()
    code = ("import hashlib,sys; from deltaprompts.generators import FAMILIES; from deltaprompts.records import Spec;"
            "s=Spec.model_validate_json(sys.stdin.read());"
            "print(hashlib.sha256(FAMILIES.get(s.family)().render(s).png).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], input=spec.model_dump_json(), capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == here


@pytest.mark.parametrize("name", NAMES)
def test_generated_run_passes_check(name, tmp_path):
    """A 10-item run writes every page, passes `check` with nothing ill-posed, and asks several families."""
    from .kinds_common import generate_run

    items, report = generate_run(name, tmp_path / "run", n=10, seed=4)
    assert len(items) == report.items == 10 and not report.problems and not report.failed, report.failed
    assert report.ill_posed == 0
    for item in items:
        assert engine.execute(item.question.program, item.facts) == item.question.value
        assert len(item.images) == (3 if name == "document.report" else 1)
        assert all((tmp_path / "run" / ref.path).is_file() for ref in item.images)
    assert len({i.question.question_family for i in items}) >= 2


def test_missing_cjk_font_is_one_clear_error(tmp_path, monkeypatch):
    from deltaprompts.errors import RenderError
    from deltaprompts.generators.doc_layout import Layout, draw

    monkeypatch.setenv("DELTAPROMPTS_CJK_FONT_DIR", str(tmp_path))
    lay = Layout.model_validate({"page": {"width": 200, "height": 60}, "blocks": [
        {"type": "text", "x": 10, "y": 10, "text": "龘龘 missing-font probe", "size": 9}]})
    with pytest.raises(RenderError, match="apt-get install fonts-noto-cjk"):
        draw(lay)


@pytest.mark.skipif(not cjk_font.available(), reason="fonts-noto-cjk is not installed")
def test_layout_font_cjk_and_fallback_draw_the_same_glyph_boxes():
    from deltaprompts.generators.doc_layout import Layout, draw, locate

    lay = Layout.model_validate({"page": {"width": 300, "height": 80}, "blocks": [
        {"type": "text", "x": 10, "y": 10, "text": "東京都 合計 1,234", "font": "cjk-bold", "size": 10, "role": "a"},
        {"type": "text", "x": 10, "y": 40, "text": "東京都 合計 1,234", "font": "sans-bold", "size": 10, "role": "b"}]})
    d = draw(lay)
    words = [tuple(w[:5]) for w in pymupdf.open(stream=d.pdf, filetype="pdf")[0].get_text("words")]
    a, b = (locate(x, words) for x in d.drawn)
    assert d.drawn[0].font == d.drawn[1].font and d.drawn[0].font.startswith("DP-cjk-bold-")
    assert a[2] - a[0] == pytest.approx(b[2] - b[0]) and a[2] - a[0] > 60


@pytest.mark.skipif(not cjk_font.available(), reason="fonts-noto-cjk is not installed")
def test_cjk_page_subsets_rebuilt_after_forgetting_draw_the_same_page():
    fam = FAMILIES.get("document.form")()
    spec = fam.sample(0, 0, fam.resolve_knobs({"locale": "ja_JP"}))
    first = fam.render(spec).png
    assert any(k[1] for k in cjk_font._registered)  # the page's own subset is registered
    cjk_font.forget_page_subsets()
    assert not any(k[1] for k in cjk_font._registered) and cjk_font.subset_ttf.cache_info().currsize == 0
    assert fam.render(spec).png == first
