"""Ops over documents whose entities are of several kinds (table cells, form fields, checkboxes, chart
marks): a filter that skips entities without the attribute, a check that subtotals add up, a field
named by a slot, and the single element of a list."""

from __future__ import annotations

import math

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _norm, _num, op
from deltaprompts.records import Entity, Facts, Scalar


@op("where", ("set",), "set", {"attr": "str", "value": "scalar"})
def _where(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities that have attr and whose attr equals value (strings case-insensitively); others are skipped."""
    want = _norm(p["value"])
    return [e for e in s if p["attr"] in e.attrs and _norm(e.attrs[p["attr"]]) == want]


@op("adds_up", ("set",), "bool", {"by": "str"})
def _adds_up(facts: Facts, p: dict, s: list[Entity]) -> bool:
    """Whether, in each group of the set by the attrs named in `by` (comma-separated), the one entity of
    kind "subtotal" equals the sum of the entities of kind "item" (a statement's section, per column)."""
    keys = [k.strip() for k in p["by"].split(",") if k.strip()]
    groups: dict[tuple, dict[str, list[float]]] = {}
    for e in s:
        kind = e.attrs.get("kind")
        if kind not in ("item", "subtotal"):
            continue
        g = tuple(e.attrs.get(k) for k in keys)
        groups.setdefault(g, {"item": [], "subtotal": []})[str(kind)].append(_num(e, "value"))
    if not groups:
        raise ProgramError("empty", "no item or subtotal entities to check")
    for g, parts in groups.items():
        if len(parts["subtotal"]) != 1 or not parts["item"]:
            raise ProgramError("degenerate", f"group {g} needs one subtotal and its items, got {parts}")
    return all(math.isclose(math.fsum(v["item"]), v["subtotal"][0], abs_tol=1e-9) for v in groups.values())


@op("field_of", (), "value", {"prefix": "str", "key": "scalar"})
def _field_of(facts: Facts, p: dict) -> Scalar:
    """The field named prefix + key (e.g. prefix footnote_ and key b: the text of footnote b)."""
    name = f"{p['prefix']}{p['key']}"
    v = facts.fields.get(name)
    if v is None:
        raise ProgramError("missing_field", f"no field {name!r}")
    return v


@op("only", ("list",), "value")
def _only(facts: Facts, p: dict, xs: list[Scalar]) -> Scalar:
    """The single element of a list; an error when it has none or several."""
    if len(xs) != 1:
        raise ProgramError("empty" if not xs else "not_unique", f"expected one value, got {len(xs)}")
    return xs[0]
