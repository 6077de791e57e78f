"""The run root of a pipeline run: its manifest, the kept items per round (shard r), rounds.json."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.pipeline.config import PipelineConfig
from deltaprompts.store import RunStore, atomic_write, confined
from deltaprompts.files import check_out_dir, read_text

ROUNDS_FILE, BANDIT_FILE = "rounds.json", "bandit.json"



def read_rounds(root: Path) -> list[dict[str, Any]]:
    """The rows of rounds.json (empty before round 0 is done)."""
    path = Path(root) / ROUNDS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def prepare_root(cfg: PipelineConfig, resume: bool, overwrite: bool, command: str) -> Path:
    """Create the run root (or check the one there when resuming) and return it. Raises UserError for
    a non-empty folder that is not a pipeline run, a run without resume/overwrite, or a resume whose
    config differs (other than rounds and target), naming the keys that differ."""
    from deltaprompts.generate import versions

    root = Path(cfg.out)
    check_out_dir(root, "config `out`")
    store = RunStore(root)
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other: pick one")
    if root.exists() and any(root.iterdir()):
        manifest = store.read_manifest() if (root / "manifest.json").exists() else {}
        if "pipeline" not in manifest:
            raise UserError(f"{root} is not empty and is not a pipeline run; choose another `out`")
        if overwrite:
            shutil.rmtree(root)
        elif not resume:
            raise UserError(f"{root} holds a pipeline run: pass --resume to continue it, or --overwrite to replace it")
        else:
            diff = _diff(manifest["pipeline"].get("resume_key", {}), cfg.resume_key())
            if diff:
                raise UserError(f"--resume: the run in {root} was made with a different config ({'; '.join(diff)}); "
                                "only rounds and target may change")
            manifest["config"] = json.loads(cfg.model_dump_json())
            manifest["status"] = "running"
            store.write_manifest(manifest)
            return root
    root.mkdir(parents=True, exist_ok=True)
    store.write_manifest({"command": command or "deltaprompts run", "config": json.loads(cfg.model_dump_json()),
                          "seed": cfg.random_seed, "versions": versions(), "status": "running",
                          "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          "pipeline": {"resume_key": cfg.resume_key()}, "counts": {"items": 0, "images": 0}})
    return root


def _diff(old: Any, new: Any, key: str = "") -> list[str]:
    """The dotted keys where two config dumps differ, as 'key: old -> new'."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{key}.{k}" if key else k)]
    return [] if old == new else [f"{key}: {old!r} -> {new!r}"]


def _link(src: Path, dst: Path) -> None:
    from deltaprompts.pipeline.cells import _link as link

    link(src, dst)


def consolidate(cfg: PipelineConfig, root: Path, r: int, kept_dir: Path | None, row: dict[str, Any]) -> None:
    """Add round r's kept items to the run root (shard r; items kept in an earlier round are left
    out), their Deltas to `scores/`, and the round's row to rounds.json. Idempotent."""
    from deltaprompts.divergence.records import Delta, JsonlLog
    from deltaprompts.pipeline.cells import write_part
    from deltaprompts.score import read_deltas

    store = RunStore(root)
    earlier = {it.id for k in range(r) if store.shard_done(k) for it in _shard_items(store, k)}
    items = []
    if kept_dir is not None and (r > 0 or cfg.screen.keep_seed):
        items = [it for it in RunStore(kept_dir).iter_items() if it.id not in earlier]
    if items:
        deltas = read_deltas(kept_dir)  # type: ignore[arg-type]
        for it in items:
            what = f"item {it.id}: image"
            _link(confined(kept_dir, it.image.path, what), confined(root, it.image.path, what))  # type: ignore[arg-type]
        JsonlLog(root / "scores" / "deltas.jsonl", Delta, lambda d: d.item).append(deltas[it.id] for it in items)
        meta = kept_dir / "scores" / "meta.json"  # type: ignore[operator]
        if meta.exists() and not (root / "scores" / "meta.json").exists():
            atomic_write(root / "scores" / "meta.json", meta.read_text())
    write_part(root, r, items, root, {})
    row["added"] = len(items)
    rows = [x for x in read_rounds(root) if x["round"] != r] + [row]
    atomic_write(root / ROUNDS_FILE, json.dumps(sorted(rows, key=lambda x: x["round"]), indent=2) + "\n")


def _shard_items(store: RunStore, k: int) -> list[Any]:
    from deltaprompts.records import Item

    return [Item.model_validate_json(line) for line in read_text(store.shard_path(k)).splitlines() if line.strip()]


def update_manifest(cfg: PipelineConfig, root: Path, status: str, stopped: str | None = None) -> dict[str, Any]:
    """Sum the root's shards and the stages' rejections into its manifest and return it."""
    from deltaprompts.score import read_meta

    store = RunStore(root)
    manifest = store.read_manifest()
    rows = read_rounds(root)
    fams: Counter = Counter()
    qfams: Counter = Counter()
    images: set[str] = set()
    n = 0
    for it in store.iter_items():
        n += 1
        fams[it.family] += 1
        qfams[it.question.family] += 1
        images.add(it.image.path)
    rejections: Counter = Counter()
    dropped: Counter = Counter()
    for row in rows:
        rejections.update(row.get("rejections", {}))
        dropped.update(row.get("dropped", {}))
    meta = read_meta(root)
    manifest.update(status=status, counts={"items": n, "images": len(images), "families": dict(sorted(fams.items())),
                                           "question_families": dict(sorted(qfams.items()))},
                    rejections=dict(sorted(rejections.items())),
                    screen={"metric": meta.get("metric", cfg.models.metric), "rule": cfg.screen.rule,
                            "min_delta": cfg.keep_threshold(),
                            "min_teacher_acc": cfg.screen.min_teacher_acc, "dropped": dict(sorted(dropped.items()))})
    manifest["pipeline"].update(rounds_done=[r["round"] for r in rows], stopped=stopped)
    if status == "complete":
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    store.write_manifest(manifest)
    return manifest


def round_row(r: int, gen_manifest: dict[str, Any], report: Any, gen_dir: Path | None, kept_dir: Path | None,
              teacher_log: Path | None) -> dict[str, Any]:
    """The rounds.json row of round r: counts, zero-Δ fraction, per-arm yield, rejections, teacher replies."""
    arms: dict[str, dict[str, int]] = {}
    kept_ids = {it.id for it in RunStore(kept_dir).iter_items()} if kept_dir and kept_dir.exists() else set()
    scored: set[str] = set()
    if gen_dir is not None and (gen_dir / "scores" / "deltas.jsonl").exists():
        from deltaprompts.score import read_deltas

        scored = set(read_deltas(gen_dir))
    from_teacher = 0
    for it in RunStore(gen_dir).iter_items() if gen_dir else []:
        c = arms.setdefault(str(it.tags.get("arm", "seed")), {"generated": 0, "screened": 0, "kept": 0})
        c["generated"] += 1
        c["screened"] += it.id in scored
        c["kept"] += it.id in kept_ids
        from_teacher += it.question.source == "teacher"
    teacher: dict[str, Any] = {}
    if teacher_log is not None and teacher_log.exists():
        from deltaprompts.divergence.records import JsonlLog
        from deltaprompts.pipeline.synthesize import TeacherRecord

        log = JsonlLog(teacher_log, TeacherRecord, lambda rec: rec.image, repair=False)
        replies = [x for rec in log.records.values() for x in rec.replies]
        reasons = Counter(x["reason"] for x in replies if x["reason"])
        teacher = {"replies": len(replies), "accepted": sum(not x["reason"] for x in replies), "items": from_teacher,
                   "rejected": dict(sorted(reasons.items()))}
    return {"round": r, "generated": int(gen_manifest.get("counts", {}).get("items", 0)),
            "screened": report.scored if report else 0, "kept": report.kept if report else 0,
            "zero_delta_fraction": round(report.zero_delta_fraction, 6) if report else None,
            "arms": arms if r > 0 else {}, "rejections": gen_manifest.get("rejections", {}),
            "dropped": report.dropped if report else {}, "teacher": teacher}
