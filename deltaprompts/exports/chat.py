"""Conversation exports: LLaVA-style JSON and chat-messages JSONL (OpenAI / TRL form), images copied alongside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deltaprompts.exports import ExportOptions, export_format
from deltaprompts.records import Item
from deltaprompts.store import atomic_write

LLAVA_FILE = "llava.json"
MESSAGES_FILE = "messages.jsonl"


def llava_record(item: Item, question: str, target: str) -> dict[str, Any]:
    """One LLaVA conversation: the image token on its own line before the question, then the answer."""
    return {"id": item.id, "image": item.image.path,
            "conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": target}]}


def messages_record(item: Item, question: str, target: str) -> dict[str, Any]:
    """One chat example: a user turn (image placeholder + text) and an assistant turn, with the image
    path (relative to the JSONL file) in `images`, the form TRL's vision SFT and processors'
    `apply_chat_template` take."""
    return {"id": item.id,
            "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
                         {"role": "assistant", "content": [{"type": "text", "text": target}]}],
            "images": [item.image.path]}


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
            rec = llava_record(it, question, t.text) if fmt == "llava" else messages_record(it, question, t.text)
            if len(targets) > 1:
                rec["id"] = f"{it.id}#{t.sample}"
            records.append(rec)
        if it.image.path not in images:
            what = f"item {it.id}: image"
            link_or_copy(confined(run_dir, it.image.path, what), confined(out, it.image.path, what))
            images.add(it.image.path)
    if fmt == "llava":
        atomic_write(out / LLAVA_FILE, "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n")
        name = LLAVA_FILE
    else:
        atomic_write(out / MESSAGES_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        name = MESSAGES_FILE
    return [name, *sorted(images)]


@export_format("llava")
def export_llava(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `llava` format: llava.json and the images."""
    return write_chat(items, options, out, "llava")


@export_format("messages")
def export_messages(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `messages` format: messages.jsonl (OpenAI / TRL chat form) and the images."""
    return write_chat(items, options, out, "messages")
