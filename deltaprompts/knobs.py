"""Typed, documented knobs: the parameters a family exposes, with ranges and difficulty effects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from deltaprompts.errors import KnobError, UnknownNameError
from deltaprompts.records import Scalar

KnobType = Literal["int", "float", "bool", "choice"]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Knob:
    """One parameter of a family.

    `difficulty` says how the knob moves difficulty ("higher is harder", "none", ...), so
    mining and synthesis can steer it; `lo`/`hi` bound int and float knobs (inclusive).
    """

    name: str
    type: KnobType
    default: Scalar
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = field(default_factory=tuple)
    difficulty: str = "none"
    #: False for a knob added after items were made (COMMON_KNOBS): left out of the resolved knobs
    #: (and so of Spec.knobs) while at its default, so items made without it stay byte-identical
    stored_at_default: bool = True

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        if self.type == "bool":
            return "true or false"
        return f"{self.type} in [{self.lo:g}, {self.hi:g}]"

    def parse(self, raw: object) -> Scalar:
        """Return `raw` (a CLI string or a JSON value) as this knob's type; raises KnobError."""
        try:
            value = self._coerce(raw)
        except (TypeError, ValueError):
            raise KnobError(f"knob {self.name!r}: {raw!r} is not valid; allowed: {self.allowed()}") from None
        if self.type == "choice" and value not in self.choices:
            raise KnobError(f"knob {self.name!r}: {raw!r} is not valid; allowed: {self.allowed()}")
        if self.type in ("int", "float") and not (self.lo <= value <= self.hi):  # type: ignore[operator]
            raise KnobError(f"knob {self.name!r}: {raw!r} is out of range; allowed: {self.allowed()}")
        return value

    def _coerce(self, raw: object) -> Scalar:
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(raw)
        if self.type == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(str(raw).strip()) if isinstance(raw, str) else int(raw)  # type: ignore[arg-type]
        if self.type == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)  # type: ignore[arg-type]
        return str(raw)


def resolve_knobs(family: str, knobs: Iterable[Knob], given: Mapping[str, object]) -> dict[str, Scalar]:
    """Return every knob of a family with `given` values parsed and defaults filled in.

    Raises UnknownNameError for a knob the family does not have, KnobError for a bad value.
    """
    by_name = {k.name: k for k in knobs}
    for name in given:
        if name not in by_name:
            raise UnknownNameError("knob", name, by_name, where=f" for family {family}")
    out = {name: (k.parse(given[name]) if name in given else k.default) for name, k in by_name.items()}
    return {name: v for name, v in out.items() if by_name[name].stored_at_default or v != by_name[name].default}


AUGMENT_STYLES = ("none", "photo", "scan", "screen")
COMMON_KNOBS: tuple[Knob, ...] = (
    Knob("augment", "choice", "none", "post-render realism (deltaprompts.augment): photo (perspective, lighting, "
         "shadow, blur, JPEG, paper), scan (skew, noise, binarisation, bleed-through), screen (rescaling, "
         "moire); boxes follow the warp as quads", choices=AUGMENT_STYLES, difficulty="photo and scan are harder",
         stored_at_default=False),
)
"""Knobs every family has (Generator appends them to its own): a post-render stage, not the family's drawing."""


def parse_knob_args(pairs: Iterable[str]) -> dict[str, str]:
    """Parse CLI `name=value` pairs; raises KnobError for a pair without '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise KnobError(f"--knob {pair!r}: expected name=value, e.g. --knob n_categories=6")
        out[name.strip()] = value.strip()
    return out
