"""OCR legibility of printed answers on clean and augmented document renders (tesseract, Debian `tesseract-ocr`).

A document item's answer is *printed* when a TextSpan of its Facts reads exactly the answer (case and
spacing aside). tesseract reads the whole page; the answer counts as found when the words tesseract
places inside the quad (its box on a clean render), grown by a quarter of the text height, of one of
the spans that print it contain it. Each item counts once. The same Specs are rendered once and augmented in each style
(`augment.apply`), so the styles are compared on the same pages and answers. Also reported: the share
of all placed texts of the pages found the same way. Shares come with their count and Wilson 95% interval.
Run: python benchmarks/ocr_legibility.py [--n 40] [--styles none,photo,scan,screen] [--family F,...]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from deltaprompts import augment
from deltaprompts.generate import GenerateConfig, _make_items, select_families, resolve_all_knobs
from deltaprompts.generators import FAMILIES
from deltaprompts.pipeline.stats import wilson
from deltaprompts.questions import load_templates
from deltaprompts.quads import bounds
from deltaprompts.records import Facts, TextSpan

_SPACE = re.compile(r"\s+")


def norm(text: str) -> str:
    """Casefolded, without whitespace: `1.035,00 €` and `1.035,00€` read the same."""
    return _SPACE.sub("", text).casefold()


def ocr_words(png: bytes, lang: str = "eng") -> list[tuple[str, tuple[float, float, float, float]]]:
    """tesseract's words on a page with their boxes (x0, y0, x1, y1), in reading order."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        path.write_bytes(png)
        tsv = subprocess.run(["tesseract", str(path), "-", "-l", lang, "tsv"], capture_output=True, text=True,
                             check=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout
    words = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") == "5" and text:
            x, y, w, h = (float(row[k]) for k in ("left", "top", "width", "height"))
            words.append((text, (x, y, x + w, y + h)))
    return words


def found(span: TextSpan, words: list[tuple[str, tuple[float, float, float, float]]]) -> bool:
    """Whether the OCR words centred inside the span's (grown) quad contain its text."""
    x0, y0, x1, y1 = bounds(span.quad) if span.quad else span.box
    pad = (y1 - y0) * 0.25
    near = [t for t, (a, b, c, d) in words if x0 - pad <= (a + c) / 2 <= x1 + pad and y0 - pad <= (b + d) / 2 <= y1 + pad]
    return norm(span.text) in norm("".join(near))


def printed_answers(facts: Facts, answers: list[str]) -> list[list[int]]:
    """Per printed answer (those some TextSpan reads exactly), the indexes of the spans that print it."""
    spans = [[i for i, t in enumerate(facts.texts) if norm(t.text) == norm(a)] for a in answers if norm(a)]
    return [s for s in spans if s]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="documents (pages) to read")
    ap.add_argument("--styles", default="none,photo,scan,screen")
    ap.add_argument("--family", default="", help="document families (default: all)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--questions-per-image", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("tesseract"):
        raise SystemExit("needs tesseract: apt-get install tesseract-ocr")
    fams = [f for f in args.family.split(",") if f] or select_families(domains=["document"])
    fams = [f for f in fams if FAMILIES.get(f).domain == "document"]
    styles = args.styles.split(",")
    cfg = GenerateConfig(families=fams, n=args.n * args.questions_per_image, seed=args.seed,
                         knobs=resolve_all_knobs(fams, {}), questions_per_image=args.questions_per_image)
    templates = load_templates()
    hits: dict[str, Counter] = {s: Counter() for s in styles}
    spans: dict[str, Counter] = {s: Counter() for s in styles}
    per_family: dict[tuple[str, str], Counter] = {}
    t0 = time.perf_counter()
    for i in range(args.n):
        fam = fams[i % len(fams)]
        gen = FAMILIES.get(fam)()
        spec = gen.sample(cfg.seed, i // len(fams), cfg.knobs[fam])
        clean = gen.render(spec)
        items = _make_items(cfg, templates, clean, spec, args.questions_per_image, 0, Counter())
        answers = [it.question.options[it.question.answer] if it.question.options else it.question.answer for it in items]
        printed = printed_answers(clean.facts, answers)
        for style in styles:
            aug = augment.apply(spec.model_copy(update={"knobs": {**spec.knobs, "augment": style}}), clean)
            read: dict[int, bool] = {}
            for n, png in enumerate(aug.pngs):
                words = ocr_words(png)
                read.update((k, found(t, words)) for k, t in enumerate(aug.facts.texts) if t.image == n)
            spans[style]["n"] += len(read)
            spans[style]["found"] += sum(read.values())
            for where in printed:  # an answer printed in several places counts once: found if read in one
                ok = any(read.get(k, False) for k in where)
                c = per_family.setdefault((fam, style), Counter())
                for counter in (hits[style], c):
                    counter["n"] += 1
                    counter["found"] += ok
        print(f"page {i + 1}/{args.n} ({fam}): {len(printed)} printed answer(s), {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"\n{args.n} pages of {', '.join(fams)} (seed {args.seed}); tesseract 'eng', whole page\n")
    print(f"{'style':8} {'printed answers found':>24} {'95% interval':>16} {'all placed texts found':>26} {'95% interval':>16}")
    for style in styles:
        h, s = hits[style], spans[style]
        lo, hi = wilson(h["found"], h["n"]) if h["n"] else (0.0, 0.0)
        slo, shi = wilson(s["found"], s["n"]) if s["n"] else (0.0, 0.0)
        share = h["found"] / h["n"] if h["n"] else 0.0
        sshare = s["found"] / s["n"] if s["n"] else 0.0
        print(f"{style:8} {h['found']:>6}/{h['n']:<5} {share:7.1%}  [{lo:5.1%}, {hi:5.1%}] "
              f"{s['found']:>8}/{s['n']:<6} {sshare:7.1%}   [{slo:5.1%}, {shi:5.1%}]")
    print("\nprinted answers found, per family:")
    for fam in fams:
        cells = [f"{style} {per_family.get((fam, style), Counter())['found']}/{per_family.get((fam, style), Counter())['n']}"
                 for style in styles]
        print(f"  {fam:24} " + "  ".join(cells))


if __name__ == "__main__":
    main()
