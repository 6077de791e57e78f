"""A jinja2 sandbox whose templates cannot run unbounded: output, arithmetic, loops and recursion.

Question phrasings and prompt formats come from files a user (or a shared template pack) supplies,
so a phrasing such as ``{{ 'a' * 300000000 }}`` or ``{{ (7 ** 300000000) % 10 }}`` must fail fast
with a one-line error instead of taking memory or a core for minutes. `BoundedSandbox` refuses
repetition, powers and format widths past fixed limits, and macros (their recursion could double a
string at every level); `render_bounded` caps the length of one rendering and the loop iterations
(`range`) it may spend. A template within the limits renders exactly as in a plain sandbox.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import Template, nodes, pass_eval_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import do_center, do_format, do_indent, do_replace
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 100_000
"""The most characters one rendering, or one repeated string or list, may hold."""
MAX_INT_BITS = 4096
"""The largest integer (in bits, about 1,230 digits) a product or power may make."""
MAX_WIDTH = 1_000
"""The widest field or precision a format (`%10s`, `{:>10}`, center, indent) may ask for."""
MAX_ITERATIONS = 100_000
"""The most `range` steps one rendering may spend, over all its loops."""

_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("deltaprompts_sandbox_budget",
                                                                           default=None)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_BRACE_SPEC = re.compile(r"\{[^{}]*?(?:![rsa])?:([^{}]*)\}")


def _check_width(spec: str, what: str) -> None:
    for m in _PERCENT_SPEC.finditer(spec):
        for part in m.groups():
            if part == "*" or (part and int(part) > MAX_WIDTH):
                raise SecurityError(f"{what} {m.group(0)!r} asks for a field wider than {MAX_WIDTH}")
    for m in _BRACE_SPEC.finditer(spec):
        if any(int(d) > MAX_WIDTH for d in re.findall(r"\d+", m.group(1))):
            raise SecurityError(f"{what} {m.group(0)!r} asks for a field wider than {MAX_WIDTH}")
    if _NESTED_SPEC.search(spec):
        raise SecurityError(f"{what} {spec[:40]!r}: a width given by a nested field is not allowed")


def _bits(x: Any) -> int:
    return abs(x).bit_length() if isinstance(x, int) else 0


def _range(*args: int) -> range:
    r = range(*args)
    left = _budget.get()
    limit = left[0] if left is not None else MAX_ITERATIONS
    if len(r) > limit:
        raise SecurityError(f"range of {len(r):,} steps: a template may spend at most {MAX_ITERATIONS:,} "
                            "loop steps in one rendering")
    if left is not None:
        left[0] -= len(r)
    return r


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_width(str(value), "format")
    return do_format(value, *args, **kwargs)


def _center(value: str, width: int = 80) -> str:
    if width > MAX_WIDTH:
        raise SecurityError(f"center width {width} is over {MAX_WIDTH}")
    return do_center(value, width)


def _indent(value: str, width: int | str = 4, *args: Any, **kwargs: Any) -> str:
    if (len(width) if isinstance(width, str) else width) > MAX_WIDTH:
        raise SecurityError(f"indent width is over {MAX_WIDTH}")
    return do_indent(value, width, *args, **kwargs)


def _check_call(obj: Any, args: tuple, kwargs: dict) -> None:
    """Refuse a str method whose result grows with an argument (`ljust(10**9)`, `replace('', long)`)."""
    target, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(target, str):
        return
    values = [*args, *kwargs.values()]
    if name in _WIDTH_METHODS and any(isinstance(a, int) and a > MAX_WIDTH for a in values):
        raise SecurityError(f"str.{name} width over {MAX_WIDTH}")
    if (name == "replace" and len(values) >= 2 and isinstance(values[0], str) and isinstance(values[1], str)
            and target.count(values[0]) * len(values[1]) > MAX_OUTPUT):
        raise SecurityError(f"str.replace would make more than {MAX_OUTPUT:,} characters")


@pass_eval_context
def _replace(eval_ctx: Any, value: str, old: str, new: str, count: int | None = None) -> str:
    _check_call(str(value).replace, (str(old), str(new)), {})
    return do_replace(eval_ctx, value, old, new, count)


class BoundedSandbox(SandboxedEnvironment):
    """A SandboxedEnvironment whose arithmetic, formats, loops and output are bounded (see module)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.globals["range"] = _range
        self.filters.update(format=_format, center=_center, indent=_indent, replace=_replace)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
                raise SecurityError(f"{left} ** {right} is too large: at most {MAX_INT_BITS} bits are allowed")
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT:
                    raise SecurityError(f"repeating {len(seq):,} items {n:,} times: at most {MAX_OUTPUT:,} allowed")
            if _bits(left) + _bits(right) > MAX_INT_BITS:
                raise SecurityError(f"a product of {_bits(left) + _bits(right)} bits: at most {MAX_INT_BITS} allowed")
        elif operator == "%" and isinstance(left, str):
            _check_width(left, "format")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_width(value.__self__, "format")
        return wrapped

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
            raise TemplateSyntaxError("macros are not allowed in deltaprompts templates (recursion is unbounded)",
                                      node.lineno, name, filename)
        return tree


def render_bounded(template: Template, context: Mapping[str, Any], limit: int = MAX_OUTPUT) -> str:
    """`template.render(**context)`, refused with SecurityError once the output passes `limit`
    characters or its loops pass MAX_ITERATIONS range steps."""
    token = _budget.set([MAX_ITERATIONS])
    try:
        parts, n = [], 0
        for chunk in template.generate(**context):
            n += len(chunk)
            if n > limit:
                raise SecurityError(f"the rendering is longer than {limit:,} characters")
            parts.append(chunk)
        return "".join(parts)
    finally:
        _budget.reset(token)
