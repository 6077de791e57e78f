"""Conversation exports: LLaVA-style JSON, chat-messages JSONL (OpenAI / TRL form) and ShareGPT JSON (LLaMA-Factory), images copied alongside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deltaprompts.errors import UserError
from deltaprompts.exports import ExportOptions, export_format
from deltaprompts.records import Item
from deltaprompts.store import atomic_write

LLAVA_FILE = "llava.json"
MESSAGES_FILE = "messages.jsonl"
SHAREGPT_FILE = "sharegpt.json"
DATASET_INFO = "dataset_info.json"


def llava_record(item: Item, question: str, target: str) -> dict[str, Any]:
    """One LLaVA conversation: an image token per image, each on its own line, before the question,
    then the answer. `image` is the path (a list of paths for a multi-image item, as LLaVA-NeXT's
    interleaved data has it)."""
    paths = [ref.path for ref in item.images]
    return {"id": item.id, "image": paths[0] if len(paths) == 1 else paths,
            "conversations": [{"from": "human", "value": "<image>\n" * len(paths) + question},
                              {"from": "gpt", "value": target}]}


def messages_record(item: Item, question: str, target: str) -> dict[str, Any]:
    """One chat example: a user turn (image placeholder + text) and an assistant turn, with the image
    path (relative to the JSONL file) in `images`, the form TRL's vision SFT and processors'
    `apply_chat_template` take."""
    parts = [{"type": "image"} for _ in item.images]
    return {"id": item.id,
            "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": question}]},
                         {"role": "assistant", "content": [{"type": "text", "text": target}]}],
            "images": [ref.path for ref in item.images]}


def sharegpt_record(item: Item, question: str, target: str) -> dict[str, Any]:
    """One ShareGPT conversation as LLaMA-Factory reads it: `<image>` where the image goes, the
    image path (relative to the JSON file) in `images`."""
    return {"id": item.id, "conversations": [{"from": "human", "value": "<image>" * len(item.images) + question},
                                             {"from": "gpt", "value": target}],
            "images": [ref.path for ref in item.images]}


def write_messages_parquet(records: list[dict[str, Any]], out: Path, split: str) -> str:
    """The chat examples as `data/<split>-00000-of-00001.parquet`, images embedded through the
    `datasets.Image` feature, so the dataset loads from any working directory and after the folder
    moves (messages.jsonl's paths are relative to the folder); return its path, relative to `out`.

    Raises UserError when `datasets` (the `export` extra) is missing.
    """
    try:
        import datasets
    except ImportError:
        raise UserError("the messages export writes a parquet copy with `datasets`: pip install 'deltaprompts[export]'") \
            from None
    rows = [{"id": r["id"], "messages": r["messages"],
             "images": [{"bytes": (out / p).read_bytes(), "path": Path(p).name} for p in r["images"]]} for r in records]
    listed = getattr(datasets, "List", datasets.Sequence)  # List since datasets 4
    ds = datasets.Dataset.from_list(rows).cast_column("images", listed(datasets.Image()))
    name = f"data/{split}-00000-of-00001.parquet"
    (out / "data").mkdir(exist_ok=True)
    ds.to_parquet(str(out / name))
    return name


RECORDS = {"llava": llava_record, "messages": messages_record, "sharegpt": sharegpt_record}


def write_chat(items: list[Item], options: ExportOptions, out: Path, fmt: str) -> list[str]:
    """Write `llava.json` (fmt `llava`) or `messages.jsonl` (fmt `messages`) and copy (hard-link) each
    image to the same relative path under `out`; return the files written, relative to `out`. One
    example per training target (`exports.targets_of`; several teacher responses of one item get
    ids `<item>#<sample>`).

    Raises UserError for a missing image or a prompt format that cannot make training targets.
    """
    from deltaprompts.exports import prompt_text, targets_of
    from deltaprompts.store import confined, link_or_copy

    run_dir, prompt_format = options.run_dir, options.prompt_format
    records = []
    images = set()
    for it in items:
        question, targets = prompt_text(it, prompt_format), targets_of(it, options)
        for t in targets:
            rec = RECORDS[fmt](it, question, t.text)
            if len(targets) > 1:
                rec["id"] = f"{it.id}#{t.sample}"
            records.append(rec)
        for ref in it.images:
            if ref.path not in images:
                what = f"item {it.id}: image"
                link_or_copy(confined(run_dir, ref.path, what), confined(out, ref.path, what))
                images.add(ref.path)
    if fmt == "messages":
        atomic_write(out / MESSAGES_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return [MESSAGES_FILE, write_messages_parquet(records, out, options.split), *sorted(images)]
    name = LLAVA_FILE if fmt == "llava" else SHAREGPT_FILE
    atomic_write(out / name, "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n")
    if fmt == "llava":
        return [name, *sorted(images)]
    # LLaMA-Factory finds a local dataset through dataset_info.json in its dataset_dir
    info = {options.task: {"file_name": SHAREGPT_FILE, "formatting": "sharegpt",
                           "columns": {"messages": "conversations", "images": "images"}}}
    atomic_write(out / DATASET_INFO, json.dumps(info, indent=2) + "\n")
    return [name, DATASET_INFO, *sorted(images)]


@export_format("llava")
def export_llava(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `llava` format: llava.json and the images."""
    return write_chat(items, options, out, "llava")


@export_format("messages")
def export_messages(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `messages` format: messages.jsonl (OpenAI / TRL chat form), the images, and the same examples
    with the images embedded in data/<split>-00000-of-00001.parquet (loads from anywhere)."""
    return write_chat(items, options, out, "messages")


@export_format("sharegpt")
def export_sharegpt(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `sharegpt` format: sharegpt.json, a LLaMA-Factory dataset_info.json naming it, and the images."""
    return write_chat(items, options, out, "sharegpt")
