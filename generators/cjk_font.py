"""Noto Sans CJK (Debian fonts-noto-cjk) for reportlab: per-document TrueType subsets of its CFF outlines.

reportlab embeds only TrueType outlines and Noto Sans CJK ships PostScript (CFF) outlines in a .ttc,
so a document's CJK text is set in a subset of the font holding exactly the characters the document
prints, its cubic curves converted to quadratic ones (fontTools cu2qu, 1 font unit of error). The
subset is a pure function of the character set, so the PDF and its raster stay byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

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


@lru_cache(maxsize=8)
def subset_ttf(name: str, chars: str) -> bytes:
    """A TrueType-outline font (bytes) of layout font `name` holding `chars` (plus ASCII and common CJK punctuation)."""
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    path = str(font_path(name))
    f = TTFont(path, fontNumber=_face_index(path), lazy=True)
    opts = subset.Options()
    opts.layout_features, opts.notdef_outline, opts.name_IDs, opts.hinting = [], True, ["*"], False
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(sorted(set(_BASE + chars))))
    sub.subset(f)
    order, glyph_set = f.getGlyphOrder(), f.getGlyphSet()
    glyphs = {}
    for g in order:
        pen = TTGlyphPen(None)
        glyph_set[g].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[g] = pen.glyph()
    f["loca"] = newTable("loca")
    glyf = f["glyf"] = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, glyphs
    for tag in ("CFF ", "VORG"):
        if tag in f:
            del f[tag]
    glyf.compile(f)
    maxp = f["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for k in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs", "maxStackElements",
              "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, k, 0)
    # a PostScript name of its own: reportlab keeps one type face per name, so subsets must not share one
    ps = f"NotoSansCJK{'Bold' if 'bold' in name else ''}-DP{hashlib.sha256(chars.encode()).hexdigest()[:10]}"
    f["name"].names = [n for n in f["name"].names if n.nameID != 6]
    f["name"].setName(ps, 6, 3, 1, 0x409)
    f["post"].formatType = 3.0
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
        old_key = next(k for k in _registered if k[1])  # the oldest page subset
        old = _registered.pop(old_key)
        font = pdfmetrics._fonts.pop(old, None)  # reportlab keeps every font it was given: drop the old subset
        if font is not None:
            pdfmetrics._dynFaceNames.pop(font.face.name, None)
    return pdf_name
