"""Prompt formats (templates/prompts/<name>.j2): turn an Item into a model Request."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError as JinjaError
from deltaprompts.sandbox import BoundedSandbox, render_bounded
from deltaprompts.store import confined

from deltaprompts.errors import TemplateError, UnknownNameError, UserError
from deltaprompts.models.base import Message, Request
from deltaprompts.records import Item, Question
from deltaprompts.files import read_text

JINJA = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def formats_dir() -> Path:
    """The folder of the built-in prompt formats."""
    return Path(str(resources.files("deltaprompts.templates"))) / "prompts"


def prompt_formats() -> list[str]:
    """Names of the built-in prompt formats (file names without `.j2`)."""
    return sorted(p.stem for p in formats_dir().glob("*.j2"))


@lru_cache(maxsize=64)
def load_format(fmt: str) -> Template:
    """The template of a format: a built-in name, or the path of a `.j2` file.

    Raises UnknownNameError listing the built-in formats, or TemplateError for a broken file.
    """
    path = Path(fmt) if fmt.endswith(".j2") else formats_dir() / f"{fmt}.j2"
    if not path.is_file():
        if fmt.endswith(".j2"):
            raise UserError(f"prompt format file {fmt} does not exist")
        raise UnknownNameError("prompt format", fmt, prompt_formats())
    try:
        return JINJA.from_string(read_text(path))
    except JinjaError as e:
        raise TemplateError(f"prompt format {path}: {e}") from None


def prompt_context(question: Question) -> dict[str, Any]:
    """What a format may use: `question` (the text as generated), `stem` (the text without the
    appended option list), `options` (letter -> text, or None), `answer_type`, `question_family`.
    The answer is deliberately absent."""
    stem = question.text
    if question.options:
        listed = " Options: " + " ".join(f"({k}) {v}" for k, v in question.options.items())
        if stem.endswith(listed):
            stem = stem[: -len(listed)]
    return {"question": question.text, "stem": stem, "options": question.options,
            "answer_type": question.answer_type, "question_family": question.question_family}


def render_prompt(question: Question, fmt: str = "plain") -> str:
    """The prompt text of `question` in format `fmt`; raises TemplateError naming the format."""
    template = load_format(fmt)
    try:
        text = render_bounded(template, prompt_context(question))
    except JinjaError as e:
        raise TemplateError(f"prompt format {fmt!r}: {e}") from None
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def build_request(item: Item, run_dir: Path | str, fmt: str = "plain") -> Request:
    """One user message with the item's image(s), in order, and its question in format `fmt`.

    The image path is made absolute from `run_dir`; raises UserError if the image is missing.
    """
    images = [confined(run_dir, ref.path, f"item {item.id}: image") for ref in item.images]
    for image in images:
        if not image.is_file():
            raise UserError(f"item {item.id}: image {image} does not exist (run dir {run_dir})")
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": render_prompt(item.question, fmt)}]
    return Request(id=item.id, images=[str(image) for image in images], image_sha256=[r.sha256 for r in item.images],
                   messages=[Message(role="user", content=content)])
