"""An lmms-eval task folder for a held-out set: parquet shards, `<task>.yaml` and the `utils.py` it points into."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

import deltaprompts
from deltaprompts.errors import UserError
from deltaprompts.exports import ExportOptions, export_format
from deltaprompts.records import Item
from deltaprompts.store import atomic_write

MAX_NEW_TOKENS = {"plain": 32, "multiple_choice": 32, "raw": 64, "boxed": 1024, "thinking": 2048}
"""Generation budget per prompt format: short-answer formats need few tokens, reasoning ones many."""


def templates_dir() -> Path:
    """Where the task YAML and utils templates ship (templates/lmms_eval)."""
    return Path(str(resources.files("deltaprompts.templates"))) / "lmms_eval"


def render(name: str, **context: Any) -> str:
    """Render one template of templates/lmms_eval (sandboxed; a missing variable is an error)."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string((templates_dir() / name).read_text()).render(**context)


def write_lmms_eval(items: list[Item], run_dir: Path, deltas: dict[str, Any], prompt_format: str, out: Path,
                    split: str, shard_rows: int, task: str, final_out: Path) -> list[str]:
    """Write the items as parquet shards under out/data, `<task>.yaml` (dataset_path: `final_out`,
    the folder the export ends up in) and `utils.py`; return the files, relative to `out`.

    Raises UserError for a task name lmms-eval cannot register (letters, digits, _ and -).
    """
    from deltaprompts.exports.hf import write_card, write_parquet_shards

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", task):
        raise UserError(f"task name {task!r} must start with a letter and hold only letters, digits, _ and -")
    files = write_parquet_shards(items, run_dir, deltas, prompt_format, out, split, shard_rows)
    files.append(write_card(out, split, run_dir, len(items), prompt_format))
    context = {"task": task, "dataset_path": final_out.as_posix(), "folder": final_out.as_posix(), "split": split,
               "source": run_dir.resolve().as_posix(), "items": len(items), "prompt_format": prompt_format,
               "max_new_tokens": MAX_NEW_TOKENS.get(prompt_format, 512), "version": deltaprompts.__version__}
    atomic_write(out / f"{task}.yaml", render("task.yaml.j2", **context))
    atomic_write(out / "utils.py", render("utils.py.j2", **context))
    return [*files, f"{task}.yaml", "utils.py"]


@export_format("lmms-eval")
def export_lmms_eval(items: list[Item], deltas: dict[str, Any], out: Path, options: ExportOptions) -> list[str]:
    """The `lmms-eval` format: parquet shards, `<task>.yaml` and `utils.py` (see write_lmms_eval)."""
    return write_lmms_eval(items, options.run_dir, deltas, options.prompt_format, out, options.split,
                           options.shard_rows, options.task, options.final_out)
