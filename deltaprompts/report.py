"""A static, offline HTML report of a run: Δ and accuracy plots, yield per round, rejections, kept items by Δ."""

from __future__ import annotations

import html
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.split import SPLIT_FILE, describe, read_split
from deltaprompts.store import RunStore, atomic_write

REPORT_DIR = "report"
ROUNDS_FILE = "rounds.json"
NOT_SCORED = "Not scored yet: run `deltaprompts score` on this run to see this section."

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{padding:16px 24px;background:#1d2330;color:#fff}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b8c0d0;font-size:13px}
.warn{background:#b03a2e;color:#fff;padding:8px 24px;font-weight:600}
section{background:#fff;margin:16px 24px;padding:12px 16px;border-radius:8px;box-shadow:0 1px 3px #0002}
h2{font-size:16px;margin:4px 0 10px}.empty{color:#777;font-style:italic}section img.plot{max-width:100%}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #e3e5ea;text-align:right}
td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px}
.card{border:1px solid #e3e5ea;border-radius:6px;overflow:hidden;font-size:13px}
.card img{width:100%;display:block;background:#eee}
.card .b{padding:8px 10px}.q{font-weight:600;margin-bottom:4px}.a{color:#0a6b2d}.d{font-weight:700;color:#8e44ad}
.dist{color:#555;font-size:12px;margin-top:4px}.id{color:#999;font-size:11px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


# ------------------------------------------------------------------ reading the run


def read_rounds(run_dir: Path) -> list[dict[str, int]] | None:
    """The yield per round from rounds.json (a list of {round, generated, screened, kept}), or None
    if the run has none; raises UserError naming the file when it has another shape."""
    path = run_dir / ROUNDS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    keys = ("round", "generated", "screened", "kept")
    if not isinstance(data, list) or not all(isinstance(r, dict) and isinstance(r.get("round"), int) for r in data):
        raise UserError(f"{path} must be a list of objects with an integer 'round' and counts {', '.join(keys[1:])}")
    rows = []
    for r in data:
        bad = [k for k in keys[1:] if not isinstance(r.get(k, 0), int) or isinstance(r.get(k, 0), bool)]
        if bad:
            raise UserError(f"{path}: round {r['round']}: {', '.join(bad)} must be whole numbers")
        rows.append({k: int(r.get(k, 0)) for k in keys})
    return sorted(rows, key=lambda r: r["round"])


def rejections(manifest: dict[str, Any]) -> dict[str, int]:
    """Rejection counts by '<stage>: <reason>': generate-time checks, then the screen's drops."""
    out = {f"generate: {k}": int(v) for k, v in (manifest.get("rejections") or {}).items()}
    out.update({f"screen: {k}": int(v) for k, v in ((manifest.get("screen") or {}).get("dropped") or {}).items()})
    return {k: v for k, v in out.items() if v}


# ------------------------------------------------------------------ plots (matplotlib, no pyplot state)


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


def plot_hist(path: Path, values: Sequence[float], metric: str, zero: int) -> None:
    """Histogram of the debiased Δ of the scored items, titled with the zero-delta share."""
    fig = _figure(7, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    bounded = metric in ("tv", "js")
    hi = 1.0 if bounded else max(max(values), 1e-9)
    ax.hist(values, bins=25, range=(0.0, hi), color="#4878a8", edgecolor="white")
    ax.set_xlabel(f"debiased Δ ({metric}; posterior mean)")
    ax.set_ylabel("items")
    ax.set_title(f"Δ over {len(values)} scored items; zero-Δ {zero / len(values):.0%}", fontsize=11)
    _save(fig, path)


def plot_bars(path: Path, labels: Sequence[str], series: dict[str, Sequence[float]], title: str, xlabel: str,
              limit: tuple[float, float] | None = (0.0, 1.0), fmt: str = "{:.0%}") -> None:
    """Horizontal bars, one group per label and one bar per series, each bar labelled with its value."""
    import numpy as np

    n = len(series)
    fig = _figure(8, 1.2 + 0.32 * len(labels) * max(n, 1))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))
    h = 0.8 / n
    colors = ("#4878a8", "#e0803a", "#5aa05a", "#b05a9a")
    for k, (name, vals) in enumerate(series.items()):
        pos = y - 0.4 + h * (k + 0.5)
        ax.barh(pos, vals, height=h, color=colors[k % len(colors)], label=name)
        for p, v in zip(pos, vals):
            ax.text(v, p, " " + fmt.format(v), va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top, no blank margin
    if limit:
        ax.set_xlim(limit[0], limit[1] * 1.12)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11)
    if n > 1:
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_rounds(path: Path, rounds: list[dict[str, int]]) -> None:
    fig = _figure(7, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    x = [r["round"] for r in rounds]
    for key, color in (("generated", "#4878a8"), ("screened", "#e0803a"), ("kept", "#5aa05a")):
        ax.plot(x, [r[key] for r in rounds], marker="o", color=color, label=key)
    ax.set_xticks(x)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("round")
    ax.set_ylabel("items")
    ax.set_title("Yield per round", fontsize=11)
    ax.legend(fontsize=8)
    _save(fig, path)


# ------------------------------------------------------------------ sections


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_esc(title)}</h2>{body}</section>"


def _plot_or(path: Path, ok: bool, why: str, alt: str) -> str:
    """The plot at `path` (referenced from report/index.html), or why there is none."""
    if not ok:
        return f'<p class="empty">{_esc(why)}</p>'
    return f'<img class="plot" src="{_esc(path.parent.name)}/{_esc(path.name)}" alt="{_esc(alt)}">'


def _family_table(items: list[Item], deltas: dict[str, Any]) -> str:
    fam: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        fam[it.family].append(it)
    cols = ("family", "items", "scored", "zero-Δ", "mean Δ", "debiased Δ", "teacher acc", "student acc")
    rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for f, its in sorted(fam.items()):
        ds = [deltas[i.id] for i in its if i.id in deltas]
        cells = [f, len(its), len(ds)]
        if ds:
            cells += [f"{_mean([d.zero_delta for d in ds]):.0%}", f"{_mean([d.value for d in ds]):.3f}",
                      f"{_mean([_debiased(d) for d in ds]):.3f}",
                      f"{_mean([d.teacher_accuracy for d in ds]):.2f}",
                      f"{_mean([d.student_accuracy for d in ds]):.2f}"]
        else:
            cells += ["–"] * 5
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return f"<table>{''.join(rows)}</table>"


def _debiased(delta: Any) -> float:
    """The Δ the report ranks and plots: the debiased value of the metric scored."""
    return delta.debiased[delta.metric]


def _dist(counts: dict[str, int]) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    return ", ".join(f"{_esc(k)} ×{v}" for k, v in top)


def _card(item: Item, delta: Any, rel_root: str) -> str:
    src = _esc(f"{rel_root}/{item.image.path}")
    q = item.question
    score = ""
    if delta is not None:
        zero = " · zero-Δ" if delta.zero_delta else ""
        score = (f'<div class="d">Δ = {delta.debiased[delta.metric]:.3f} ({_esc(delta.metric)}, debiased) · plug-in '
                 f'{delta.value:.3f} · p_same {delta.p_same:.2f}{zero}</div>'
                 f'<div class="dist">teacher acc {delta.teacher_accuracy:.2f}: {_dist(delta.teacher)}</div>'
                 f'<div class="dist">student acc {delta.student_accuracy:.2f}: {_dist(delta.student)}</div>')
    return (f'<div class="card"><a href="{src}"><img loading="lazy" src="{src}" alt="item {_esc(item.id)}"></a>'
            f'<div class="b"><div class="q">{_esc(q.text)}</div><div class="a">Answer: {_esc(q.answer)}</div>{score}'
            f'<div class="id">{_esc(item.family)} · {_esc(q.family)} · {_esc(item.id)}</div></div></div>')


def _plots(plots: Path, deltas: dict[str, Any], metric: str, rounds: list[dict[str, int]] | None,
           rejected: dict[str, int]) -> None:
    """Draw every plot the run has data for into `plots/`."""
    if deltas:
        ds = list(deltas.values())
        plot_hist(plots / "delta_hist.png", [_debiased(d) for d in ds], metric, sum(d.zero_delta for d in ds))
        for name in ("family", "question_family"):
            groups: dict[str, list[Any]] = defaultdict(list)
            for d in ds:
                groups[getattr(d, name)].append(d)
            keys = sorted(groups)
            plot_bars(plots / f"zero_delta_{name}.png", [f"{k} (n={len(groups[k])})" for k in keys],
                      {"zero-Δ": [_mean([d.zero_delta for d in groups[k]]) for k in keys]},
                      f"Zero-Δ fraction by {name.replace('_', ' ')}",
                      "share of scored items indistinguishable (p_same > level)")
            if name == "family":
                plot_bars(plots / "accuracy_family.png", [f"{k} (n={len(groups[k])})" for k in keys],
                          {who: [_mean([getattr(d, f"{who}_accuracy") for d in groups[k]]) for k in keys]
                           for who in ("teacher", "student")}, "Accuracy by family", "mean accuracy over samples")
    if rounds:
        plot_rounds(plots / "yield_rounds.png", rounds)
    if rejected:
        labels = sorted(rejected, key=lambda k: -rejected[k])
        plot_bars(plots / "rejections.png", labels, {"rejected": [rejected[k] for k in labels]}, "Rejection reasons",
                  "items or candidates rejected", limit=None, fmt="{:g}")


def _header(store: RunStore, manifest: dict[str, Any], items: list[Item], deltas: dict[str, Any],
            meta: dict[str, Any], metric: str) -> str:
    counts = manifest.get("counts", {})
    lines = [f"{len(items)} items, {counts.get('images', '?')} images, seed {manifest.get('seed')}; "
             f"scored {len(deltas)} of {len(items)}"]
    if deltas:
        lines.append(f"metric {metric}, teacher {meta.get('teacher', '?')}, student {meta.get('student', '?')}, "
                     f"k={meta.get('k', '?')}")
    if "screen" in manifest:
        s = manifest["screen"]
        lines.append(f"screened by rule {s.get('rule', 'plugin')}: Δ ≥ {s.get('min_delta')}, "
                     f"teacher accuracy ≥ {s.get('min_teacher_acc')}")
    if (store.root / SPLIT_FILE).exists():
        c = describe(read_split(store.root))
        left = ", ".join(f"{k} {v}" for k, v in c["left_eval"].items())
        lines.append(f"split: train {c['counts']['train']}, eval {c['counts']['eval']} "
                     f"(left eval for sharing with train: {left})")
    lines.append(f"command: {manifest.get('command', '')}")
    return "".join(f"<p>{_esc(line)}</p>" for line in lines)


def write_report(run_dir: Path | str, gallery_limit: int = 200) -> Path:
    """Write `report/index.html` (and its PNG plots under `report/plots/`) inside the run; return its path.

    Sections: per-family summary, Δ histogram, zero-Δ fraction by family and question family,
    teacher and student accuracy by family (from scores/deltas.jsonl), yield per round (rounds.json),
    rejection reasons (manifest), and up to `gallery_limit` items sorted by Δ. An unscored run gets
    every section, those needing Deltas saying so. Images are referenced relatively, nothing is
    fetched from the network. Raises UserError for a path that is not a run or a malformed input file.
    """
    from deltaprompts.exports import load_deltas

    if gallery_limit < 0:
        raise UserError(f"gallery_limit={gallery_limit} must not be negative")
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    items = list(store.iter_items())
    ids = {it.id for it in items}
    deltas = {k: v for k, v in load_deltas(store.root).items() if k in ids}
    meta_path = store.root / "scores" / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    metric = next(iter(deltas.values())).metric if deltas else meta.get("metric", "tv")
    rounds, rejected = read_rounds(store.root), rejections(manifest)
    out_dir = store.root / REPORT_DIR
    plots = out_dir / "plots"
    _plots(plots, deltas, metric, rounds, rejected)

    ranked = sorted(items, key=lambda it: (-_debiased(deltas[it.id]), it.id) if it.id in deltas else (1.0, it.id))
    shown = ranked[:gallery_limit]
    if "screen" in manifest:
        g_title = f"Kept items by Δ (screen kept {len(items)}; showing {len(shown)})"
    elif deltas:
        g_title = f"Items by Δ (not screened: every scored item; showing {len(shown)} of {len(items)})"
    else:
        g_title = f"Items (not scored yet: run order; showing {len(shown)} of {len(items)})"
    simulated = meta.get("simulated") or any(getattr(d, "simulated", False) for d in deltas.values())
    warn = '<div class="warn">SIMULATED MODELS: these figures describe no real model.</div>' if simulated else ""
    rel_root = os.path.relpath(store.root, out_dir)
    scored = bool(deltas)
    no_rounds = f"No {ROUNDS_FILE}: this run was not made by the multi-round pipeline."
    body = [
        _section("Families", _family_table(items, deltas)),
        _section("Δ distribution", _plot_or(plots / "delta_hist.png", scored, NOT_SCORED, "histogram of Δ")),
        _section("Zero-Δ fraction by family",
                 _plot_or(plots / "zero_delta_family.png", scored, NOT_SCORED, "zero-delta fraction by family")),
        _section("Zero-Δ fraction by question family",
                 _plot_or(plots / "zero_delta_question_family.png", scored, NOT_SCORED,
                          "zero-delta fraction by question family")),
        _section("Teacher and student accuracy by family",
                 _plot_or(plots / "accuracy_family.png", scored, NOT_SCORED, "accuracy by family")),
        _section("Yield per round", _plot_or(plots / "yield_rounds.png", bool(rounds), no_rounds,
                                             "generated, screened and kept items per round")),
        _section("Rejection reasons", _plot_or(plots / "rejections.png", bool(rejected),
                                               "No rejections recorded in the manifest.", "rejections by reason")),
        _section(g_title, f'<div class="grid">{"".join(_card(it, deltas.get(it.id), rel_root) for it in shown)}</div>'
                 if shown else '<p class="empty">No items.</p>'),
    ]
    name = _esc(store.root.name)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>deltaprompts report: {name}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>deltaprompts report: {name}</h1>"
            f"{_header(store, manifest, items, deltas, meta, metric)}</header>{warn}{''.join(body)}</body></html>")
    path = out_dir / "index.html"
    atomic_write(path, page)
    return path
