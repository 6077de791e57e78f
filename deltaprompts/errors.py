"""One exception family for deltaprompts; the CLI maps each class to an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic stays out of this leaf module's imports
    from pydantic import ValidationError


class DeltaError(Exception):
    """Base class of every error deltaprompts raises on purpose. Exit code 1."""

    exit_code = 1


class UserError(DeltaError):
    """The user asked for something invalid (bad name, knob, config, path). Exit code 2."""

    exit_code = 2


class UnknownNameError(UserError, KeyError):
    """A name looked up in a registry does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str], where: str = ""):
        self.kind, self.name, self.known = kind, name, sorted(known)
        hint = difflib.get_close_matches(name, self.known, n=1)
        msg = f"unknown {kind} {name!r}{where}"
        msg += f"; did you mean {hint[0]!r}?" if hint else "."
        msg += f" Allowed: {', '.join(self.known) or '(none registered)'}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class KnobError(UserError, ValueError):
    """A knob value is outside its allowed range or of the wrong type."""


class TemplateError(UserError):
    """A template file is malformed or refers to an unknown op, slot or attribute."""


class ProgramError(DeltaError):
    """A question program cannot be executed, or its answer is ill-posed.

    `reason` is a short machine-readable tag (e.g. ``tie``, ``empty``, ``not_unique``)
    that rejection counters aggregate on.
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class RenderError(DeltaError):
    """A renderer failed or is unavailable (e.g. no Chromium for plotly export)."""


class LayoutError(RenderError):
    """This one Spec cannot be drawn legibly (texts leave no room for the plot, an object hidden):
    generate draws another Spec in its place (counted as `render_error`), where any other
    RenderError stops the run."""


def validation_message(e: ValidationError, *, flags: bool = False, first: bool = False) -> str:
    """A pydantic ValidationError as one line: `name=value: rule` per error, joined by '; '.

    `name` is the dotted field path, or with `flags` the command-line option it came from
    (`eval_fraction` -> `--eval-fraction`); `first` keeps only the first error; a long value is
    cut (it may be a model's output). The one formatter of validation errors for users.
    """
    parts = []
    for x in e.errors()[:1] if first else e.errors():
        loc = [str(p) for p in x.get("loc", ()) if not str(p).startswith("function-")]
        if flags:
            name = "--" + loc[0].replace("_", "-") if loc else "option"
        else:
            name = ".".join(loc) or "value"
        rule = x["msg"].removeprefix("Value error, ")
        value = repr(x.get("input"))
        parts.append(f"{name}={value if len(value) <= 80 else value[:77] + '...'}: {rule}")
    return "; ".join(parts)
