"""Parse, type-check, bind and execute question programs; detect degenerate steps."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from deltaprompts.errors import ProgramError, TemplateError, UnknownNameError
from deltaprompts.programs import OPS
from deltaprompts.records import Facts, Node, Scalar

_SCALARS = {"number", "string", "bool", "value"}
MAX_PARAM = 1e15
"""The largest magnitude of a number written in a program (larger is surely a mistake or hostile)."""
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][\w.]*)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<num>-?\d+(?:\.\d+)?)"
                    r"|(?P<slot>\$\w+)|(?P<punct>[()\[\],=]))")


def _accepts(expected: str, got: str) -> bool:
    if expected == got:
        return True
    # `query` yields "value": a number, string or bool only known at run time.
    return (expected == "value" and got in _SCALARS) or (got == "value" and expected in _SCALARS)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot parse program at {text[pos:pos + 20]!r} (in {text!r})")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))  # type: ignore[arg-type]
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse(text: str) -> Node:
    """Parse the compact syntax ``op[param=value, ...](arg, ...)`` into a Node tree.

    Values are numbers, quoted strings, bare words, or `$slot` references (kept as "$slot"
    strings for `bind`). Raises TemplateError on a syntax error.
    """
    toks = _tokens(text)
    pos = 0

    def expect(value: str) -> None:
        nonlocal pos
        if pos >= len(toks) or toks[pos][1] != value:
            got = toks[pos][1] if pos < len(toks) else "end of text"
            raise TemplateError(f"expected {value!r}, got {got!r} in program {text!r}")
        pos += 1

    def scalar() -> Scalar:
        nonlocal pos
        kind, val = toks[pos]
        pos += 1
        if kind == "num":
            try:  # a 5,000-digit integer is a ValueError; a long decimal overflows to infinity
                num = float(val) if "." in val else int(val)
            except ValueError:
                num = math.inf
            if not math.isfinite(num) or abs(num) > MAX_PARAM:
                raise TemplateError(f"number {val[:20]}{'...' if len(val) > 20 else ''} is too large "
                                    f"(at most {MAX_PARAM:g} in magnitude) in program {text[:200]!r}")
            return num
        if kind == "str":
            return val[1:-1]
        if kind in ("name", "slot"):
            return {"true": True, "false": False}.get(val, val)
        raise TemplateError(f"expected a value, got {val!r} in program {text!r}")

    def node() -> Node:
        nonlocal pos
        if pos >= len(toks) or toks[pos][0] != "name":
            raise TemplateError(f"expected an op name in program {text!r}")
        name = toks[pos][1]
        pos += 1
        params: dict[str, Scalar] = {}
        if pos < len(toks) and toks[pos][1] == "[":
            pos += 1
            while toks[pos][1] != "]":
                key = toks[pos][1]
                pos += 1
                expect("=")
                params[key] = scalar()
                if toks[pos][1] == ",":
                    pos += 1
            pos += 1
        expect("(")
        args = []
        while pos < len(toks) and toks[pos][1] != ")":
            args.append(node())
            if toks[pos][1] == ",":
                pos += 1
        expect(")")
        return Node(op=name, args=args, params=params)

    try:
        tree = node()
    except IndexError:
        raise TemplateError(f"program ends early: {text!r}") from None
    if pos != len(toks):
        raise TemplateError(f"unexpected {toks[pos][1]!r} after the program in {text!r}")
    return tree


def type_check(node: Node, where: str = "program") -> str:
    """Type-check a program against the op schema; return its output type.

    Raises TemplateError naming `where`, the op and what is wrong (unknown op, wrong arity,
    wrong input type, missing/unknown param, value not among the allowed choices).
    """
    try:
        op = OPS.get(node.op)
    except UnknownNameError as e:
        raise TemplateError(f"{where}: {e}") from None
    if len(node.args) != len(op.inputs):
        raise TemplateError(f"{where}: op {node.op!r} takes {len(op.inputs)} input(s), got {len(node.args)}")
    for i, (arg, want) in enumerate(zip(node.args, op.inputs)):
        got = type_check(arg, where)
        if not _accepts(want, got):
            raise TemplateError(f"{where}: op {node.op!r} input {i + 1} must be {want}, got {got} from {arg.op!r}")
    missing = set(op.params) - set(node.params)
    unknown = set(node.params) - set(op.params)
    if missing or unknown:
        raise TemplateError(f"{where}: op {node.op!r} params must be {sorted(op.params) or 'none'}; "
                            f"missing {sorted(missing)}, unknown {sorted(unknown)}")
    for key, allowed in op.choices.items():
        val = node.params[key]
        if not (isinstance(val, str) and val.startswith("$")) and val not in allowed:
            raise TemplateError(f"{where}: op {node.op!r} param {key}={val!r}; allowed: {', '.join(allowed)}")
    for key, kind in op.params.items():
        val = node.params[key]
        if isinstance(val, str) and val.startswith("$"):
            continue  # a slot: its value is checked when the op runs
        if kind == "int" and (isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= MAX_PARAM):
            raise TemplateError(f"{where}: op {node.op!r} param {key}={val!r}; allowed: a whole number >= 1")
        if kind == "number" and (isinstance(val, bool) or not isinstance(val, (int, float))
                                 or not math.isfinite(val) or abs(val) > MAX_PARAM):
            raise TemplateError(f"{where}: op {node.op!r} param {key}={val!r}; allowed: a finite number "
                                f"of magnitude at most {MAX_PARAM:g}")
    return op.output


def slots_of(node: Node) -> set[str]:
    """The `$slot` names a program refers to."""
    own = {v[1:] for v in node.params.values() if isinstance(v, str) and v.startswith("$")}
    return own.union(*(slots_of(a) for a in node.args)) if node.args else own


def bind(node: Node, values: Mapping[str, Scalar]) -> Node:
    """Return a copy of the program with every `$slot` replaced by its value."""
    params = {}
    for k, v in node.params.items():
        if isinstance(v, str) and v.startswith("$"):
            if v[1:] not in values:
                raise TemplateError(f"slot {v} has no value (have {sorted(values)})")
            v = values[v[1:]]
        params[k] = v
    return Node(op=node.op, args=[bind(a, values) for a in node.args], params=params)


_memo: dict[int | str, tuple[Node | None, Facts, bool, Any]] | None = None


@contextlib.contextmanager
def memo() -> Iterator[None]:
    """Within this block `execute` remembers the result (or ProgramError) of each (node, facts) pair it
    ran, by identity, so that the checks re-running a program and its sub-steps cost nothing more.
    Neither the Facts nor the programs may be changed inside the block."""
    global _memo
    outer = _memo
    _memo = {} if outer is None else outer
    try:
        yield
    finally:
        _memo = outer


def cached(key: str, facts: Facts, make: Callable[[], Any]) -> Any:
    """`make()`, run once per (key, Facts) within a `memo()` block (a graph built from the Facts, say);
    outside one, every call runs it."""
    m = _memo
    if m is None:
        return make()
    hit = m.get(key)  # type: ignore[call-overload]
    if hit is not None and hit[1] is facts:
        return hit[3]
    value = make()
    m[key] = (None, facts, False, value)  # type: ignore[index]
    return value


def execute(node: Node, facts: Facts) -> Any:
    """Run a bound program over Facts; raises ProgramError (with a reason tag) when ill-posed."""
    m = _memo
    if m is None:
        return _execute(node, facts)
    hit = m.get(id(node))
    if hit is not None and hit[0] is node and hit[1] is facts:
        if hit[2]:
            raise hit[3].with_traceback(None)
        return hit[3]
    try:
        value = _execute(node, facts)
    except ProgramError as e:
        m[id(node)] = (node, facts, True, e)
        raise
    m[id(node)] = (node, facts, False, value)
    return value


def _execute(node: Node, facts: Facts) -> Any:
    try:
        op = OPS.get(node.op)
    except UnknownNameError as e:
        raise ProgramError("unknown_op", str(e)) from None
    inputs = [execute(a, facts) for a in node.args]
    try:
        return op.fn(facts, node.params, *inputs)
    except ProgramError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as e:  # a bad param value from a model-written program
        raise ProgramError("bad_param", f"op {node.op!r} with params {node.params}: {e}") from None


_REDUCIBLE = {"filter", "filter_cmp", "relate", "relate3d", "same", "intersect", "union"}


def degenerate_step(node: Node, facts: Facts) -> str | None:
    """Return the op of a set-narrowing step that changes nothing, or None.

    CLEVR's degeneracy check, generalised: a filter/relate step is degenerate when its output
    set equals its input set (for `relate`/`same`, when it selects every other entity), so the
    question's wording names a condition the answer does not depend on.
    """
    for arg in node.args:
        found = degenerate_step(arg, facts)
        if found:
            return found
    if node.op not in _REDUCIBLE:
        return None
    out = {e.id for e in execute(node, facts)}
    if node.op in ("filter", "filter_cmp"):
        before = {e.id for e in execute(node.args[0], facts)}
    elif node.op in ("intersect", "union"):
        a, b = ({e.id for e in execute(x, facts)} for x in node.args)
        return node.op if out in (a, b) else None
    else:
        before = {e.id for e in facts.entities} - {execute(node.args[0], facts).id}
    return node.op if out == before else None
