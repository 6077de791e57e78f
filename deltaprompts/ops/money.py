"""Money ops for documents: a quantity times a unit price (meter usage x tariff), from printed numbers."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import op
from deltaprompts.records import Facts


@op("multiply", ("number", "number"), "number", gradient=lambda xs: [xs[1], xs[0]], keeps_decimals=False)
def _multiply(facts: Facts, p: dict, a: object, b: object) -> float:
    """a * b: a quantity times a price per unit (usage x rate). An error ("type") for a non-number."""
    for x in (a, b):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ProgramError("type", f"multiply needs numbers, got {x!r}")
    return float(a) * float(b)  # type: ignore[arg-type]
