"""A static, offline HTML report of a run: Δ and accuracy plots, yield per round, rejections, kept items by Δ."""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from deltaprompts.divergence.records import ScreenReport
from deltaprompts.errors import UserError
from deltaprompts.records import Item
from deltaprompts.split import SPLIT_FILE, describe, read_split
from deltaprompts.store import RunStore, ScoreStore, atomic_write

REPORT_DIR = "report"
NOT_SCORED = "Not scored yet: run `deltaprompts score` on this run to see this section."

HTML_DIR = "html"
"""The folder of deltaprompts.templates holding the jinja2 page templates (gallery and report)."""


@functools.lru_cache(maxsize=1)
def _html_env() -> Environment:
    folder = Path(str(resources.files("deltaprompts.templates"))) / HTML_DIR
    return Environment(loader=FileSystemLoader(folder), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def render_page(template: str, **context: Any) -> str:
    """Render templates/html/`template` with plain data; autoescape is on, so every value is text, never markup."""
    return _html_env().get_template(template).render(**context)


# ------------------------------------------------------------------ reading the run


def yield_rows(run_dir: Path) -> list[dict[str, int]] | None:
    """The yield per round ({round, generated, screened, kept}) from the pipeline's rounds.json, or
    None if the run has no rounds."""
    from deltaprompts.pipeline.runroot import read_rounds

    keys = ("round", "generated", "screened", "kept")
    return [{k: int(r.get(k, 0)) for k in keys} for r in read_rounds(run_dir)] or None


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


def _plot(path: Path, title: str, ok: bool, why: str, alt: str) -> dict[str, str | None]:
    """A plot section: the plot at `path` (referenced from report/index.html), or why there is none."""
    return {"title": title, "src": f"{path.parent.name}/{path.name}" if ok else None, "why": why, "alt": alt}


def _family_table(items: list[Item], deltas: dict[str, Any]) -> dict[str, list]:
    fam: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        fam[it.family].append(it)
    rows = []
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
        rows.append(cells)
    return {"columns": ["family", "items", "scored", "zero-Δ", "mean Δ", "debiased Δ", "teacher acc", "student acc"],
            "rows": rows}


def _debiased(delta: Any) -> float:
    """The Δ the report ranks and plots: the debiased value of the metric scored."""
    return delta.debiased[delta.metric]


def _dist(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The four most frequent answers with their counts."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]


def _card(item: Item, delta: Any, rel_root: str) -> dict[str, Any]:
    q = item.question
    score = None
    if delta is not None:
        score = {"value": _debiased(delta), "metric": delta.metric, "plugin": delta.value, "p_same": delta.p_same,
                 "zero": delta.zero_delta, "teacher_acc": delta.teacher_accuracy,
                 "student_acc": delta.student_accuracy, "teacher": _dist(delta.teacher),
                 "student": _dist(delta.student)}
    return {"src": f"{rel_root}/{item.image.path}", "more": [f"{rel_root}/{ref.path}" for ref in item.more_images],
            "id": item.id, "text": q.text, "answer": q.answer,
            "family": item.family, "question_family": q.question_family, "delta": score}


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
            meta: dict[str, Any], metric: str) -> list[str]:
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
    return lines


def transfer_table(run_dir: Path) -> dict[str, Any] | None:
    """The kept set under the pair it was screened with beside another pair (transfer.json, written by
    `audit RUN --teacher T2 --student S2`), or None when the run has none."""
    import json

    path = run_dir / "transfer.json"
    if not path.exists():
        return None
    try:
        t = json.loads(path.read_text())
        pct = lambda x, ci: f"{x:.1%} ({ci[0]:.1%}-{ci[1]:.1%})"  # noqa: E731
        rows = [["teacher", t["original"]["teacher"], t["teacher"]],
                ["student", t["original"]["student"], t["student"]],
                [f"still kept ({t['rule']}, Δ >= {t['min_delta']:g}; {t['level']:.0%} Wilson)",
                 f"{t['items']} of {t['items']} (the screen)", f"{t['still_kept']} of {t['items']}: "
                 f"{pct(t['still_kept_fraction'], t['wilson'])}"],
                ["zero-delta", "0 (dropped by the screen)",
                 f"{t['zero_delta']}: {pct(t['zero_delta_fraction'], t['zero_delta_wilson'])}"],
                ["mean debiased Δ", f"{t['mean_debiased']['original']:.3f}", f"{t['mean_debiased']['new']:.3f}"],
                ["teacher / student accuracy", f"{t['teacher_accuracy']['original']:.2f} / "
                 f"{t['student_accuracy']['original']:.2f}", f"{t['teacher_accuracy']['new']:.2f} / "
                 f"{t['student_accuracy']['new']:.2f}"]]
        rows += [[f"still kept: {r['group']}", str(r["items"]), pct(r["fraction"], r["ci"])] for r in t["families"]]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is malformed ({e}); run `deltaprompts audit` with the other pair again") from None
    return {"columns": ["", "screened with", "other pair"], "rows": rows, "notes": t.get("notes", [])}


def write_report(run_dir: Path | str, gallery_limit: int = 200) -> Path:
    """Write `report/index.html` (and its PNG plots under `report/plots/`) inside the run; return its path.

    Sections: per-family summary, Δ histogram, zero-Δ fraction by family and question family,
    teacher and student accuracy by family (from scores/deltas.jsonl), yield per round (rounds.json),
    rejection reasons (manifest), transfer to another pair (transfer.json), and up to `gallery_limit` items sorted by Δ. An unscored run gets
    every section, those needing Deltas saying so. Images are referenced relatively, nothing is
    fetched from the network. Raises UserError for a path that is not a run or a malformed input file.
    """

    if gallery_limit < 0:
        raise UserError(f"gallery_limit={gallery_limit} must not be negative")
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    items = list(store.iter_items())
    ids = {it.id for it in items}
    scores = ScoreStore(store.root)
    deltas = {k: v for k, v in scores.deltas().items() if k in ids}
    meta = scores.meta()
    metric = next(iter(deltas.values())).metric if deltas else meta.get("metric", "tv")
    rounds, rejected = yield_rows(store.root), rejections(manifest)
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
    rel_root = os.path.relpath(store.root, out_dir)
    scored = bool(deltas)
    no_rounds = "No rounds.json: this run was not made by the multi-round pipeline."
    sections = [
        _plot(plots / "delta_hist.png", "Δ distribution", scored, NOT_SCORED, "histogram of Δ"),
        _plot(plots / "zero_delta_family.png", "Zero-Δ fraction by family", scored, NOT_SCORED,
              "zero-delta fraction by family"),
        _plot(plots / "zero_delta_question_family.png", "Zero-Δ fraction by question family", scored, NOT_SCORED,
              "zero-delta fraction by question family"),
        _plot(plots / "accuracy_family.png", "Teacher and student accuracy by family", scored, NOT_SCORED,
              "accuracy by family"),
        _plot(plots / "yield_rounds.png", "Yield per round", bool(rounds), no_rounds,
              "generated, screened and kept items per round"),
        _plot(plots / "rejections.png", "Rejection reasons", bool(rejected), "No rejections recorded in the manifest.",
              "rejections by reason"),
    ]
    page = render_page(
        "report.html.j2", name=store.root.name, header=_header(store, manifest, items, deltas, meta, metric),
        simulated=bool(simulated), table=_family_table(items, deltas), plots=sections,
        transfer=transfer_table(store.root),
        gallery={"title": g_title, "cards": [_card(it, deltas.get(it.id), rel_root) for it in shown]})
    path = out_dir / "index.html"
    atomic_write(path, page)
    return path


def delta_histograms(path: Path, values: dict[str, list[float]], report: ScreenReport) -> None:
    """One Δ histogram per family, with the keep threshold marked (matplotlib, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fams = sorted(values)
    fig = Figure(figsize=(4.2 * max(len(fams), 1), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    bounded = report.metric in ("tv", "js")
    for n, fam in enumerate(fams, 1):
        ax = fig.add_subplot(1, len(fams), n)
        vals = values[fam]
        rng = (0.0, 1.0) if bounded else (min(min(vals), 0.0), max(max(vals), report.min_delta) + 1e-9)
        ax.hist(vals, bins=20, range=rng, color="#4878a8", edgecolor="white")
        ax.axvline(report.min_delta, color="#c0392b", linestyle="--", label=f"keep >= {report.min_delta:g}")
        ax.set_title(f"{fam} (n={len(vals)})", fontsize=10)
        ax.set_xlabel(f"Δ ({report.metric}, {'plug-in' if report.rule == 'plugin' else 'debiased'})")
        ax.set_ylabel("items")
        ax.legend(fontsize=8)
    sim = " — SIMULATED MODELS" if report.simulated else ""
    fig.suptitle(f"Δ per family{sim}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})
