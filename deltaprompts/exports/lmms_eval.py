"""An lmms-eval task folder that stands alone: parquet shards, `<task>.yaml`, `utils.py` and the vendored scorer it imports."""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import deltaprompts
from deltaprompts.errors import UserError
from deltaprompts.exports import RAW, ExportOptions, export_format, prompt_text
from deltaprompts.records import Item
from deltaprompts.store import atomic_write

MAX_NEW_TOKENS = {"plain": 32, "multiple_choice": 32, "raw": 64, "boxed": 1024, "thinking": 2048}
"""Generation budget per prompt format: short-answer formats need few tokens, reasoning ones many."""

SCORING_MODULE = "deltaprompts_scoring"
"""The module written next to utils.py: the verifiers' scoring code, so the task scores without deltaprompts."""
VENDORED = ("numbers", "text", "extract", "anls", "latex", "rules", "scoring")
"""The verifier modules the scorer is made of, each after the ones it imports."""
_ERRORS = {"DeltaError": "class DeltaError(Exception):\n    \"\"\"deltaprompts.errors.DeltaError.\"\"\"\n",
           "UserError": "class UserError(DeltaError):\n    \"\"\"deltaprompts.errors.UserError.\"\"\"\n"}
# rapidfuzz is the one third-party import of the scorer; an lmms-eval environment may lack it
_LEVENSHTEIN = '''try:
    from rapidfuzz.distance import Levenshtein
except ImportError:  # the same normalised distance in pure Python (rapidfuzz: distance / max(len))
    class Levenshtein:
        @staticmethod
        def normalized_distance(a, b):
            if not a and not b:
                return 0.0
            prev = list(range(len(b) + 1))
            for i, ca in enumerate(a, 1):
                cur = [i]
                for j, cb in enumerate(b, 1):
                    cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
                prev = cur
            return prev[-1] / max(len(a), len(b))
'''
_WORKER_IMPORT = ("from deltaprompts.verifiers.latex import _serve_fd", f"from {SCORING_MODULE} import _serve_fd")
KINDS = ("yes_no", "choice")
"""Questions whose instruction differs from the open-answer one (`post_prompt_<kind>` in the task YAML)."""


def templates_dir() -> Path:
    """Where the task YAML and utils templates ship (templates/lmms_eval)."""
    return Path(str(resources.files("deltaprompts.templates"))) / "lmms_eval"


def render(name: str, **context: Any) -> str:
    """Render one template of templates/lmms_eval (sandboxed; a missing variable is an error)."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string((templates_dir() / name).read_text()).render(**context)


def _vendor(name: str, source: str, errors: set[str]) -> str:
    """One verifier module's source with its deltaprompts imports removed (the names live in the
    same flat module), `from __future__` dropped (the header has it) and rapidfuzz made optional."""
    lines = source.splitlines()
    for node in sorted((n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)),
                       key=lambda n: n.lineno, reverse=True):
        pad = " " * node.col_offset
        mod = node.module or ""
        if mod == "__future__":
            new = ""
        elif mod == "rapidfuzz.distance" and node.col_offset == 0:
            new = _LEVENSHTEIN.rstrip("\n")
        elif mod == "deltaprompts.errors":
            errors.update(a.name for a in node.names)
            new = pad + "pass"
        elif mod.startswith("deltaprompts.verifiers"):
            aliases = [f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name]
            new = "\n".join(pad + s for s in aliases) or pad + "pass"
        elif mod.startswith("deltaprompts"):
            raise RuntimeError(f"verifiers/{name}.py imports {mod}, which the vendored scorer does not carry")
        else:
            continue
        lines[node.lineno - 1:node.end_lineno] = new.splitlines() or [""]
    return "\n".join(lines) + "\n"


def scoring_source() -> str:
    """The text of deltaprompts_scoring.py: the verifier modules of VENDORED, concatenated in one
    flat module that needs only the standard library (rapidfuzz and math-verify when present).

    Raises RuntimeError when the verifiers changed in a way the flattening cannot carry (two
    modules defining one name, an import of another deltaprompts module, an unknown error class).
    """
    from deltaprompts import verifiers

    folder = Path(verifiers.__file__).parent
    errors: set[str] = set()
    defined: dict[str, str] = {}
    parts = []
    for name in VENDORED:
        source = (folder / f"{name}.py").read_text()
        for node in ast.parse(source).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else \
                [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
            for n in names:
                if defined.setdefault(n, name) != name:
                    raise RuntimeError(f"verifiers {defined[n]}.py and {name}.py both define {n!r}")
        if name == "latex":
            if source.count(_WORKER_IMPORT[0]) != 1:
                raise RuntimeError("verifiers/latex.py: the Math-Verify worker's import line changed")
            source = source.replace(*_WORKER_IMPORT)
        parts.append(f"# ---- deltaprompts/verifiers/{name}.py " + "-" * 40 + "\n\n" + _vendor(name, source, errors))
    if not errors <= set(_ERRORS):
        raise RuntimeError(f"the verifiers raise {sorted(errors - set(_ERRORS))}, which the vendored scorer lacks")
    head = (f'"""The answer scoring of deltaprompts {deltaprompts.__version__} (deltaprompts.verifiers), vendored so '
            "that this task scores\nwithout deltaprompts installed. Generated from "
            f"{', '.join(f'verifiers/{n}.py' for n in VENDORED)};\ndo not edit: re-export instead. "
            'Entry points: score_answer, score_item_answer."""\n\nfrom __future__ import annotations\n\n')
    return head + "\n".join(_ERRORS.values()) + "\n\n" + "\n\n".join(parts)


def kind(item: Item) -> str | None:
    """Which instruction a question takes: `yes_no`, `choice` (it has options) or None (an open answer);
    the order plain.j2 tests them in."""
    q = item.question
    return "yes_no" if q.answer_type == "yes_no" else "choice" if q.options else None


def instructions(items: list[Item], prompt_format: str) -> dict[str, str]:
    """The answer instruction a prompt format appends to the raw question, by kind of question:
    {"post_prompt": open answers, "post_prompt_yes_no": ..., "post_prompt_choice": ...} (a kind
    is left out when the run has none of it or it equals post_prompt; without open questions,
    post_prompt is the first kind's).

    Raises UserError when the format does not read as "question + one instruction per kind"
    (multiple_choice rewrites the options of a choice question; a .j2 may vary it per item).
    """
    if prompt_format == RAW:
        return {"post_prompt": ""}
    found: dict[str | None, set[str]] = {}
    for it in items:
        raw, asked = it.question.text, prompt_text(it, prompt_format)
        found.setdefault(kind(it), set()).add(asked[len(raw):] if asked.startswith(raw) else "\0")
    for k, suffixes in found.items():
        if len(suffixes) > 1 or "\0" in suffixes:
            what = f"{k} questions" if k else "open questions"
            raise UserError(f"--prompt-format {prompt_format}: for {what} it does not append one instruction to "
                            "the question, so lmms-eval's post_prompt cannot hold it; use plain, boxed, thinking or raw")
    base = next(iter(found[None if None in found else next(k for k in KINDS if k in found)]))
    out = {"post_prompt": base}
    out.update({f"post_prompt_{k}": next(iter(found[k])) for k in KINDS
                if k in found and next(iter(found[k])) != out["post_prompt"]})
    return out


def write_lmms_eval(items: list[Item], run_dir: Path, deltas: dict[str, Any], prompt_format: str, out: Path,
                    split: str, shard_rows: int, task: str) -> list[str]:
    """Write the items as parquet shards under out/data (the `question` column holds the raw
    question; the prompt format's instruction goes to the YAML's lmms_eval_specific_kwargs),
    `<task>.yaml`, `utils.py` and deltaprompts_scoring.py; return the files, relative to `out`.

    Raises UserError for a task name lmms-eval cannot register (letters, digits, _ and -) or a
    prompt format whose instruction is not one suffix per kind of question (`instructions`).
    """
    from deltaprompts.exports.hf import write_card, write_parquet_shards

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", task):
        raise UserError(f"task name {task!r} must start with a letter and hold only letters, digits, _ and -")
    posts = instructions(items, prompt_format)
    files = write_parquet_shards(items, run_dir, deltas, RAW, out, split, shard_rows)
    files.append(write_card(out, split, run_dir, len(items), RAW))
    context = {"task": task, "split": split, "source": run_dir.resolve().as_posix(), "items": len(items),
               "prompt_format": prompt_format, "posts": posts, "scoring": SCORING_MODULE,
               "max_new_tokens": MAX_NEW_TOKENS.get(prompt_format, 512), "version": deltaprompts.__version__}
    atomic_write(out / f"{task}.yaml", render("task.yaml.j2", **context))
    atomic_write(out / "utils.py", render("utils.py.j2", **context))
    atomic_write(out / f"{SCORING_MODULE}.py", scoring_source())
    return [*files, f"{task}.yaml", "utils.py", f"{SCORING_MODULE}.py"]


@export_format("lmms-eval")
def export_lmms_eval(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `lmms-eval` format: parquet shards, `<task>.yaml`, `utils.py` and its scorer (see write_lmms_eval)."""
    return write_lmms_eval(items, options.run_dir, deltas, options.prompt_format, out, options.split,
                           options.shard_rows, options.task)
