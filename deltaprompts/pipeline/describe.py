"""The teacher's prompts (templates/prompts/teacher/*.j2) and its one-paragraph description of a failure pattern."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaError

from deltaprompts.errors import TemplateError
from deltaprompts.sandbox import BoundedSandbox, render_bounded
from deltaprompts.store import confined
from deltaprompts.models.base import Message, Request, Sampling
from deltaprompts.rng import derive_seed
from deltaprompts.files import read_text

JINJA = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
MAX_DESCRIPTION = 1200


@lru_cache(maxsize=8)
def teacher_template(name: str) -> Template:
    """`templates/prompts/teacher/NAME.j2`, compiled; raises TemplateError naming the file."""
    path = Path(str(resources.files("deltaprompts.templates"))) / "prompts" / "teacher" / f"{name}.j2"
    try:
        return JINJA.from_string(read_text(path))
    except (OSError, JinjaError) as e:
        raise TemplateError(f"teacher prompt {path}: {e}") from None


def render(name: str, **context: Any) -> str:
    """A teacher prompt with `context`; raises TemplateError naming the template and the problem."""
    try:
        text = render_bounded(teacher_template(name), context)
    except JinjaError as e:
        raise TemplateError(f"teacher prompt {name}.j2: {e}") from None
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def user_request(rid: str, images: Sequence[tuple[str, str]], text: str) -> Request:
    """One user message: the images ((absolute path, sha256) pairs) then the text."""
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": text}]
    return Request(id=rid, images=[p for p, _ in images], image_sha256=[s for _, s in images],
                   messages=[Message(role="user", content=content)])


def _answers(counts: dict[str, int]) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{k} (x{v})" for k, v in top) or "nothing"


def describe_patterns(report: Any, items: dict[str, Any], deltas: dict[str, Any], run_dir: Path, teacher: Any,
                      cfg: Any, seed: int = 0) -> None:
    """Ask the teacher for one paragraph about each of the top `cfg.describe_patterns` patterns of
    `report`, shown `cfg.describe_examples` example items (images, questions, both models' answers);
    the paragraphs go to `Pattern.description`. Model errors pass through as DeltaError."""
    requests, targets = [], []
    for p in report.patterns[:cfg.describe_patterns]:
        examples = [items[i] for i in p.examples[:cfg.describe_examples] if i in items]
        if not examples:
            continue
        shown = [{"question": it.question.text, "answer": it.question.answer,
                  "teacher": _answers(deltas[it.id].teacher), "student": _answers(deltas[it.id].student)}
                 for it in examples]
        text = render("pattern", summary=p.summary, examples=shown)
        images = [(str(confined(run_dir, it.image.path, f"item {it.id}: image")), it.image.sha256) for it in examples]
        requests.append(user_request(f"pattern:{p.id}", images, text))
        targets.append(p)
    if not requests:
        return
    sampling = Sampling(temperature=0.0, max_new_tokens=200, seed=derive_seed(seed, "describe") % 2**31)
    results = teacher.sample(requests, sampling, [[0] for _ in requests])
    for p, comps in zip(targets, results):
        text = " ".join(comps[0].text.split()) if comps else ""
        p.description = text[:MAX_DESCRIPTION] or None
