"""Render throughput per family, and our per-item cost against a bare renderer baseline.

For each family: items/s of the full per-item path (sample Spec, render, Facts, questions,
checks) on one core, and the same figure drawn by the renderer alone (matplotlib bars/lines/pie
from the data table; bare plotly figures exported in one batch through the same browser; a
reportlab page of the same words + PyMuPDF raster; PIL ellipses at the object boxes), timed in the same run. Then `generate` end to end with 1 and 2 workers.
Run: python benchmarks/render.py [--n 40] [--plotly]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from deltaprompts.generate import GenerateConfig, _make_items, generate, resolve_all_knobs  # noqa: E402
from deltaprompts.generators import FAMILIES  # noqa: E402
from deltaprompts.questions import load_templates  # noqa: E402


def baseline_chart(spec, facts) -> bytes:
    d, st = spec.data, spec.data["style"]
    fig = plt.figure(figsize=(st["width_px"] / st["dpi"], st["height_px"] / st["dpi"]), dpi=st["dpi"])
    ax = fig.add_subplot()
    cats = d["categories"]
    if d["chart_type"] == "pie":
        ax.pie(d["series"][0]["values"], labels=cats)
    elif d["chart_type"] == "line":
        for s in d["series"]:
            ax.plot(cats, s["values"], color=s["color"])
    elif d["chart_type"] == "hbar":
        ax.barh(cats, d["series"][0]["values"])
    else:
        for s in d["series"]:
            ax.bar(cats, s["values"], color=s["color"])
    ax.set_title(d["title"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def baseline_document(spec, facts) -> bytes:
    import pymupdf
    from reportlab.pdfgen import canvas

    dpi = spec.data["dpi"]
    w, h = facts.width * 72 / dpi, facts.height * 72 / dpi
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(w, h))
    for t in facts.texts:
        x0, y0, x1, y1 = (v * 72 / dpi for v in t.box)
        c.setFont("Helvetica", max(4.0, (y1 - y0) * 0.8))
        c.drawString(x0, h - y1, t.text)
    c.save()
    doc = pymupdf.open(stream=buf.getvalue(), filetype="pdf")
    return doc[0].get_pixmap(dpi=dpi).tobytes("png")


def baseline_scene(spec, facts) -> bytes:
    im = Image.new("RGB", (facts.width, facts.height), "white")
    draw = ImageDraw.Draw(im)
    for e in facts.entities:
        draw.ellipse(e.box, fill=str(e.attrs.get("color", "red")))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def baseline_plotly_batch(specs) -> None:
    """The same data as bare plotly figures, exported in one batch through the same persistent browser."""
    from deltaprompts.generators.chart_plotly import _get_server

    figs = []
    for spec in specs:
        d, st = spec.data, spec.data["style"]
        kind = {"line": "scatter", "pie": "pie"}.get(d["chart_type"], "bar")
        data = [{"type": kind, "x": d["categories"], "y": s["values"], "name": s["name"]} for s in d["series"]]
        figs.append({"data": data, "layout": {"width": st["width_px"], "height": st["height_px"], "title": {"text": d["title"]}}})
    _get_server().export(figs)


BASELINES = {"chart": baseline_chart, "document": baseline_document, "scene": baseline_scene}


def bench_family(name: str, n: int, knobs: dict) -> tuple[float, float]:
    fam = FAMILIES.get(name)()
    resolved = fam.resolve_knobs(knobs)
    cfg = GenerateConfig(families=[name], n=n, knobs={name: resolved})
    templates = load_templates()
    specs = [fam.sample(0, i, resolved) for i in range(n)]
    fam.render_batch(specs[:2])  # warm up (imports, fonts, a browser)
    t = time.perf_counter()
    rendered = fam.render_batch(specs)
    for spec, r in zip(specs, rendered):
        _make_items(cfg, templates, r, spec, 1, 0, Counter())
    ours = (time.perf_counter() - t) / n
    t = time.perf_counter()
    if knobs.get("renderer") == "plotly":
        baseline_plotly_batch(specs)
    else:
        for spec, r in zip(specs, rendered):
            BASELINES[fam.domain](spec, r.facts)
    bare = (time.perf_counter() - t) / n
    fam.close()
    return ours, bare


def bench_generate(n: int, workers: int) -> float:
    out = tempfile.mkdtemp()
    try:
        cfg = GenerateConfig(families=[f for f in FAMILIES.names()], n=n,
                             knobs=resolve_all_knobs(FAMILIES.names(), {}), shard_size=10)
        t = time.perf_counter()
        generate(cfg, f"{out}/run", workers=workers)
        return n / (time.perf_counter() - t)
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="items per family")
    ap.add_argument("--plotly", action="store_true", help="also time chart.bar/chart.line with renderer=plotly")
    args = ap.parse_args()
    rows = [(name, {}) for name in FAMILIES.names()]
    if args.plotly:
        rows += [("chart.bar", {"renderer": "plotly"}), ("chart.line", {"renderer": "plotly"})]
    print(f"{'family':34s} {'ours ms/item':>12s} {'items/s':>8s} {'bare ms':>8s} {'ratio':>6s}")
    ratios = []
    for name, knobs in rows:
        ours, bare = bench_family(name, args.n, knobs)
        label = name + (" (plotly)" if knobs else "")
        ratios.append(ours / bare)
        print(f"{label:34s} {ours * 1e3:12.1f} {1 / ours:8.1f} {bare * 1e3:8.1f} {ours / bare:6.2f}")
    print(f"median ratio ours/bare: {statistics.median(ratios):.2f} (bare = the renderer alone drawing the same data)")
    n = 10 * len(FAMILIES.names())
    one, two = bench_generate(n, 1), bench_generate(n, 2)
    print(f"generate, all families, {n} items: 1 worker {one:.1f} items/s, 2 workers {two:.1f} items/s "
          f"(speed-up {two / one:.2f}x)")


if __name__ == "__main__":
    main()
