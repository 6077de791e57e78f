"""Ops for set diagrams and symbol grids: membership of a named set (Venn regions and items), the odd one
out of a grid, and the element that continues a repeating sequence. Each refuses (ProgramError
"ambiguous") when the picture does not single out one answer."""

from __future__ import annotations

from deltaprompts.errors import ProgramError
from deltaprompts.programs import _attr, _norm, op
from deltaprompts.records import Entity, Facts, Scalar


def _letter(facts: Facts, name: Scalar) -> str:
    """The letter of the set entity (kind set) named `name`."""
    found = [e for e in facts.entities if e.attrs.get("kind") == "set" and _norm(e.attrs.get("set_name")) == _norm(name)]
    if len(found) != 1:
        raise ProgramError("empty" if not found else "not_unique", f"{len(found)} sets are named {name!r}")
    return str(found[0].attrs["letter"])


@op("in_set", ("set",), "set", {"name": "scalar"})
def _in_set(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities (Venn regions or items) inside the set named `name`."""
    key = f"in_{_letter(facts, p['name'])}"
    return [e for e in s if _attr(e, key) is True]


@op("outside_set", ("set",), "set", {"name": "scalar"})
def _outside_set(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities (Venn regions or items) not inside the set named `name`."""
    key = f"in_{_letter(facts, p['name'])}"
    return [e for e in s if _attr(e, key) is False]


def _split(spec: object) -> list[str]:
    attrs = [a.strip() for a in str(spec).split("|") if a.strip()]
    if not attrs:
        raise ProgramError("bad_param", f"expected attribute names separated by '|', got {spec!r}")
    return attrs


def _odd(s: list[Entity], attrs: list[str]) -> tuple[Entity, list[str]]:
    """The one entity whose attrs differ from all the others, which all agree; and the attrs it differs in."""
    if len(s) < 3:
        raise ProgramError("empty", f"an odd one out needs at least 3 entities, got {len(s)}")
    sig = [tuple(_norm(_attr(e, a)) for a in attrs) for e in s]
    common = max(set(sig), key=sig.count)
    odd = [i for i, t in enumerate(sig) if t != common]
    if len(odd) != 1 or sig.count(common) != len(s) - 1:
        raise ProgramError("ambiguous", f"{len(odd)} entities differ from the majority; no single odd one out")
    i = odd[0]
    return s[i], [a for a, x, y in zip(attrs, sig[i], common) if x != y]


@op("odd_one", ("set",), "entity", {"attrs": "str"})
def _odd_one(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The single entity that differs (in any of the '|'-separated attrs) from all the others, which agree."""
    return _odd(s, _split(p["attrs"]))[0]


@op("odd_attr", ("set",), "string", {"attrs": "str"})
def _odd_attr(facts: Facts, p: dict, s: list[Entity]) -> str:
    """The attribute (of the '|'-separated attrs) in which the odd one out differs; ambiguous if several."""
    _, diff = _odd(s, _split(p["attrs"]))
    if len(diff) != 1:
        raise ProgramError("ambiguous", f"the odd one out differs in {diff}")
    return diff[0]


@op("continue_pattern", ("set", "set"), "entity", {"order": "str", "attrs": "str"})
def _continue_pattern(facts: Facts, p: dict, seq: list[Entity], options: list[Entity]) -> Entity:
    """The option matching the next element of a repeating sequence (ordered by `order`, compared on the
    '|'-separated attrs): the shortest period seen at least twice in full decides it; exactly one option
    may match."""
    attrs = _split(p["attrs"])
    ordered = sorted(seq, key=lambda e: float(_attr(e, p["order"])))  # type: ignore[arg-type]
    sig = [tuple(_norm(_attr(e, a)) for a in attrs) for e in ordered]
    n = len(sig)
    period = next((k for k in range(1, n // 2 + 1) if all(sig[i] == sig[i - k] for i in range(k, n))), None)
    if period is None:
        raise ProgramError("ambiguous", f"no period repeats at least twice in {n} elements")
    want = sig[n - period]
    match = [o for o in options if tuple(_norm(_attr(o, a)) for a in attrs) == want]
    if len(match) != 1:
        raise ProgramError("empty" if not match else "not_unique", f"{len(match)} options continue the pattern")
    return match[0]
