"""Question programs: typed ops registered by decorator, a compact text syntax, and an executor over Facts.

A program is a tree of `Node`s (JSON on disk). Templates may write it in a compact form that
parses to the same tree, e.g. ``query[attr=value](unique(filter[attr=category, value=$cat](scene())))``.
Parsing never evaluates anything: a model-written program is data, checked against the op schema.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deltaprompts.errors import ProgramError
from deltaprompts.records import Entity, Facts, Scalar
from deltaprompts.registry import Registry

# Value types flowing between ops. "value" is any scalar (str, number, bool).
TYPES = ("set", "entity", "number", "string", "bool", "list", "value")


#: A number op's partial derivatives: given its input numbers (a reduce op: the list's elements),
#: d output / d input for each. deltaprompts.tolerances carries reading errors through them.
Gradient = Callable[[list[float]], list[float]]


@dataclass(frozen=True)
class Op:
    """An op's schema and implementation: `fn(facts, params, *inputs)`.

    A number op also gives its partial derivatives (`gradient`, through which the reading errors
    of its inputs carry to its result) and says whether its result is exact at its inputs'
    decimals (`keeps_decimals`: sums and differences are; a mean or a ratio needs rounding, so a
    question asking for one states its precision)."""

    name: str
    inputs: tuple[str, ...]
    output: str
    params: Mapping[str, str]  # param name -> "str" | "number" | "scalar" | "int"
    fn: Callable[..., Any]
    doc: str
    choices: Mapping[str, tuple[str, ...]]
    gradient: Gradient | None = None
    keeps_decimals: bool = True


OPS: Registry[Op] = Registry("op", modules=("deltaprompts.ops",))  # the core ops below, the rest in deltaprompts/ops/


def op(name: str, inputs: tuple[str, ...], output: str, params: Mapping[str, str] | None = None,
       choices: Mapping[str, tuple[str, ...]] | None = None, gradient: Gradient | None = None,
       keeps_decimals: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as op `name` with typed inputs, output and params; an op
    whose output is a number must give its `gradient`. Raises ValueError when it does not."""
    if output == "number" and gradient is None:
        raise ValueError(f"op {name!r} outputs a number: it needs a gradient (d output / d input numbers)")

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        OPS.register(name, Op(name, inputs, output, dict(params or {}), fn, doc, dict(choices or {}), gradient,
                              keeps_decimals))
        return fn

    return wrap


# ---------------------------------------------------------------- helpers


def _norm(v: Scalar) -> Scalar:
    return v.casefold().strip() if isinstance(v, str) else v


def _attr(e: Entity, attr: str) -> Scalar:
    if attr not in e.attrs:
        raise ProgramError("missing_attr", f"entity {e.id} has no attribute {attr!r} (has {sorted(e.attrs)})")
    return e.attrs[attr]


def _num(e: Entity, attr: str) -> float:
    v = _attr(e, attr)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProgramError("type", f"attribute {attr!r} of {e.id} is not a number: {v!r}")
    return float(v)


def _extreme(entities: list[Entity], attr: str, sign: int, rank: int = 1) -> Entity:
    if len(entities) < rank:
        raise ProgramError("empty", f"need at least {rank} entities, got {len(entities)}")
    vals = sorted(((sign * _num(e, attr), e) for e in entities), key=lambda t: t[0], reverse=True)
    target = vals[rank - 1][0]
    near = [e for v, e in vals if math.isclose(v, target, rel_tol=1e-9, abs_tol=1e-12)]
    if len(near) > 1:
        raise ProgramError("tie", f"{len(near)} entities tie on {attr}={sign * target:g}")
    return vals[rank - 1][1]


# ---------------------------------------------------------------- sets


@op("scene", (), "set")
def _scene(facts: Facts, p: dict) -> list[Entity]:
    """All entities of the render (bars, points, wedges, line items, shapes)."""
    return list(facts.entities)


@op("filter", ("set",), "set", {"attr": "str", "value": "scalar"})
def _filter(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities whose attribute equals value (strings compared case-insensitively)."""
    want = _norm(p["value"])
    return [e for e in s if _norm(_attr(e, p["attr"])) == want]


@op("filter_cmp", ("set",), "set", {"attr": "str", "cmp": "str", "value": "number"},
    choices={"cmp": ("gt", "lt", "ge", "le")})
def _filter_cmp(facts: Facts, p: dict, s: list[Entity]) -> list[Entity]:
    """Entities whose numeric attribute compares (gt, lt, ge, le) to value."""
    t, cmp = float(p["value"]), p["cmp"]
    test = {"gt": lambda v: v > t, "lt": lambda v: v < t, "ge": lambda v: v >= t, "le": lambda v: v <= t}[cmp]
    return [e for e in s if test(_num(e, p["attr"]))]


@op("relate", ("entity",), "set", {"direction": "str"}, choices={"direction": ("left", "right", "above", "below")})
def _relate(facts: Facts, p: dict, e: Entity) -> list[Entity]:
    """Other entities whose box centre lies left of, right of, above or below this entity's."""
    if e.box is None:
        raise ProgramError("missing_box", f"entity {e.id} has no box")
    cx, cy = (e.box[0] + e.box[2]) / 2, (e.box[1] + e.box[3]) / 2
    out = []
    for o in facts.entities:
        if o.id == e.id or o.box is None:
            continue
        ox, oy = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
        if {"left": ox < cx, "right": ox > cx, "above": oy < cy, "below": oy > cy}[p["direction"]]:
            out.append(o)
    return out


@op("same", ("entity",), "set", {"attr": "str"})
def _same(facts: Facts, p: dict, e: Entity) -> list[Entity]:
    """Other entities sharing this entity's value of attr."""
    v = _norm(_attr(e, p["attr"]))
    return [o for o in facts.entities if o.id != e.id and _norm(o.attrs.get(p["attr"], object())) == v]


@op("intersect", ("set", "set"), "set")
def _intersect(facts: Facts, p: dict, a: list[Entity], b: list[Entity]) -> list[Entity]:
    """Entities in both sets."""
    ids = {e.id for e in b}
    return [e for e in a if e.id in ids]


@op("union", ("set", "set"), "set")
def _union(facts: Facts, p: dict, a: list[Entity], b: list[Entity]) -> list[Entity]:
    """Entities in either set."""
    ids = {e.id for e in a}
    return a + [e for e in b if e.id not in ids]


# ---------------------------------------------------------------- set -> entity / value


@op("unique", ("set",), "entity")
def _unique(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The single entity of a set; an error if it has none or several (the referent is ambiguous)."""
    if len(s) != 1:
        raise ProgramError("empty" if not s else "not_unique", f"expected one entity, got {len(s)}")
    return s[0]


@op("argmax", ("set",), "entity", {"attr": "str"})
def _argmax(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The entity with the largest numeric attr; an error on a tie."""
    return _extreme(s, p["attr"], +1)


@op("argmin", ("set",), "entity", {"attr": "str"})
def _argmin(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The entity with the smallest numeric attr; an error on a tie."""
    return _extreme(s, p["attr"], -1)


@op("nth", ("set",), "entity", {"attr": "str", "n": "int", "order": "str"}, choices={"order": ("desc", "asc")})
def _nth(facts: Facts, p: dict, s: list[Entity]) -> Entity:
    """The n-th entity (1-based) by attr, largest first (desc) or smallest first (asc); an error on a tie."""
    n = p["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ProgramError("bad_param", f"nth needs n, a whole number >= 1, got {n!r}")
    return _extreme(s, p["attr"], +1 if p["order"] == "desc" else -1, n)


@op("query", ("entity",), "value", {"attr": "str"})
def _query(facts: Facts, p: dict, e: Entity) -> Scalar:
    """The value of attr on an entity."""
    return _attr(e, p["attr"])


@op("count", ("set",), "number", gradient=lambda xs: [])
def _count(facts: Facts, p: dict, s: list[Entity]) -> int:
    """The number of entities in a set."""
    return len(s)


@op("exists", ("set",), "bool")
def _exists(facts: Facts, p: dict, s: list[Entity]) -> bool:
    """Whether a set has any entity."""
    return bool(s)


@op("values", ("set",), "list", {"attr": "str"})
def _values(facts: Facts, p: dict, s: list[Entity]) -> list[Scalar]:
    """The attr values of a set, in entity order."""
    return [_attr(e, p["attr"]) for e in s]


@op("distinct", ("set",), "list", {"attr": "str"})
def _distinct(facts: Facts, p: dict, s: list[Entity]) -> list[Scalar]:
    """The distinct attr values of a set, in first-seen order."""
    seen: dict[Scalar, None] = {}
    for e in s:
        seen.setdefault(_attr(e, p["attr"]), None)
    return list(seen)


@op("sort", ("set",), "list", {"attr": "str", "order": "str", "output": "str"}, choices={"order": ("asc", "desc")})
def _sort(facts: Facts, p: dict, s: list[Entity]) -> list[Scalar]:
    """The output attr of a set's entities, sorted by numeric attr; an error on a tie."""
    keys = [_num(e, p["attr"]) for e in s]
    if len(set(keys)) != len(keys):
        raise ProgramError("tie", f"equal {p['attr']} values make the order ambiguous")
    ordered = sorted(s, key=lambda e: _num(e, p["attr"]), reverse=p["order"] == "desc")
    return [_attr(e, p["output"]) for e in ordered]


@op("field", (), "value", {"name": "str"})
def _field(facts: Facts, p: dict) -> Scalar:
    """A named field of the render (a document's total, a chart's title)."""
    v = facts.fields.get(p["name"])
    if v is None:
        raise ProgramError("missing_field", f"no field {p['name']!r} (has {sorted(k for k, x in facts.fields.items() if x is not None)})")
    return v


# ---------------------------------------------------------------- arithmetic and comparison


def _reduce(name: str, fn: Callable[[list[float]], float], doc: str, gradient: Gradient,
            keeps_decimals: bool = True) -> None:
    def impl(facts: Facts, p: dict, xs: list[Scalar]) -> float:
        nums = [float(x) for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if len(nums) != len(xs):
            raise ProgramError("type", f"{name} needs numbers, got {xs!r}")
        if not nums:
            raise ProgramError("empty", f"{name} of an empty list")
        return fn(nums)

    impl.__doc__ = doc
    op(name, ("list",), "number", gradient=gradient, keeps_decimals=keeps_decimals)(impl)


def _pick(xs: list[float], i: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(len(xs))]


_reduce("sum", lambda xs: math.fsum(xs), "The sum of a list of numbers.", lambda xs: [1.0] * len(xs))
_reduce("mean", lambda xs: math.fsum(xs) / len(xs), "The mean of a list of numbers.",
        lambda xs: [1.0 / len(xs)] * len(xs), keeps_decimals=False)
_reduce("max", max, "The largest of a list of numbers.", lambda xs: _pick(xs, xs.index(max(xs))))
_reduce("min", min, "The smallest of a list of numbers.", lambda xs: _pick(xs, xs.index(min(xs))))


def _as_num(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ProgramError("type", f"expected a number, got {x!r}")
    return float(x)


def _binary(name: str, fn: Callable[[float, float], Any], output: str, doc: str, gradient: Gradient | None = None,
            keeps_decimals: bool = True) -> None:
    def impl(facts: Facts, p: dict, a: Any, b: Any) -> Any:
        return fn(_as_num(a), _as_num(b))

    impl.__doc__ = doc
    op(name, ("number", "number"), output, gradient=gradient, keeps_decimals=keeps_decimals)(impl)


def _ratio(a: float, b: float) -> float:
    if b == 0:
        raise ProgramError("division_by_zero", "ratio with a zero denominator")
    return a / b


def _ratio_gradient(xs: list[float], scale: float = 1.0) -> list[float]:
    a, b = xs
    return [scale / b, -scale * a / b ** 2] if b else [math.inf, math.inf]


_binary("add", lambda a, b: a + b, "number", "a + b.", lambda xs: [1.0, 1.0])
_binary("diff", lambda a, b: a - b, "number", "a - b.", lambda xs: [1.0, -1.0])
_binary("absdiff", lambda a, b: abs(a - b), "number", "|a - b|.",
        lambda xs: [1.0, -1.0] if xs[0] >= xs[1] else [-1.0, 1.0])
_binary("ratio", _ratio, "number", "a / b; an error when b is 0.", _ratio_gradient, keeps_decimals=False)
_binary("percent_of", lambda a, b: 100.0 * _ratio(a, b), "number", "100 * a / b: a as a percentage of b.",
        lambda xs: _ratio_gradient(xs, 100.0), keeps_decimals=False)
_binary("greater", lambda a, b: a > b, "bool", "Whether a > b.")
_binary("less", lambda a, b: a < b, "bool", "Whether a < b.")
_binary("equal", lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), "bool", "Whether a == b (to 1e-9).")


@op("same_value", ("value", "value"), "bool")
def _same_value(facts: Facts, p: dict, a: Scalar, b: Scalar) -> bool:
    """Whether two values are equal (strings compared case-insensitively)."""
    return _norm(a) == _norm(b)
