"""The CLI package's shape: short functions, and an app module that imports no command module."""

import ast
from pathlib import Path

import pytest

import deltaprompts.cli

CLI = Path(deltaprompts.cli.__file__).parent
MAX_LINES = 80


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_no_cli_function_is_longer_than_80_lines(path):
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(_tree(path)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, f"{path.name}: split these into helpers: {long}"


def test_app_module_imports_no_other_cli_module():
    imported = set()
    for node in ast.walk(_tree(CLI / "app.py")):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
    cli = sorted(m for m in imported if m == "deltaprompts.cli" or m.startswith("deltaprompts.cli."))
    assert not cli, f"cli/app.py must stay a leaf: it imports {cli}"


def test_no_cli_module_imports_the_package_back():
    for path in CLI.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        back = [n.lineno for n in ast.walk(_tree(path)) if isinstance(n, ast.ImportFrom) and (
            n.module == "deltaprompts.cli" or n.module == "deltaprompts" and any(a.name == "cli" for a in n.names))]
        assert not back, f"{path.name} imports deltaprompts.cli back (line {back})"


def _is_command(fn: ast.FunctionDef) -> bool:
    """Decorated with `@<typer app>.command(...)`."""
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
               for d in fn.decorator_list)


def test_commands_are_top_level_functions():
    """Commands are decorated at module level, not defined as closures inside a register() function."""
    commands = 0
    for path in CLI.glob("*.py"):
        tree = _tree(path)
        commands += sum(isinstance(n, ast.FunctionDef) and _is_command(n) for n in tree.body)
        nested = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _is_command(n)
                  and n not in tree.body]
        assert not nested, f"{path.name}: commands defined inside functions: {nested}"
    assert commands >= 10, "no top-level commands found: has the CLI moved?"
