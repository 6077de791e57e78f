"""`toy:teacher` / `toy:student`: the tiny trained VLM pair shipped inside the package (see `deltaprompts lab`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deltaprompts.errors import UserError
from deltaprompts.models.base import Backend
from deltaprompts.models.specs import scheme

TOY_MODELS = ("teacher", "student")


def toy_model_dir(name: str) -> Path:
    """The folder of a shipped toy model; raises UserError naming the shipped ones."""
    if name not in TOY_MODELS:
        raise UserError(f"unknown toy model {name!r}; shipped: {', '.join(TOY_MODELS)}")
    path = Path(str(resources.files("deltaprompts.lab") / "models" / name))
    if not (path / "config.json").exists():
        raise UserError(f"toy model {name!r} is not built in this installation ({path}); "
                        "run `deltaprompts lab build` to make it")
    return path


@scheme("toy", "toy:teacher or toy:student[?hf options]")
def _toy(rest: str) -> Backend:
    from deltaprompts.models.specs import load_backend

    name, _, query = rest.partition("?")
    return load_backend(f"hf:{toy_model_dir(name)}" + (f"?{query}" if query else ""))
