"""The run root of a pipeline run: its manifest, the kept items per round (shard r), rounds.json."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.pipeline.config import PipelineConfig
from deltaprompts.store import JsonlLog, RunStore, ScoreStore, atomic_write, counts_of, now
from deltaprompts.files import check_out_dir, read_text

ROUNDS_FILE, BANDIT_FILE = "rounds.json", "bandit.json"



def read_rounds(root: Path | str) -> list[dict[str, Any]]:
    """The rows of rounds.json sorted by round (empty before round 0 is done, or in a run not made
    by the pipeline); raises UserError naming the file when it has another shape."""
    path = Path(root) / ROUNDS_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    keys = ("generated", "screened", "kept")
    if not isinstance(data, list) or not all(isinstance(r, dict) and isinstance(r.get("round"), int) for r in data):
        raise UserError(f"{path} must be a list of objects with an integer 'round' and counts {', '.join(keys)}")
    for r in data:
        bad = [k for k in keys if not isinstance(r.get(k, 0), int) or isinstance(r.get(k, 0), bool)]
        if bad:
            raise UserError(f"{path}: round {r['round']}: {', '.join(bad)} must be whole numbers")
    return sorted(data, key=lambda r: r["round"])


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
        manifest = store.read_manifest() if store.is_run() else {}
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
                          "started": now(),
                          "pipeline": {"resume_key": cfg.resume_key()}, "counts": {"items": 0, "images": 0}})
    return root


def _diff(old: Any, new: Any, key: str = "") -> list[str]:
    """The dotted keys where two config dumps differ, as 'key: old -> new'."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{key}.{k}" if key else k)]
    return [] if old == new else [f"{key}: {old!r} -> {new!r}"]


def consolidate(cfg: PipelineConfig, root: Path, r: int, kept_dir: Path | None, row: dict[str, Any]) -> None:
    """Add round r's kept items to the run root (shard r; items kept in an earlier round are left
    out), their Deltas to `scores/`, and the round's row to rounds.json. Idempotent."""
    from deltaprompts.pipeline.cells import write_part

    store = RunStore(root)
    earlier = {it.id for k in range(r) if store.shard_done(k) for it in _shard_items(store, k)}
    items = []
    if kept_dir is not None and (r > 0 or cfg.screen.keep_seed):
        items = [it for it in RunStore(kept_dir).iter_items() if it.id not in earlier]
    if items:
        kept = ScoreStore(kept_dir)  # type: ignore[arg-type]
        deltas = kept.deltas(required=True)
        scores = ScoreStore(root, writer=True)
        scores.append_deltas(deltas[it.id] for it in items)
        if not scores.meta() and kept.meta():
            scores.write_meta(kept.meta())
    write_part(root, r, items, kept_dir or root, {})
    row["added"] = len(items)
    rows = [x for x in read_rounds(root) if x["round"] != r] + [row]
    atomic_write(root / ROUNDS_FILE, json.dumps(sorted(rows, key=lambda x: x["round"]), indent=2) + "\n")


def _shard_items(store: RunStore, k: int) -> list[Any]:
    from deltaprompts.records import Item

    return [Item.model_validate_json(line) for line in read_text(store.shard_path(k)).splitlines() if line.strip()]


def update_manifest(cfg: PipelineConfig, root: Path, status: str, stopped: str | None = None) -> dict[str, Any]:
    """Sum the root's shards and the stages' rejections into its manifest and return it."""
    store = RunStore(root)
    manifest = store.read_manifest()
    rows = read_rounds(root)
    rejections: Counter = Counter()
    dropped: Counter = Counter()
    for row in rows:
        rejections.update(row.get("rejections", {}))
        dropped.update(row.get("dropped", {}))
    meta = ScoreStore(root).meta()
    manifest.update(status=status, counts=counts_of(store.iter_items()), rejections=dict(sorted(rejections.items())),
                    screen={"metric": meta.get("metric", cfg.models.metric), "rule": cfg.screen.rule,
                            "min_delta": cfg.keep_threshold(),
                            "min_teacher_acc": cfg.screen.min_teacher_acc, "dropped": dict(sorted(dropped.items()))})
    manifest["pipeline"].update(rounds_done=[r["round"] for r in rows], stopped=stopped)
    if status == "complete":
        manifest["finished"] = now()
    store.write_manifest(manifest)
    return manifest


def round_row(r: int, gen_manifest: dict[str, Any], report: Any, gen_dir: Path | None, kept_dir: Path | None,
              teacher_log: Path | None) -> dict[str, Any]:
    """The rounds.json row of round r: counts, zero-Δ fraction, per-arm yield, rejections, teacher replies."""
    arms: dict[str, dict[str, int]] = {}
    kept_ids = {it.id for it in RunStore(kept_dir).iter_items()} if kept_dir and kept_dir.exists() else set()
    scored: set[str] = set()
    if gen_dir is not None:
        scored = set(ScoreStore(gen_dir).deltas())
    from_teacher = 0
    for it in RunStore(gen_dir).iter_items() if gen_dir else []:
        c = arms.setdefault(str(it.tags.get("arm", "seed")), {"generated": 0, "screened": 0, "kept": 0})
        c["generated"] += 1
        c["screened"] += it.id in scored
        c["kept"] += it.id in kept_ids
        from_teacher += it.question.source == "teacher"
    teacher: dict[str, Any] = {}
    if teacher_log is not None and teacher_log.exists():
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
