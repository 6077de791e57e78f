"""Shared render path of the record documents (statement, form, timetable, paper, report): a layout
drawn once per page, every string read back with PyMuPDF per page, entities boxed by their cells."""

from __future__ import annotations

import textwrap
from typing import Any, ClassVar

import numpy as np
import pymupdf
from PIL import Image
from reportlab.pdfbase import pdfmetrics

from deltaprompts.errors import RenderError
from deltaprompts.generators.base import Rendered, choice, png_bytes
from deltaprompts.generators.doc_layout import Drawing, font, locate
from deltaprompts.generators.documents import LayoutKnob, _Document, _faker, _layout, _noise, _style
from deltaprompts.generators.locales import FAKER_LOCALE, LOCALES, format_number
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan

Box = tuple[float, float, float, float]


def record_knobs(kind: str, dpi: int) -> tuple[Knob, ...]:
    """The knobs every record family has: dpi, layout, locale, noise."""
    return (
        Knob("dpi", "int", dpi, "raster resolution of the page", lo=60, hi=300, difficulty="lower is harder"),
        LayoutKnob("layout", "choice", "random", f"{kind} layout file (templates/documents/{kind}_*.yaml.j2 "
                   "and $DELTAPROMPTS_LAYOUT_PATH)", difficulty="none", kind=kind),
        Knob("locale", "choice", "random", "locale of names, numbers and dates (ja_JP and zh_CN print CJK text)",
             choices=("random", *LOCALES), difficulty="none"),
        Knob("noise", "choice", "none", "scan-like blur and grain (no geometric change)",
             choices=("none", "light", "scan"), difficulty="higher is harder"),
    )


def wrap(text: str, fname: str, size: float, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` points in layout font `fname` at `size`."""
    pdf = font(fname)
    lines: list[str] = []
    for word in text.split():
        if lines and pdfmetrics.stringWidth(lines[-1] + " " + word, pdf, size) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def flow(items: list[dict[str, str]], columns: list[list[float]], fname: str, size: float, leading: float,
         head_font: str = "sans-bold", gap: float = 6.0) -> list[dict[str, Any]]:
    """Lay headings and paragraphs into columns [x, y_top, y_bottom, width], in order; what does not fit is
    left out. Each item is {"heading": text} or {"text": paragraph}; returns lines {x, y, text, font, role}."""
    out: list[dict[str, Any]] = []
    col, y = 0, columns[0][1]
    for it in items:
        head = "heading" in it
        lines = [it["heading"]] if head else wrap(it["text"], fname, size, columns[col][3])
        for k, line in enumerate(lines):
            if y + leading > columns[col][2]:
                col += 1
                if col >= len(columns):
                    return out
                y = columns[col][1]
            if head and y + 3 * leading > columns[col][2]:  # no heading at the foot of a column
                col += 1
                if col >= len(columns):
                    return out
                y = columns[col][1]
            out.append({"x": columns[col][0], "y": round(y, 2), "text": line, "font": head_font if head else fname,
                        "role": "text:heading" if head else "text:body"})
            y += leading
        y += gap if not head else 1.0
    return out


class RecordDocument(_Document):
    """A document of one or more pages from one layout file (drawn with `page` = 0, 1, ...).

    Subclasses implement `sample_data`, `n_pages`, `entities` (id, attrs, page and the roles whose
    boxes make the entity's box) and `fields`; `overlay` may place an image (a chart) on a page."""

    kind: ClassVar[str]

    def n_pages(self, data: dict[str, Any]) -> int:
        """How many pages the document has."""
        return 1

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """[{id, attrs, page, roles: [role, ...], printed: {attr: role}}]: box = union of those roles' text boxes."""
        raise NotImplementedError

    def overlay(self, data: dict[str, Any], page: int, pdf_page: Any, drawing: Drawing,
                scale: float) -> tuple[list[Entity], list[TextSpan], dict[str, Any]]:
        """Draw extra content onto PyMuPDF page `pdf_page` before it is rasterised; return its entities,
        texts (page pixels) and extra facts. Default: nothing."""
        return [], [], {}

    def template_context(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data plus `num(value, decimals)` (locale-formatted), `wrap` and `flow` helpers."""
        loc = data["locale"]
        return {**data, "num": lambda v, d=0: format_number(v, loc, int(d)), "wrap": wrap, "flow": flow,
                "width": lambda s, f, z: pdfmetrics.stringWidth(str(s), font(f), float(z))}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"doc": data.get("doc_noun", self.kind), "locale": data["locale"]}

    def render(self, spec: Spec) -> Rendered:
        """Render every page to PNG and merge their Facts; each box says on which page it lies."""
        data = spec.data
        dpi = int(data["dpi"])
        scale = dpi / 72.0
        pngs, sizes, texts, by_role, extra_ents, extra = [], [], [], {}, [], {}
        sha, sizes_pt = "", []
        for pg in range(self.n_pages(data)):
            drawing, sha = self.build_pdf(spec, pg)
            sizes_pt.append([drawing.width, drawing.height])
            with pymupdf.open(stream=drawing.pdf, filetype="pdf") as doc:
                ents, spans, more = self.overlay(data, pg, doc[0], drawing, scale)
                pix = doc[0].get_pixmap(dpi=dpi, alpha=False)
                img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
                words = [tuple(w[:5]) for w in doc[0].get_text("words")]
            for d in drawing.drawn:
                try:
                    box = locate(d, words)  # type: ignore[arg-type]
                except RenderError as e:
                    raise RenderError(f"layout {data['layout']} page {pg + 1}: {e}") from None
                span = TextSpan(text=d.value, box=tuple(round(v * scale, 2) for v in box), role=d.role, image=pg)
                texts.append(span)
                by_role[(pg, d.role)] = span
            texts.extend(spans)
            extra_ents.extend(ents)
            for k, v in more.items():
                extra.setdefault(k, {}).update(v) if isinstance(v, dict) else extra.__setitem__(k, v)
            img = _noise(img, data.get("noise", "none"), int(data.get("noise_seed", 0)) + pg)
            pngs.append(png_bytes(img))
            sizes.append((img.width, img.height))
        entities, printed = [], dict(extra.pop("printed", {}))
        for e in self.entities(data):
            spans = [by_role.get((e["page"], r)) for r in e["roles"]]
            if any(s is None for s in spans):
                missing = [r for r, s in zip(e["roles"], spans) if s is None]
                raise RenderError(f"layout {data['layout']}: entity {e['id']} has no text with role(s) {missing}")
            box = (min(s.box[0] for s in spans), min(s.box[1] for s in spans),
                   max(s.box[2] for s in spans), max(s.box[3] for s in spans))
            entities.append(Entity(id=e["id"], box=box, attrs=e["attrs"], image=e["page"]))
            for attr, role in e.get("printed", {}).items():
                printed.setdefault(e["id"], {})[attr] = by_role[(e["page"], role)].text
        entities.extend(extra_ents)
        shown = {t.role.removeprefix("field:") for t in texts if t.role.startswith("field:")}
        fields = {k: (v if k in shown else None) for k, v in self.fields(data).items()}
        facts = Facts(domain="document", kind=data["layout"], width=sizes[0][0], height=sizes[0][1],
                      entities=entities, fields=fields, texts=texts, context=self.context(data),
                      image_sizes=sizes if len(sizes) > 1 else [],
                      extra={"layout": data["layout"], "layout_sha256": sha, "dpi": dpi, "page_size_pt": sizes_pt[0],
                             "noise": data.get("noise", "none"), "printed": printed, "pages": len(sizes), **extra})
        return Rendered(png=pngs[0], facts=facts, more_png=tuple(pngs[1:]))

    def common(self, rng: np.random.Generator, knobs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Layout, locale, style and noise of a new document, and a Faker seeded from `rng`."""
        layout = _layout(rng, self.kind, str(knobs["layout"]))
        locale = str(choice(rng, LOCALES)) if knobs["locale"] == "random" else str(knobs["locale"])
        fake = _faker(FAKER_LOCALE[locale], rng)
        data = {"layout": layout, "dpi": int(knobs["dpi"]), "locale": locale, "style": _style(rng),
                "noise": str(knobs["noise"]), "noise_seed": int(rng.integers(2**31))}
        return data, fake


def short(text: str, n: int) -> str:
    """`text` cut to at most n characters at a word boundary (no ellipsis)."""
    return textwrap.shorten(text, n, placeholder="") or text[:n]
