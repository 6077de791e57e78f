"""The deltaprompts command line: a thin layer over the stage functions.

Importing this package registers every command on `app`; `main` is the console-script entry point.
The shared parts live in `app.py`; each command module groups the commands of one kind of work.
"""

from __future__ import annotations

# each module registers its commands on `app` when imported, in the order `--help` lists them
from deltaprompts.cli import data, scoring, export, review, pipeline, distill, lab  # noqa: F401, I001
from deltaprompts.cli.app import app, main

__all__ = ["app", "main"]
