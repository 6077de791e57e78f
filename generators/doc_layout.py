"""Document layout language: a jinja2-rendered YAML file of blocks, drawn with reportlab, read back with PyMuPDF.

A layout file (`templates/documents/<kind>_<name>.yaml.j2`) is rendered in a jinja2 sandbox with
the sampled document data, then parsed as YAML into a `Layout`: a page plus a list of blocks, all
in points with the origin at the top-left and y pointing down:

- `text`  a line (or list of lines) at x/y (y = top of the line box), `align` left/right/center
          around x, optional `value` (the substring that is the value) and `role` (e.g. `field:total`);
- `kv`    label/value rows (labels left at x, values right-aligned at x + width), e.g. totals;
- `table` columns (key, header, width, align, optional `line` for a row's second line, prefix,
          suffix) and rows (`id` plus one string per column key); each row becomes an entity box;
- `line`, `rect` rules, boxes and fills.

Every drawn string is recorded (`Drawn`); after rasterising, `locate` finds its words among
PyMuPDF's `get_text("words")` so Facts boxes come from the PDF itself, not from our arithmetic.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import matplotlib
import yaml
from jinja2 import StrictUndefined, TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from deltaprompts.errors import RenderError, TemplateError
from deltaprompts.generators import cjk_font

_TTF = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
# Layout font names -> DejaVu files shipped with matplotlib, so every machine draws the same glyphs.
FONTS = {
    "sans": "DejaVuSans.ttf", "sans-bold": "DejaVuSans-Bold.ttf", "sans-italic": "DejaVuSans-Oblique.ttf",
    "mono": "DejaVuSansMono.ttf", "mono-bold": "DejaVuSansMono-Bold.ttf",
    "serif": "DejaVuSerif.ttf", "serif-bold": "DejaVuSerif-Bold.ttf", "serif-italic": "DejaVuSerif-Italic.ttf",
}
FontName = Literal["sans", "sans-bold", "sans-italic", "mono", "mono-bold", "serif", "serif-bold", "serif-italic",
                   "cjk", "cjk-bold"]  # cjk: Noto Sans CJK (generators/cjk_font.py), also the fallback for CJK text
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_SHRINK = 0.6  # text wider than its room is shrunk down to this fraction of its size, never cut


@lru_cache(maxsize=None)
def font(name: str) -> str:
    """Register the DejaVu TTF behind layout font `name` with reportlab (once); return its PDF name.

    "cjk" and "cjk-bold" give a Noto Sans CJK subset of ASCII and CJK punctuation (metrics, plain text);
    `_Painter.font_for` picks the document's own subset. Raises RenderError when it is not installed."""
    if name in cjk_font.CJK_FILES:
        return cjk_font.register(name)
    pdf_name = "DP-" + FONTS[name].removesuffix(".ttf")
    pdfmetrics.registerFont(TTFont(pdf_name, str(_TTF / FONTS[name])))
    return pdf_name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_color(v: str) -> str:
    if not _COLOR.match(v):
        raise ValueError(f"colour {v!r} must be #rrggbb")
    return v


Color = Annotated[str, AfterValidator(_check_color)]


class Page(_Model):
    """Page size in points (letter is 612 x 792, A4 595 x 842, an 80 mm receipt 227 wide)."""

    width: float = Field(gt=50, le=2000)
    height: float = Field(gt=50, le=5000)
    background: Color = "#ffffff"


class TextStyle(_Model):
    font: FontName = "sans"
    size: float = Field(default=9.0, gt=2, le=96)
    color: Color = "#000000"


class TextBlock(TextStyle):
    """One line, or several lines `leading` apart; `value` marks the value inside a single line."""

    type: Literal["text"]
    x: float
    y: float
    text: str | list[str]
    value: str | None = None
    role: str = "text"
    align: Literal["left", "right", "center"] = "left"
    leading: float | None = None
    max_width: float | None = None


class KVRow(_Model):
    label: str
    value: str
    key: str = Field(description="Role suffix: the label gets label:<key>, the value field:<key>.")
    field: str | None = Field(default=None, description="The value's substring that is the field (default all).")
    note: str | None = Field(default=None, description="A middle column, e.g. the rate of a tax row.")
    note_key: str | None = Field(default=None, description="The note's role is field:<note_key> (else label:<key>).")
    font: FontName | None = None
    value_font: FontName | None = None
    size: float | None = None
    color: Color | None = None
    fill: Color | None = None


class KVBlock(TextStyle):
    """Label/value rows: label left-aligned at x, value right-aligned at x + width."""

    type: Literal["kv"]
    x: float
    y: float
    width: float
    row_height: float = 16.0
    value_font: FontName | None = None
    note_x: float | None = Field(default=None, description="Right edge of the notes, from x (default 60% of width).")
    rule: Color | None = None
    rows: list[KVRow]


class Column(_Model):
    key: str
    header: str = ""
    width: float = Field(gt=0)
    x: float | None = Field(default=None, description="Offset from the table's x; default: after the previous column.")
    align: Literal["left", "right", "center"] = "left"
    line: int = Field(default=1, ge=1, le=3, description="Which line of a row the column sits on.")
    prefix: str = ""
    suffix: str = ""
    font: FontName | None = None
    size: float | None = None
    color: Color | None = None


class TableBlock(TextStyle):
    """Columns and rows; each row's `id` names the entity whose box the row gives."""

    type: Literal["table"]
    x: float
    y: float
    columns: list[Column]
    rows: list[dict[str, str]]
    row_height: float = 18.0
    padding: float = 4.0
    header: bool = True
    header_font: FontName = "sans-bold"
    header_size: float | None = None
    header_color: Color = "#000000"
    header_fill: Color | None = None
    header_height: float | None = None
    stripe: Color | None = None
    rule: Color | None = None
    header_rule: Color | None = Field(default=None, description="Rule under header and last row (default: rule).")
    rule_width: float = 0.5
    border: Color | None = None
    grid: bool = False

    @field_validator("rows", mode="before")
    @classmethod
    def _strings(cls, rows: Any) -> Any:
        # YAML reads an unquoted 2 as an int; cells are drawn text, so keep them as strings.
        if isinstance(rows, list):
            return [{k: str(v) for k, v in r.items()} if isinstance(r, dict) else r for r in rows]
        return rows


class LineBlock(_Model):
    type: Literal["line"]
    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.75
    color: Color = "#000000"
    dash: list[float] | None = None


class RectBlock(_Model):
    type: Literal["rect"]
    x: float
    y: float
    w: float
    h: float
    fill: Color | None = None
    stroke: Color | None = None
    width: float = 0.75
    radius: float = 0.0


Block = Annotated[Union[TextBlock, KVBlock, TableBlock, LineBlock, RectBlock], Field(discriminator="type")]


class Layout(_Model):
    """A parsed layout: the page and its blocks, drawn in order."""

    page: Page
    blocks: list[Block]


@dataclass(frozen=True)
class Drawn:
    """One string put on the page: where (points, top-left origin), in what font, and which part is the value."""

    text: str
    start: int
    end: int
    role: str
    box: tuple[float, float, float, float]
    font: str
    size: float

    @property
    def value(self) -> str:
        return self.text[self.start:self.end]


# ---------------------------------------------------------------- loading


def _quote(value: Any) -> str:
    """jinja filter `q`: a value (or a list of values) as YAML double-quoted text (JSON is valid YAML)."""
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["q"] = _quote


@lru_cache(maxsize=64)
def _compiled(path: str) -> tuple[Any, str]:
    """The compiled template of a layout file and the sha256 of the text it was compiled from."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise TemplateError(f"layout {path}: cannot read: {e}") from None
    try:
        return _ENV.from_string(source), hashlib.sha256(source.encode()).hexdigest()
    except JinjaError as e:
        raise TemplateError(f"layout {path}: line {getattr(e, 'lineno', '?')}: {e}") from None


def layout_digest(path: Path | str) -> str:
    """The sha256 of a layout file as loaded (so Facts can say which version drew a page)."""
    return _compiled(str(path))[1]


def load_layout(path: Path | str, context: dict[str, Any]) -> Layout:
    """Render layout file `path` with `context` and parse it.

    Raises TemplateError naming the file for a jinja error, invalid YAML or a bad block.
    """
    try:
        text = _compiled(str(path))[0].render(**context)
    except JinjaError as e:
        raise TemplateError(f"layout {path}: {type(e).__name__}: {e}") from None
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader, C-accelerated when libyaml is present)
    except yaml.YAMLError as e:
        raise TemplateError(f"layout {path}: rendered text is not valid YAML: {e}") from None
    try:
        return Layout.model_validate(raw)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:5])
        raise TemplateError(f"layout {path}: {errs}") from None


# ---------------------------------------------------------------- drawing


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return tuple(int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


class _Painter:
    """Draws blocks on a reportlab canvas in top-left coordinates and records every string."""

    def __init__(self, c: canvas.Canvas, height: float):
        self.c, self.h = c, height
        self.drawn: list[Drawn] = []
        self.rows: dict[str, tuple[float, float, float, float]] = {}
        self.cjk_chars = ""  # every character of the layout, so one CJK subset per weight serves the page

    def font_for(self, fname: str, s: str) -> str:
        """The PDF font that draws `s` in layout font `fname`: its DejaVu face when that has every glyph
        of `s`, else (and for cjk fonts) a Noto Sans CJK subset of the page's characters."""
        if fname not in cjk_font.CJK_FILES:
            pdf = font(fname)
            if all(ord(ch) in _glyphs(pdf) for ch in s):
                return pdf
        return cjk_font.register("cjk-bold" if "bold" in fname else "cjk", self.cjk_chars + s)

    def text(self, s: str, x: float, y_top: float, fname: str, size: float, color: Color, align: str,
             role: str, value: str | None = None, room: float | None = None) -> None:
        """Draw `s` with its line box's top at y_top, anchored at x by `align`; record it."""
        if not s.strip():
            return
        pdf = self.font_for(fname, s)
        w = pdfmetrics.stringWidth(s, pdf, size)
        if room is not None and w > room:
            size = max(size * MIN_SHRINK, size * room / w)
            w = pdfmetrics.stringWidth(s, pdf, size)
        asc, desc = pdfmetrics.getAscentDescent(pdf, size)
        x0 = {"left": x, "right": x - w, "center": x - w / 2}[align]
        self.c.setFillColorRGB(*_rgb(color))
        self.c.setFont(pdf, size)
        self.c.drawString(x0, self.h - (y_top + asc), s)
        start = 0 if value is None else s.find(value)
        if start < 0:
            raise RenderError(f"value {value!r} of role {role!r} is not part of the drawn text {s!r}")
        end = len(s) if value is None else start + len(value)
        self.drawn.append(Drawn(s, start, end, role, (x0, y_top, x0 + w, y_top + asc - desc), pdf, size))

    def rect(self, x: float, y: float, w: float, h: float, fill: Color | None, stroke: Color | None,
             width: float = 0.75, radius: float = 0.0) -> None:
        if fill is None and stroke is None:
            return
        if fill:
            self.c.setFillColorRGB(*_rgb(fill))
        if stroke:
            self.c.setStrokeColorRGB(*_rgb(stroke))
            self.c.setLineWidth(width)
        args = (x, self.h - y - h, w, h)
        if radius > 0:
            self.c.roundRect(*args, radius, stroke=int(bool(stroke)), fill=int(bool(fill)))
        else:
            self.c.rect(*args, stroke=int(bool(stroke)), fill=int(bool(fill)))

    def line(self, x1: float, y1: float, x2: float, y2: float, color: Color, width: float,
             dash: list[float] | None = None) -> None:
        self.c.setStrokeColorRGB(*_rgb(color))
        self.c.setLineWidth(width)
        self.c.setDash(dash or [])
        self.c.line(x1, self.h - y1, x2, self.h - y2)
        self.c.setDash([])

    # ---- blocks

    def draw_line(self, b: LineBlock) -> None:
        self.line(b.x1, b.y1, b.x2, b.y2, b.color, b.width, b.dash)

    def draw_rect(self, b: RectBlock) -> None:
        self.rect(b.x, b.y, b.w, b.h, b.fill, b.stroke, b.width, b.radius)

    def draw_text(self, b: TextBlock) -> None:
        lines = [b.text] if isinstance(b.text, str) else b.text
        lead = b.leading or b.size * 1.3
        for i, s in enumerate(lines):
            self.text(s, b.x, b.y + i * lead, b.font, b.size, b.color, b.align, b.role,
                      b.value if len(lines) == 1 else None, b.max_width)

    def draw_kv(self, b: KVBlock) -> None:
        for i, r in enumerate(b.rows):
            top, size = b.y + i * b.row_height, r.size or b.size
            self.rect(b.x - 4, top, b.width + 8, b.row_height, r.fill, None)
            pdf_h = _line_height(r.font or b.font, size)
            y = top + (b.row_height - pdf_h) / 2
            color = r.color or b.color
            self.text(r.label, b.x, y, r.font or b.font, size, color, "left", f"label:{r.key}")
            if r.note:
                self.text(r.note, b.x + (b.note_x if b.note_x is not None else 0.6 * b.width), y, r.font or b.font,
                          size, color, "right", f"field:{r.note_key}" if r.note_key else f"label:{r.key}")
            self.text(r.value, b.x + b.width, y, r.value_font or b.value_font or r.font or b.font, size, color,
                      "right", f"field:{r.key}", r.field)
            if b.rule and i < len(b.rows) - 1:
                self.line(b.x, top + b.row_height, b.x + b.width, top + b.row_height, b.rule, 0.5)

    def draw_table(self, b: TableBlock) -> None:
        xs, last_end = [], {}
        for col in b.columns:
            x = col.x if col.x is not None else last_end.get(col.line, 0.0)
            xs.append(x)
            last_end[col.line] = x + col.width
        right = b.x + max(x + c.width for x, c in zip(xs, b.columns))
        top = b.y
        if b.header:
            hh = b.header_height or b.row_height
            hsize = b.header_size or b.size
            self.rect(b.x, top, right - b.x, hh, b.header_fill, None)
            y = top + (hh - _line_height(b.header_font, hsize)) / 2
            for x, col in zip(xs, b.columns):
                if col.header and col.line == 1:
                    self._cell(col.header, b.x + x, col.width, y, b.padding, col.align, b.header_font, hsize,
                               b.header_color, f"label:col:{col.key}")
            top += hh
            if (b.header_rule or b.rule) and not b.header_fill:
                self.line(b.x, top, right, top, b.header_rule or b.rule, b.rule_width * 2)
        for i, row in enumerate(b.rows):
            if "id" not in row:
                raise TemplateError(f"table row {i + 1} has no 'id' (keys: {sorted(row)})")
            n_lines = max([c.line for c in b.columns if row.get(c.key, "").strip()] or [1])
            h = b.row_height * n_lines
            if b.stripe and i % 2 == 1:
                self.rect(b.x, top, right - b.x, h, b.stripe, None)
            for x, col in zip(xs, b.columns):
                val = row.get(col.key, "")
                if not val.strip():
                    continue
                size, fname = col.size or b.size, col.font or b.font
                y = top + (col.line - 1) * b.row_height + (b.row_height - _line_height(fname, size)) / 2
                self._cell(col.prefix + val + col.suffix, b.x + x, col.width, y, b.padding, col.align, fname, size,
                           col.color or b.color, f"cell:{row['id']}:{col.key}", val)
            self.rows[row["id"]] = (b.x, top, right, top + h)
            top += h
            if b.rule and i < len(b.rows) - 1:
                self.line(b.x, top, right, top, b.rule, b.rule_width)
        if b.grid:
            col_color = b.border or b.rule or "#000000"
            for x in sorted({x for x, c in zip(xs, b.columns) if c.line == 1} - {0.0}):
                self.line(b.x + x, b.y, b.x + x, top, col_color, b.rule_width)
        if b.border:
            self.rect(b.x, b.y, right - b.x, top - b.y, None, b.border, b.rule_width * 1.5)
        elif b.header_rule or b.rule:
            self.line(b.x, top, right, top, b.header_rule or b.rule, b.rule_width * 2)

    def _cell(self, s: str, x: float, width: float, y: float, pad: float, align: str, fname: str, size: float,
              color: Color, role: str, value: str | None = None) -> None:
        anchor = {"left": x + pad, "right": x + width - pad, "center": x + width / 2}[align]
        self.text(s, anchor, y, fname, size, color, align, role, value, width - 2 * pad)


@lru_cache(maxsize=None)
def _glyphs(pdf_name: str) -> frozenset[int]:
    """The code points registered font `pdf_name` has glyphs for."""
    return frozenset(pdfmetrics.getFont(pdf_name).face.charToGlyph)


def _layout_chars(layout: Layout) -> str:
    """The distinct non-ASCII characters of a layout's strings, sorted."""
    chars: set[str] = set()
    stack: list[Any] = [layout.model_dump()]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            chars.update(ch for ch in v if ord(ch) > 0x7E)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return "".join(sorted(chars))


def _line_height(fname: str, size: float) -> float:
    asc, desc = pdfmetrics.getAscentDescent(font(fname), size)
    return asc - desc


@dataclass(frozen=True)
class Drawing:
    """A drawn layout: the PDF, every string put on it, and each table row's box (points)."""

    pdf: bytes
    drawn: list[Drawn]
    rows: dict[str, tuple[float, float, float, float]]
    width: float
    height: float


def draw(layout: Layout) -> Drawing:
    """Draw a layout into a one-page deterministic PDF (reportlab `invariant`: no dates, fixed ids)."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(layout.page.width, layout.page.height), invariant=1, pageCompression=0)
    p = _Painter(c, layout.page.height)
    p.cjk_chars = _layout_chars(layout)
    if layout.page.background.lower() != "#ffffff":
        p.rect(0, 0, layout.page.width, layout.page.height, layout.page.background, None)
    for i, b in enumerate(layout.blocks):
        try:
            getattr(p, f"draw_{b.type}")(b)
        except (TemplateError, RenderError) as e:
            raise type(e)(f"block {i + 1} ({b.type}): {e}") from None
    c.showPage()
    c.save()
    return Drawing(buf.getvalue(), p.drawn, p.rows, layout.page.width, layout.page.height)


# ---------------------------------------------------------------- reading back


Word = tuple[float, float, float, float, str]
# PyMuPDF splits words at ASCII whitespace and the no-break space only; a thin or narrow no-break
# space (U+2009, U+202F: Babel's fr_FR thousands separator) stays inside its word.
_WORD_RUN = re.compile(r"[^ \t\n\r\f\v\xa0]+")


def locate(d: Drawn, words: list[Word], slack: float = 1.0) -> tuple[float, float, float, float]:
    """The box (points) of the value of drawn string `d`, from the PyMuPDF words inside its drawn region.

    The words found there must be exactly the drawn string's words; a value that starts or ends
    inside a word (e.g. the 7.25 of "(7.25%)") gets that word's box trimmed by glyph widths.
    Raises RenderError when the words do not match (overlapping text, a missing glyph).
    """
    x0, y0, x1, y1 = d.box
    inside = sorted((w for w in words if x0 - slack <= (w[0] + w[2]) / 2 <= x1 + slack
                     and y0 - slack <= (w[1] + w[3]) / 2 <= y1 + slack), key=lambda w: w[0])
    tokens = [(m.start(), m.end()) for m in _WORD_RUN.finditer(d.text)]
    if [w[4] for w in inside] != [d.text[a:b] for a, b in tokens]:
        raise RenderError(f"text {d.text!r} ({d.role}) reads back as {[w[4] for w in inside]!r}; "
                          "does it overlap other text?")
    boxes = []
    for (a, b), w in zip(tokens, inside):
        lo, hi = max(a, d.start), min(b, d.end)
        if lo >= hi:
            continue
        full = pdfmetrics.stringWidth(d.text[a:b], d.font, d.size)
        left = pdfmetrics.stringWidth(d.text[a:lo], d.font, d.size) / full
        right = pdfmetrics.stringWidth(d.text[a:hi], d.font, d.size) / full
        span = w[2] - w[0]
        boxes.append((w[0] + left * span, w[1], w[0] + right * span, w[3]))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
