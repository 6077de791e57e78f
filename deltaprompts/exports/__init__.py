"""Export a run, or one side of its split: HF datasets/parquet, LLaVA JSON, chat-messages JSONL, an lmms-eval task.

Formats live in the EXPORTS registry: a function `write(items, deltas, out, options) -> files`
registered with `@export_format(name)` (or an entry point in the `deltaprompts.exports` group).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import deltaprompts
from deltaprompts.errors import UnknownNameError, UserError
from deltaprompts.exports.targets import Target, check_targets, teacher_targets
from deltaprompts.records import Item
from deltaprompts.registry import Registry
from deltaprompts.store import RunStore, ScoreStore, atomic_write

RAW = "raw"
"""The prompt format that leaves the question text as generated (no answer instruction added)."""
MARKER = "export.json"
HF_SPLIT = {"train": "train", "eval": "test", "all": "train"}
"""The Hugging Face split name an export of each side is written under (eval is the test split)."""


@dataclass(frozen=True)
class ExportOptions:
    """What an export format is told besides the items: where the run is and how to write it."""

    run_dir: Path  # the run folder; item image paths are relative to it
    prompt_format: str  # how the question is rendered (`raw`: as generated)
    split: str  # the Hugging Face split name the rows go under (train, test)
    shard_rows: int  # rows per parquet shard
    task: str  # the lmms-eval task name
    final_out: Path  # the folder the export ends up in (`out` is a temporary sibling until it is whole)
    targets: dict[str, list[Target]] = field(default_factory=dict)  # teacher targets by item id (exports/targets.py)


def targets_of(item: Item, options: ExportOptions) -> list[Target]:
    """The training targets of an item: its teacher responses when the export takes them, else its
    answer in the shape the prompt format asks for (UserError for `thinking`: see answer_target)."""
    if options.targets:
        return options.targets[item.id]
    return [Target(text=answer_target(item.question.answer, options.prompt_format), source="answer")]


ExportFn = Callable[[list[Item], dict[str, Any], Path, ExportOptions], list[str]]
"""An export format: write `items` (with their Delta records by item id, {} when unscored) into the
empty folder `out`; return the files written, relative to `out` (images under images/)."""

EXPORTS: Registry[ExportFn] = Registry(
    "export format", entry_point_group="deltaprompts.exports",
    modules=("deltaprompts.exports.hf", "deltaprompts.exports.chat", "deltaprompts.exports.lmms_eval",
             "deltaprompts.exports.promptset", "deltaprompts.exports.vlmevalkit"),
)


def export_format(name: str) -> Callable[[ExportFn], ExportFn]:
    """Decorator: register an export format under `name` (`deltaprompts export --format name`)."""
    return EXPORTS.decorator(name)


class ExportSummary(BaseModel):
    """What `export_run` wrote (also saved as export.json in the output folder)."""

    format: str
    out: str
    source: str
    split: str
    hf_split: str
    items: int
    prompt_format: str
    files: list[str] = Field(description="Files written, relative to `out` (images not listed).")
    images: int = Field(0, description="Images copied (hard-linked) under out/images.")
    image_files: list[str] = Field(default_factory=list, description="The images under out/images, relative to "
                                   "`out`: with `files`, every file the export wrote (export.json aside).")
    targets: str = Field("answer", description="What the assistant turns are: the answer, or teacher responses.")
    trace_rule: str | None = Field(None, description="How teacher responses were picked (teacher targets).")
    examples: int = Field(0, description="Training examples written (several per item with --max-traces > 1).")
    no_correct_trace: int = Field(0, description="Items left out: the teacher was never right on them.")
    rejected_by_review: int = Field(0, description="Items left out: rejected in review (review.jsonl).")
    deltaprompts: str = deltaprompts.__version__


def prompt_text(item: Item, prompt_format: str) -> str:
    """The question as a model is asked it: the generated text (`raw`) or a prompt format's rendering."""
    if prompt_format == RAW:
        return item.question.text
    from deltaprompts.models.prompts import render_prompt

    return render_prompt(item.question, prompt_format)


def answer_target(answer: str, prompt_format: str) -> str:
    """The assistant turn a training example ends with, in the shape its prompt format asks for.

    Raises UserError for `thinking`: the run holds no reasoning to train on, and an empty think
    block would teach a model to skip it.
    """
    if prompt_format == "thinking":
        raise UserError("--prompt-format thinking cannot make training targets: the run has no reasoning traces; "
                        "use plain, multiple_choice, boxed or raw")
    return f"\\boxed{{{answer}}}" if prompt_format == "boxed" else answer


def check_prompt_format(prompt_format: str) -> None:
    """Raise UnknownNameError unless `prompt_format` is `raw`, a built-in format, or a .j2 file."""
    if prompt_format == RAW or prompt_format.endswith(".j2"):
        return
    from deltaprompts.models.prompts import prompt_formats

    if prompt_format not in prompt_formats():
        raise UnknownNameError("prompt format", prompt_format, [RAW, *prompt_formats()])


def row(item: Item, deltas: dict[str, Any], prompt_format: str, target: Target | None = None) -> dict[str, Any]:
    """One dataset row of an item, without its image: the columns every format draws on, and the
    training target with its provenance (model, sample index, score) when there is one."""
    q = item.question
    d = deltas.get(item.id)
    t = target or Target(text=q.answer, source="answer")
    return {
        "id": item.id, "question": prompt_text(item, prompt_format), "answer": q.answer, "answer_type": q.answer_type,
        "options": json.dumps(q.options, sort_keys=True) if q.options else None, "tolerance": q.tolerance,
        "abs_tol": q.abs_tol, "tolerance_source": q.tolerance_source, "family": item.family,
        "question_family": q.question_family, "tags": json.dumps(item.tags, sort_keys=True),
        "delta": float(d.value) if d is not None else None,
        "target": t.text, "target_source": t.source, "target_model": t.model, "target_sample": t.sample,
        "target_score": t.score, "locale": q.locale,
    }


def task_name(run_dir: Path | str) -> str:
    """A default lmms-eval task name from the run folder's name."""
    return "deltaprompts_" + (re.sub(r"[^a-z0-9]+", "_", Path(run_dir).resolve().name.lower()).strip("_") or "run")


def _prepare_out(out: Path, overwrite: bool, source: Path) -> Path:
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise UserError(f"--out {out} is inside the run being exported; choose a folder outside it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise UserError(f"output folder {out} is not empty: pass --overwrite to replace it, or choose another")
        if not (out / MARKER).exists():
            raise UserError(f"--overwrite: {out} has no {MARKER}, so it is not a deltaprompts export; "
                            "refusing to delete it")
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def export_run(
    run_dir: Path | str, fmt: str, out: Path | str, *, split: str = "all", prompt_format: str = "plain",
    overwrite: bool = False, task: str | None = None, shard_rows: int = 5000, targets: str = "answer",
    trace_rule: str = "shortest", max_traces: int = 1, teacher: str | None = None,
) -> ExportSummary:
    """Export the items of `run_dir` (all, or the train/eval side of its split.json) in format `fmt`
    to the folder `out`, which appears whole or not at all; return an ExportSummary.

    Formats (the EXPORTS registry): `hf` (parquet shards in data/ plus `save_to_disk` in arrow/), `parquet` (the shards
    alone), `llava` (llava.json + images/), `messages` (messages.jsonl + images/, the OpenAI/TRL
    chat form), `lmms-eval` (parquet shards + <task>.yaml + utils.py). `prompt_format` renders
    the question (`raw`: as generated). Raises UnknownNameError for an unknown format, split or
    prompt format; UserError for a missing split.json, an empty selection, or a non-empty `out`
    without `overwrite`.

    `targets` makes the assistant turns of training formats: `answer` (the ground truth in the
    prompt format's shape) or `teacher` (the teacher's responses the verifier scored correct, picked
    by `trace_rule`, up to `max_traces` per item; items the teacher never got right are left out
    and counted; `exports/targets.py`); `teacher`, a model spec, must be the model they came from.
    """
    from deltaprompts.review_log import rejected
    from deltaprompts.split import select

    write = EXPORTS.get(fmt)
    check_prompt_format(prompt_format)
    check_targets(targets, trace_rule, max_traces)
    if targets == "teacher" and fmt == "lmms-eval":
        raise UserError("--targets teacher makes training data; lmms-eval exports are for evaluation (answer)")
    if shard_rows < 1:
        raise UserError(f"shard_rows={shard_rows} must be at least 1")
    store = RunStore(run_dir)
    store.read_manifest()
    items = select(list(store.iter_items()), store.root, split)
    refused = rejected(store.root)
    reviewed_out = sum(it.id in refused for it in items)
    items = [it for it in items if it.id not in refused]
    if not items:
        raise UserError(f"nothing to export: the {split!r} side of {run_dir} has no items")
    out = Path(out)
    tmp = _prepare_out(out, overwrite, store.root)
    deltas = ScoreStore(store.root).deltas()
    hf_split = HF_SPLIT[split]
    dropped = 0
    if targets == "teacher":
        chosen, dropped = teacher_targets(items, store.root, trace_rule, max_traces, teacher)
        items = [it for it in items if it.id in chosen]
        if not items:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"no item of {run_dir} has a teacher response the verifier scored correct")
    else:
        chosen = {}  # the answer: each format shapes it (targets_of)
    options = ExportOptions(run_dir=store.root, prompt_format=prompt_format, split=hf_split, shard_rows=shard_rows,
                            task=task or task_name(store.root), final_out=out.resolve(), targets=chosen)
    try:
        files = write(items, deltas, tmp, options)
        summary = ExportSummary(format=fmt, out=str(out), source=str(store.root.resolve()), split=split,
                                hf_split=hf_split, items=len(items), prompt_format=prompt_format,
                                files=sorted(f for f in files if not f.startswith("images/")),
                                images=sum(f.startswith("images/") for f in files),
                                image_files=sorted(f for f in files if f.startswith("images/")), targets=targets,
                                trace_rule=trace_rule if targets == "teacher" else None,
                                examples=sum(len(chosen[it.id]) for it in items) if chosen else len(items),
                                no_correct_trace=dropped, rejected_by_review=reviewed_out)
        atomic_write(tmp / MARKER, summary.model_dump_json(indent=1) + "\n")
        old = out.parent / f".{out.name}.old"
        if out.exists():  # moved aside, not deleted, until the new export is in place
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


