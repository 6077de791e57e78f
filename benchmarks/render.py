"""Per-item cost of each family against bare renderers drawing the same figure; generate's scaling.

For each family: ms per item of our path (render, Facts, questions, checks; Spec sampling shown
apart) on one core, against two baselines timed in the same run, item by item in turn:
- old: the first baselines (matplotlib bars/lines/pie of the data table; a reportlab page of the
  same words + a PyMuPDF raster; PIL ellipses at the object boxes).
- fair: the same figure minus our bookkeeping. Charts: the kind's own matplotlib drawing (its
  chart_kind hooks, theme, labels, title, legend) at matplotlib's default axes position, drawn
  and encoded as ours, without the layout passes that measure texts, the Facts read-back and the
  checks. Documents: every page of the same layout drawn by the layout engine (doc_layout) to PDF,
  rasterised by PyMuPDF at the spec's dpi and given the spec's scan noise, without word location;
  the report's page-2 bar chart is the chart's bare drawing (as for charts) placed where ours puts
  it. Scenes: the family's own `draw` (every image as its render encodes it, without label maps or
  Facts); a scene family without `draw` falls back to flat shapes (each entity's box as its shape
  and colour, and the texts at their boxes, drawn by PIL at the family's supersampling and reduced
  as it does), and its row says "fair = flat shapes". Every baseline encodes PNG as ours does.
Then `generate --workers 1` and `--workers 2` in turn, --rounds times (400 mixed items, as the CLI
runs; the median speed-up and its range), a projection for 200k mixed items, and with --memory
the resident memory of generate's parent and each worker at 1k and 20k items (minutes). 3-D scenes
are left out of the mixed runs.
Run: python benchmarks/render.py [--n 30] [--plotly] [--memory] [--clock wall|cpu] [--family NAME,...]
     [--no-generate] [--no-families] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageColor, ImageDraw, ImageFont  # noqa: E402

from deltaprompts import augment  # noqa: E402
from deltaprompts.errors import LayoutError  # noqa: E402
from deltaprompts.generate import GenerateConfig, _make_items  # noqa: E402
from deltaprompts.generators import FAMILIES  # noqa: E402
from deltaprompts.generators.base import png_bytes  # noqa: E402
from deltaprompts.generators.cjk_font import forget_page_subsets  # noqa: E402
from deltaprompts.questions import load_templates  # noqa: E402

TARGET_MEDIAN, TARGET_MAX, TARGET_SCALING = 1.3, 1.6, 1.8


# ------------------------------------------------------------------ the old baselines

def old_chart(fam, spec, facts) -> bytes:
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
    fig.clear()
    return buf.getvalue()


def old_document(fam, spec, facts) -> bytes:
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


def old_scene(fam, spec, facts) -> bytes:
    im = Image.new("RGB", (facts.width, facts.height), "white")
    draw = ImageDraw.Draw(im)
    for e in facts.entities:
        if e.box is not None:
            draw.ellipse(e.box, fill=str(e.attrs.get("color", "red")))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ the fair baselines

def _bare_chart(data: dict) -> Image.Image:
    """A chart's data drawn by the kind's own chart_mpl figure (theme, labels, title, legend) at
    matplotlib's default axes position: no measuring, no Facts."""
    from deltaprompts.generators.chart_mpl import build_figure
    from deltaprompts.generators.chart_spec import ChartData

    chart = ChartData.model_validate(data)
    st = chart.style
    with matplotlib.rc_context({"font.family": st.font_family, "font.size": st.font_size,
                                "axes.unicode_minus": True, "text.antialiased": True}):
        d = build_figure(chart, fit=False)
        d.fig.canvas.draw()
        image = Image.fromarray(np.asarray(d.fig.canvas.buffer_rgba())).convert("RGB")
    d.fig.clear()  # frees the figure as ours does (else the garbage collector's pass lands in another timing)
    return image


def fair_chart(fam, spec, facts) -> bytes:
    """The kind's own drawing (theme, labels, title, legend) by chart_mpl, PNG-encoded; no measuring, no Facts."""
    return png_bytes(_bare_chart(spec.data))


def _report_chart(data: dict, page: int, pdf_page) -> None:
    """document.report's page-2 bar chart, drawn bare (`_bare_chart`) and inserted where Report.overlay
    puts ours (documents_pages.figure_place)."""
    if page != 1:
        return
    import pymupdf

    from deltaprompts.generators.documents_pages import figure_place

    im = _bare_chart(data["chart"]["data"])
    x0, y0, k = figure_place(data["figure"], im.width, im.height)
    pdf_page.insert_image(pymupdf.Rect(x0, y0, x0 + im.width * k, y0 + im.height * k), stream=png_bytes(im))


BARE_OVERLAYS = {"document.report": _report_chart}  # families whose `overlay` draws onto a page


def _record_pages(fam, spec) -> list[bytes]:
    """Each page of a RecordDocument as its render draws it (build_pdf per page, any overlay drawn
    bare, PyMuPDF raster, the page's noise, PNG), without word location or Facts."""
    import pymupdf

    from deltaprompts.generators.documents import _noise
    from deltaprompts.generators.records_base import RecordDocument

    overlaid = type(fam).overlay is not RecordDocument.overlay
    if overlaid and fam.name not in BARE_OVERLAYS:
        raise NotImplementedError(f"{fam.name}: no bare drawing of its overlay")
    data, dpi = spec.data, int(spec.data["dpi"])
    pngs = []
    for pg in range(fam.n_pages(data)):
        drawing, _ = fam.build_pdf(spec, pg)
        with pymupdf.open(stream=drawing.pdf, filetype="pdf") as doc:
            if overlaid:
                BARE_OVERLAYS[fam.name](data, pg, doc[0])
            pix = doc[0].get_pixmap(dpi=dpi, alpha=False)
            img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        img = _noise(img, data.get("noise", "none"), int(data.get("noise_seed", 0)) + pg)
        pngs.append(png_bytes(img))
    return pngs


def fair_document(fam, spec, facts) -> bytes:
    """The same layout drawn by doc_layout to PDF and rasterised by PyMuPDF, without word location or
    Facts. A RecordDocument: every page, with its overlay drawn bare and its noise, as its render
    does (`_record_pages`); a one-page document: its page, without noise. Returns the first page."""
    import pymupdf

    from deltaprompts.generators.records_base import RecordDocument

    if isinstance(fam, RecordDocument):
        return _record_pages(fam, spec)[0]
    drawing, _ = fam.build_pdf(spec)
    with pymupdf.open(stream=drawing.pdf, filetype="pdf") as doc:
        pix = doc[0].get_pixmap(dpi=int(spec.data["dpi"]), alpha=False)
        img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    return png_bytes(img)


_FONTS: dict[int, ImageFont.FreeTypeFont] = {}


def _font(px: float) -> ImageFont.FreeTypeFont:
    px = max(6, int(px))
    if px not in _FONTS:
        _FONTS[px] = ImageFont.truetype("DejaVuSans.ttf", px)
    return _FONTS[px]


def _fill(value) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(str(value))[:3]
    except ValueError:
        return (128, 128, 128)


NO_SUPERSAMPLING = {"scene.maze"}  # drawn at final size; the other 2-D scenes draw at 3x (2x above 640 px) and reduce


def fair_scene(fam, spec, facts) -> bytes:
    """The family's own drawing (`draw`: every image as its render encodes it, without label maps or
    Facts), PNG-encoded; the first image. A family without `draw`: `flat_scene`."""
    if hasattr(fam, "draw"):
        return [png_bytes(im) for im in fam.draw(spec)][0]
    return flat_scene(fam, spec, facts)


def flat_scene(fam, spec, facts) -> bytes:
    """The fallback scene baseline: flat shapes (entity boxes, by their shape and colour) and texts drawn
    by PIL, per image, at the family's supersampling and box-filtered down as it does; the first image.
    Cheaper than the figure: it leaves out every mark that is not an entity box (a clock's hands)."""
    sizes = facts.image_sizes or [(facts.width, facts.height)]
    out = []
    for n, (w, h) in enumerate(sizes):
        ss = 1 if fam.name in NO_SUPERSAMPLING else (3 if max(w, h) <= 640 else 2)
        im = Image.new("RGB", (int(w) * ss, int(h) * ss), "white")
        draw = ImageDraw.Draw(im)
        for e in facts.entities:
            if e.box is None or e.image != n or e.box[2] <= e.box[0] or e.box[3] <= e.box[1]:
                continue
            shape, fill = str(e.attrs.get("shape", "")), _fill(e.attrs.get("color", "gray"))
            x0, y0, x1, y1 = (v * ss for v in e.box)
            if shape in ("circle", "sphere", "ellipse", "cylinder"):
                draw.ellipse((x0, y0, x1, y1), fill=fill, outline=(0, 0, 0), width=ss)
            elif shape in ("triangle", "cone"):
                draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill, outline=(0, 0, 0), width=ss)
            else:
                draw.rectangle((x0, y0, x1, y1), fill=fill if shape else None, outline=(0, 0, 0), width=ss)
        for t in facts.texts:
            if t.image == n:
                xy, px = (t.box[0] * ss, t.box[1] * ss), (t.box[3] - t.box[1]) * ss
                draw.text(xy, t.text, font=_font(px), fill=(0, 0, 0))
        out.append(png_bytes(im.reduce(ss) if ss > 1 else im))
    return out[0]


OLD = {"chart": old_chart, "document": old_document, "scene": old_scene}


def fair_of(fam) -> tuple[Callable | None, str]:
    """The fair baseline of a family (None: the old one stands in) and the row's note on it."""
    if fam.domain == "chart":
        return fair_chart, ""
    if fam.domain == "document":
        return (fair_document, "") if hasattr(fam, "build_pdf") else (None, "no fair baseline for this family")
    return fair_scene, "" if hasattr(fam, "draw") else "flat shapes"


def baseline_plotly_batch(specs) -> None:
    """The same data as bare plotly figures, exported in one batch through the same persistent browser."""
    from deltaprompts.generators.chart_plotly import _get_server

    figs = []
    for spec in specs:
        d, st = spec.data, spec.data["style"]
        kind = {"line": "scatter", "pie": "pie"}.get(d["chart_type"], "bar")
        data = [{"type": kind, "x": d["categories"], "y": s["values"], "name": s["name"]} for s in d["series"]]
        layout = {"width": st["width_px"], "height": st["height_px"], "title": {"text": d["title"]}}
        figs.append({"data": data, "layout": layout})
    _get_server().export(figs)


# ------------------------------------------------------------------ per family

def _render(fam, spec, knobs):
    """Render a Spec as generate does: a LayoutError draws the item again with the next attempt."""
    for attempt in range(1, 7):
        try:
            return spec, fam.render(spec)
        except LayoutError:
            spec = fam.sample(0, spec.index, knobs, attempt)
    raise SystemExit(f"{fam.name}: item {spec.index} did not render in 6 attempts")


def bench_family(name: str, n: int, knobs: dict, clock) -> dict[str, float]:
    """ms/item of sampling, our path, and the two baselines, timed item by item in turn."""
    fam = FAMILIES.get(name)()
    resolved = fam.resolve_knobs(knobs)
    cfg = GenerateConfig(families=[name], n=2 * n, knobs={name: resolved}, questions_per_image=2)
    templates = load_templates()
    t = clock()
    specs = [fam.sample(0, i, resolved) for i in range(n)]
    sample = (clock() - t) / n
    old, (fair, why) = OLD[fam.domain], fair_of(fam)
    # warm up: imports, fonts, caches, a browser; a document draws every timed page once, so that the
    # CJK glyphs it needs are converted (as in a long run) before either path is timed
    warm = [fam.sample(0, n + i, resolved) for i in range(2)] + (specs if fam.domain == "document" else [])
    for spec in warm:
        spec, r = _render(fam, spec, resolved)
        _make_items(cfg, templates, r, spec, 2, 0, Counter())
        old(fam, spec, r.facts)
        try:
            (fair or old)(fam, spec, r.facts)
        except Exception as e:  # a family drawn another way (an overlay with no bare drawing): say so, use the old one
            fair, why = None, f"{type(e).__name__}"
    ours = bare_old = bare_fair = drawing = 0.0
    plotly = knobs.get("renderer") == "plotly"
    if plotly:
        t = clock()
        rendered = fam.render_batch(specs)
        for spec, r in zip(specs, rendered):
            _make_items(cfg, templates, augment.apply(spec, r), spec, 2, 0, Counter())
        ours = clock() - t
        t = clock()
        baseline_plotly_batch(specs)
        bare_old = bare_fair = clock() - t
    else:
        for spec in specs:
            forget_page_subsets()  # each path builds the CJK font subsets its page needs (documents)
            t = clock()  # a failed render and its re-draw count as ours, as in generate
            spec, r = _render(fam, spec, resolved)
            r = augment.apply(spec, r)
            t0 = clock()
            _make_items(cfg, templates, r, spec, 2, 0, Counter())
            t1 = clock()
            drawing += t0 - t
            old(fam, spec, r.facts)
            t2 = clock()
            forget_page_subsets()
            t3 = clock()
            (fair or old)(fam, spec, r.facts)
            t4 = clock()
            ours, bare_old, bare_fair = ours + t1 - t, bare_old + t2 - t1, bare_fair + t4 - t3
    fam.close()
    return {"sample": sample * 1e3, "ours": ours / n * 1e3, "render": drawing / n * 1e3,
            "old": bare_old / n * 1e3, "fair": bare_fair / n * 1e3,
            "fair_is_old": why if fair is None and not plotly else "",
            "fair_note": why if fair is not None and not plotly else ""}


def is_3d(name: str) -> bool:
    return "3d" in name or "3d" in FAMILIES.get(name).__module__


# ------------------------------------------------------------------ generate end to end

def _cli(args: list[str], out: str, sample_memory: bool = False) -> tuple[float, dict[str, float]]:
    """Run `deltaprompts generate` as a user would; return its wall seconds and, with sample_memory,
    the peak resident MB of the parent ("parent") and of each worker ("worker <pid>")."""
    cmd = [sys.executable, "-m", "deltaprompts.cli", "generate", *args, "--out", out, "--overwrite"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        import psutil

        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                # the workers are the fork server's children (a spawned pool's: the parent's); the fork
                # server and the resource tracker only wait, and are not counted
                helpers = {c.pid for c in root.children()
                           if any(w in " ".join(c.cmdline()) for w in ("resource_tracker", "forkserver"))}
                procs = [("parent", root)] + [(f"worker {c.pid}", c) for c in root.children(recursive=True)
                                              if c.pid not in helpers]
                for label, p in procs:
                    peaks[label] = max(peaks.get(label, 0.0), p.memory_info().rss / 2**20)
            except psutil.Error:
                pass
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    _, err = proc.communicate()
    stop.set()
    if proc.returncode:
        raise SystemExit(f"generate failed ({proc.returncode}): {err.strip()[-500:]}")
    return time.perf_counter() - t, peaks


def bench_generate(families: list[str], n: int, workers: int, out: str, shard_size: int,
                   per_image: int = 1) -> tuple[float, float]:
    """items/s of `generate --workers N` over `families` (`per_image` questions per image): end to end
    (the CLI's start-up and the last shard's wait included), and in its shards (items over the shards'
    seconds shared by the workers: what a long run approaches, start-up left out)."""
    secs, _ = _cli(["--family", ",".join(families), "--n", str(n), "--seed", "0", "--workers", str(workers),
                    "--shard-size", str(shard_size), "--questions-per-image", str(per_image)], out)
    shard_secs = sum(json.loads(p.read_text())["seconds"] for p in Path(out, "items").glob("shard-*.stats.json"))
    return n / secs, n / (shard_secs / workers)


def bench_scaling(families: list[str], n: int, out: str, shard_size: int, rounds: int) -> None:
    """1 worker, then 2, `rounds` times in turn (this machine's speed drifts by 10-20% within minutes):
    each round's speed-up, their median and range, and the 200k projection."""
    one, two = [], []
    for r in range(rounds):
        one.append(bench_generate(families, n, 1, out, shard_size))
        two.append(bench_generate(families, n, 2, out, shard_size))
        print(f"  round {r + 1}: 1 worker {one[-1][0]:.1f} items/s, 2 workers {two[-1][0]:.1f} items/s: "
              f"{two[-1][0] / one[-1][0]:.2f}x", flush=True)
    ups = sorted(b[0] / a[0] for a, b in zip(one, two))
    med = statistics.median(ups)
    print(f"generate, {len(families)} families mixed (no 3-D), {n} items, --shard-size {shard_size}: speed-up of 2 "
          f"workers over 1, median of {rounds} rounds {med:.2f}x (range {ups[0]:.2f}-{ups[-1]:.2f}; target >= "
          f"{TARGET_SCALING}x) {'ok' if med >= TARGET_SCALING else 'MISSED'}")
    end = statistics.median(b[0] for b in two)
    steady = statistics.median(b[1] for b in two)
    print(f"projection, 200k mixed items here with 2 workers, 1 question per image (the CLI's default): "
          f"{200_000 / end / 3600:.2f} h at the {n}-item end-to-end rate ({end:.1f} items/s), "
          f"{200_000 / steady / 3600:.2f} h at its shards' rate ({steady:.1f} items/s, start-up left out; "
          f"target: under 2 h on 2 cores)")
    end2, steady2 = bench_generate(families, n, 2, out, shard_size, per_image=2)
    print(f"  with 2 questions per image: {200_000 / end2 / 3600:.2f} h end to end ({end2:.1f} items/s), "
          f"{200_000 / steady2 / 3600:.2f} h at the shards' rate ({steady2:.1f} items/s)")


def bench_memory(families: list[str], sizes: tuple[int, ...], out: str) -> None:
    print(f"resident memory of generate --workers 2 (peak MB), {len(families)} families:")
    peaks = {}
    for n in sizes:
        secs, mem = _cli(["--family", ",".join(families), "--n", str(n), "--seed", "0", "--workers", "2"], out, True)
        workers = sorted(v for k, v in mem.items() if k != "parent")
        peaks[n] = (mem.get("parent", 0.0), max(workers, default=0.0))
        print(f"  {n:>6} items in {secs:7.1f} s: parent {peaks[n][0]:7.1f}  workers "
              + " ".join(f"{w:7.1f}" for w in workers))
    lo, hi = sizes[0], sizes[-1]
    for i, who in enumerate(("parent", "largest worker")):
        growth = peaks[hi][i] / peaks[lo][i] - 1 if peaks[lo][i] else float("nan")
        print(f"  {who}: {growth:+.1%} from {lo} to {hi} items (target: within 10%) "
              f"{'ok' if abs(growth) <= 0.10 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="items per family")
    ap.add_argument("--family", default="", help="only these families (comma-separated); default all")
    ap.add_argument("--plotly", action="store_true", help="also time chart.bar/chart.line with renderer=plotly")
    ap.add_argument("--memory", action="store_true",
                    help="also measure generate's memory at 1k and 20k items (minutes)")
    ap.add_argument("--memory-sizes", default="1000,20000", help=argparse.SUPPRESS)
    ap.add_argument("--no-generate", action="store_true", help="skip the end-to-end generate runs")
    ap.add_argument("--no-families", action="store_true", help="skip the per-family table (generate runs only)")
    ap.add_argument("--rounds", type=int, default=3, help="1- and 2-worker generate runs in turn (default 3)")
    ap.add_argument("--shard-size", type=int, default=50,
                    help="generate's --shard-size in the 1- vs 2-worker runs (default: the CLI's 50)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time (default) or this process's CPU time (steadier on a busy machine; not for plotly)")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    names = args.family.split(",") if args.family else FAMILIES.names()
    rows = [] if args.no_families else [(name, {}) for name in names]
    if args.plotly:
        rows += [("chart.bar", {"renderer": "plotly"}), ("chart.line", {"renderer": "plotly"})]
    print(f"{args.clock} clock, {args.n} items per family, 2 questions per image, {os.cpu_count()} CPUs")
    print("ours = render + questions and checks; ratios: ours / bare; 3-D scenes are not in the summary")
    print(f"{'family':28s} {'sample':>7s} {'ours ms':>8s} {'render':>7s} {'items/s':>7s} {'old ms':>7s} {'old x':>6s} "
          f"{'fair ms':>8s} {'fair x':>6s}")
    old_r, fair_r, per_item = [], [], {}
    for name, knobs in rows:
        why = FAMILIES.get(name).unavailable()
        if why:
            print(f"{name:28s} skipped: {why}")
            continue
        r = bench_family(name, args.n, knobs, clock)
        label = name + (" (plotly)" if knobs else "")
        if not is_3d(name):
            old_r.append(r["ours"] / r["old"])
            fair_r.append(r["ours"] / r["fair"])
        if not knobs:
            per_item[name] = r["sample"] + r["ours"]
        note = (f"  (fair = old: {r['fair_is_old']})" if r["fair_is_old"]
                else f"  (fair = {r['fair_note']})" if r["fair_note"] else "")
        print(f"{label:28s} {r['sample']:7.1f} {r['ours']:8.1f} {r['render']:7.1f} {1e3 / r['ours']:7.1f} "
              f"{r['old']:7.1f} "
              f"{r['ours'] / r['old']:6.2f} {r['fair']:8.1f} {r['ours'] / r['fair']:6.2f}{note}", flush=True)
    if fair_r:
        print(f"ratio ours/bare, old baselines: median {statistics.median(old_r):.2f}, max {max(old_r):.2f}")
        print(f"ratio ours/bare, fair baselines: median {statistics.median(fair_r):.2f}, max {max(fair_r):.2f} "
              f"(targets: median <= {TARGET_MEDIAN}, none above {TARGET_MAX}) "
              f"{'ok' if statistics.median(fair_r) <= TARGET_MEDIAN and max(fair_r) <= TARGET_MAX else 'MISSED'}")
    mixed = [n for n in names if not FAMILIES.get(n).unavailable() and not is_3d(n)]
    out = tempfile.mkdtemp(prefix="bench-render-")
    try:
        if not args.no_generate and mixed:
            bench_scaling(mixed, 400, f"{out}/run", args.shard_size, args.rounds)
            cores = os.cpu_count() or 1
            if per_item:
                ideal = statistics.mean(per_item[n] for n in mixed if n in per_item) / 1e3 * 200_000 / min(cores, 2)
                print(f"  from the per-image times above (one item an image), perfectly split over {min(cores, 2)} "
                      f"cores: {ideal / 3600:.2f} h")
        if args.memory and mixed:
            bench_memory(mixed, tuple(int(s) for s in args.memory_sizes.split(",")), f"{out}/mem")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
