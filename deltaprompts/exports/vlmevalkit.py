"""VLMEvalKit custom-dataset TSVs: one for multiple-choice items (MCQ), one for open answers (VQA), images in base64."""

from __future__ import annotations

import base64
import csv
import io
import json
import string
from pathlib import Path
from typing import Any

from deltaprompts.exports import ExportOptions, export_format
from deltaprompts.models.prompts import prompt_context
from deltaprompts.records import Item
from deltaprompts.store import confined

KINDS = ("MCQ", "VQA")
"""VLMEvalKit builds a custom TSV with option columns A, B as an MCQ dataset, without them as a VQA one."""
COLUMNS = ["index", "image", "question", "answer", "category", "l2-category", "id", "answer_type", "tolerance",
           "abs_tol", "locale"]
"""The documented columns (index, image as base64, question, answer, category), then deltaprompts' own:
l2-category (the question family), the item id and what the verifiers need to score an answer."""


def tsv_name(task: str, kind: str) -> str:
    """The TSV file of one kind: `<task>_MCQ.tsv` or `<task>_VQA.tsv` (its stem is the VLMEvalKit dataset name)."""
    return f"{task}_{kind}.tsv"


def mcq_answer(item: Item) -> str:
    """The correct option's letter (a choice answer may be written as the option's text)."""
    q = item.question
    if q.answer in q.options:
        return q.answer
    return next((k for k, v in q.options.items() if v == q.answer), q.answer)


def image_cell(images: list[bytes]) -> str:
    """The `image` cell: one base64 string, or for a multi-image item a JSON list of them (VLMEvalKit's
    `toliststr` reads a cell that starts with `[` as a list of images)."""
    encoded = [base64.b64encode(image).decode("ascii") for image in images]
    return encoded[0] if len(encoded) == 1 else json.dumps(encoded)


def tsv_row(item: Item, index: int, images: list[bytes]) -> dict[str, Any]:
    """One TSV row: MCQ rows hold the stem (VLMEvalKit lists the A-D columns after it), VQA rows the raw question."""
    q = item.question
    row = {"index": index, "image": image_cell(images),
           "question": prompt_context(q)["stem"] if q.options else q.text,
           "answer": mcq_answer(item) if q.options else q.answer, "category": item.family,
           "l2-category": q.question_family, "id": item.id, "answer_type": q.answer_type,
           "tolerance": "" if q.tolerance is None else q.tolerance, "abs_tol": "" if q.abs_tol is None else q.abs_tol,
           "locale": q.locale or ""}
    row.update(q.options or {})
    return row


def write_tsv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as a tab-separated file with a header (fields quoted only when they hold a tab, quote or newline)."""
    letters = [c for c in string.ascii_uppercase if any(c in r for r in rows)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS[:4] + letters + COLUMNS[4:], delimiter="\t", lineterminator="\n",
                            restval="")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


@export_format("vlmevalkit")
def export_vlmevalkit(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `vlmevalkit` format: `<task>_MCQ.tsv` (items with options: A, B, ... columns, answer a letter)
    and `<task>_VQA.tsv` (the rest), each written only when it has rows; return the files written.

    Raises UserError (from `confined`) for an image path outside the run.
    """
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for it in items:
        kind = "MCQ" if it.question.options else "VQA"
        images = [confined(options.run_dir, ref.path, f"item {it.id}: image").read_bytes() for ref in it.images]
        rows[kind].append(tsv_row(it, len(rows[kind]), images))
    files = []
    for kind in KINDS:
        if rows[kind]:
            write_tsv(out / tsv_name(options.task, kind), rows[kind])
            files.append(tsv_name(options.task, kind))
    return files
