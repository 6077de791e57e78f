"""Noto Sans CJK (Debian fonts-noto-cjk) for reportlab: per-document TrueType subsets of its CFF outlines.

reportlab embeds only TrueType outlines and Noto Sans CJK ships PostScript (CFF) outlines in a .ttc,
so a document's CJK text is set in a subset of the font holding exactly the characters the document
prints, its cubic curves converted to quadratic ones (fontTools cu2qu, 1 font unit of error). The
subset is a pure function of the character set, so the PDF and its raster stay byte-identical.
The face is read once per process and each glyph converted once, so a new page's subset costs about
20 ms rather than the 0.3-0.5 s of running fontTools' subsetter over the 65k-glyph face.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from deltaprompts.errors import RenderError

#: Where Debian (fonts-noto-cjk) puts the font; $DELTAPROMPTS_CJK_FONT_DIR overrides the folder.
CJK_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/noto-cjk", "/usr/share/fonts/google-noto-cjk")
CJK_FILES = {"cjk": "NotoSansCJK-Regular.ttc", "cjk-bold": "NotoSansCJK-Bold.ttc"}
#: Which face of the collection: the Simplified Chinese one covers kana and the JIS kanji used by ja_JP too.
CJK_FACE = "Noto Sans CJK SC"
#: Always in a subset, so labels, numbers and punctuation around the CJK text share the face.
_BASE = "".join(chr(c) for c in range(0x20, 0x7F)) + "¥€£%·•–—‘’“”。、，：；（）「」【】年月日￥"


def font_path(name: str) -> Path:
    """The .ttc file of layout font `name` ("cjk" or "cjk-bold"); raises RenderError naming the install step."""
    dirs = [os.environ["DELTAPROMPTS_CJK_FONT_DIR"]] if os.environ.get("DELTAPROMPTS_CJK_FONT_DIR") else list(CJK_DIRS)
    for d in dirs:
        p = Path(d) / CJK_FILES[name]
        if p.is_file():
            return p
    raise RenderError(f"font {name!r} needs {CJK_FILES[name]} (Debian: apt-get install fonts-noto-cjk; "
                      f"or set DELTAPROMPTS_CJK_FONT_DIR); looked in {', '.join(dirs)}")


def available() -> bool:
    """Whether the CJK fonts are installed."""
    try:
        font_path("cjk")
        font_path("cjk-bold")
    except RenderError:
        return False
    return True


@lru_cache(maxsize=2)
def _face_index(path: str) -> int:
    from fontTools.ttLib import TTCollection

    col = TTCollection(path, lazy=True)
    names = [f["name"].getDebugName(4) for f in col.fonts]
    return names.index(CJK_FACE) if CJK_FACE in names else 0


@dataclass(frozen=True)
class _Master:
    """One face of the collection, read once per process: what every subset is cut from."""

    font: Any  # fontTools TTFont (lazy): its small tables are copied into each subset
    cmap: dict[int, str]
    gid: dict[str, int]
    metrics: dict[str, tuple[int, int]]
    glyph_set: Any
    #: quadratic (TrueType) outline of each glyph converted so far; a glyph's outline does not depend on
    #: the subset it lands in, so each is converted once per process (a few thousand CJK glyphs at most)
    outlines: dict[str, Any]


@lru_cache(maxsize=2)
def _master(path: str) -> _Master:
    from fontTools.ttLib import TTFont

    f = TTFont(path, fontNumber=_face_index(path), lazy=True)
    return _Master(f, f.getBestCmap(), {g: i for i, g in enumerate(f.getGlyphOrder())}, f["hmtx"].metrics,
                   f.getGlyphSet(), {})


def _outline(m: _Master, glyph: str) -> Any:
    """Glyph `glyph` as a TrueType glyph: its cubic curves converted to quadratic ones (1 font unit of error)."""
    out = m.outlines.get(glyph)
    if out is None:
        from fontTools.pens.cu2quPen import Cu2QuPen
        from fontTools.pens.ttGlyphPen import TTGlyphPen

        pen = TTGlyphPen(None)
        m.glyph_set[glyph].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        out = m.outlines[glyph] = pen.glyph()
    return out


@lru_cache(maxsize=8)
def subset_ttf(name: str, chars: str) -> bytes:
    """A TrueType-outline font (bytes) of layout font `name` holding `chars` (plus ASCII and common CJK punctuation).

    Built from the master's tables read once per process: the glyphs of those characters (and .notdef)
    in the master's order, their advance widths, a Unicode cmap, and the master's head, hhea, OS/2 and
    name records (reportlab reads metrics and the PostScript name from them)."""
    from fontTools.ttLib import TTFont, newTable
    from fontTools.ttLib.tables._c_m_a_p import cmap_format_4

    m = _master(str(font_path(name)))  # looked up each time: a font removed or moved is one clear error
    cps = sorted(c for c in map(ord, set(_BASE + chars)) if c in m.cmap and c <= 0xFFFF)
    order = sorted({".notdef"} | {m.cmap[c] for c in cps}, key=m.gid.__getitem__)
    f = TTFont()
    f.setGlyphOrder(order)
    for tag in ("head", "hhea", "OS/2"):
        f[tag] = copy.deepcopy(m.font[tag])
    hmtx = f["hmtx"] = newTable("hmtx")
    hmtx.metrics = {g: m.metrics[g] for g in order}
    cmap = f["cmap"] = newTable("cmap")
    cmap.tableVersion, cmap.tables = 0, []
    for platform, encoding in ((0, 3), (3, 1)):
        sub = cmap_format_4(4)
        sub.platformID, sub.platEncID, sub.language, sub.cmap = platform, encoding, 0, {c: m.cmap[c] for c in cps}
        cmap.tables.append(sub)
    f["loca"] = newTable("loca")
    glyf = f["glyf"] = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, {g: copy.deepcopy(_outline(m, g)) for g in order}
    glyf.compile(f)
    maxp = f["maxp"] = newTable("maxp")
    maxp.tableVersion, maxp.numGlyphs, maxp.maxZones = 0x00010000, len(order), 1
    for k in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
              "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, k, 0)
    post = f["post"] = newTable("post")
    src = m.font["post"]
    post.formatType, post.italicAngle, post.underlinePosition, post.underlineThickness = \
        3.0, src.italicAngle, src.underlinePosition, src.underlineThickness
    post.isFixedPitch, post.minMemType42, post.maxMemType42, post.minMemType1, post.maxMemType1 = \
        src.isFixedPitch, 0, 0, 0, 0
    # a PostScript name of its own: reportlab keeps one type face per name, so subsets must not share one
    ps = f"NotoSansCJK{'Bold' if 'bold' in name else ''}-DP{hashlib.sha256(chars.encode()).hexdigest()[:10]}"
    names = f["name"] = newTable("name")
    names.names = [n for n in m.font["name"].names if n.nameID != 6 and n.platformID == 3 and n.langID == 0x409]
    names.setName(ps, 6, 3, 1, 0x409)
    f["head"].glyphDataFormat = 0
    f.sfntVersion = "\000\001\000\000"
    buf = io.BytesIO()
    f.save(buf)
    return buf.getvalue()


#: Subsets kept registered with reportlab, most recent last; older ones are dropped so a long run does not grow.
KEEP = 64
_registered: OrderedDict[tuple[str, str], str] = OrderedDict()


def register(name: str, chars: str = "") -> str:
    """Register with reportlab a subset of layout font `name` covering `chars`; return its PDF font name.

    The name carries a hash of the character set, so two documents with different text never share
    (or overwrite) a subset. The KEEP most recent subsets stay registered (a page needs at most two), besides the two base subsets.
    Raises RenderError when the font is not installed.
    """
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    key = (name, "".join(sorted(set(chars) - set(_BASE))))
    if key in _registered:
        _registered.move_to_end(key)
        return _registered[key]
    data = subset_ttf(*key)
    pdf_name = f"DP-{name}-{hashlib.sha256(key[1].encode()).hexdigest()[:10]}"
    pdfmetrics.registerFont(TTFont(pdf_name, io.BytesIO(data)))
    _registered[key] = pdf_name
    if not key[1]:  # the base subset (layout font "cjk" for metrics) stays: doc_layout.font caches its name
        _registered.move_to_end(key, last=False)
    while len(_registered) > KEEP + 2:
        _unregister(next(k for k in _registered if k[1]))  # the oldest page subset
    return pdf_name


def _unregister(key: tuple[str, str]) -> None:
    from reportlab.pdfbase import pdfmetrics

    font = pdfmetrics._fonts.pop(_registered.pop(key), None)  # reportlab keeps every font it was given
    if font is not None:
        pdfmetrics._dynFaceNames.pop(font.face.name, None)


def forget_page_subsets() -> None:
    """Drop the page subsets built so far (the base subsets stay): the next page builds its own.
    benchmarks/render.py calls it before each timed drawing, so that our path and the bare baseline
    each pay for the subsets their page needs, whichever drew the page first."""
    subset_ttf.cache_clear()
    for key in [k for k in _registered if k[1]]:
        _unregister(key)
