"""The CLI's shared parts: the typer apps, the consoles and the one error handler (imports no command module)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from deltaprompts.errors import DeltaError, validation_message

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Synthetic visual reasoning data with computed ground truth, screened by answer divergence.")
lab = typer.Typer(no_args_is_help=True, help="The toy lab: a tiny trained teacher-student VLM pair.")
app.add_typer(lab, name="lab")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise with `code`."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a DeltaError as one line and exit with its code; never a traceback for a user mistake."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeltaError as e:
            raise fail(str(e), e.exit_code) from None
        except ValidationError as e:  # an option combination a config model refuses
            raise fail(f"invalid option: {validation_message(e)}", 2) from None
        except UnicodeDecodeError as e:  # a text read not yet routed through deltaprompts.files.read_text
            raise fail(f"an input file is not UTF-8 text ({e}); only UTF-8 text files are accepted", 2) from None
        except OSError as e:  # a path the user gave that cannot be read or written (a file, not a folder, ...)
            if e.filename is None:
                raise
            where = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
            raise fail(f"{where}: {e.strerror or type(e).__name__}", 2) from None

    return wrapper


def say_simulated(simulated: bool) -> None:
    """The banner every model-facing command prints when its figures come from sim: backends."""
    if simulated:
        out.print("[bold yellow]SIMULATED MODELS[/] (sim: backends): these figures describe no real model.")


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def main() -> None:
    """Console-script entry point (the commands register when deltaprompts.cli is imported)."""
    import warnings

    from deltaprompts.procsetup import skip_pymupdf_layout

    skip_pymupdf_layout()  # this process is ours: no layout analyser loaded at start-up
    warnings.showwarning = _one_line_warning  # a warning for the user is one line, not a source excerpt
    app()
