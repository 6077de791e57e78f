"""The house rules of the package's structure, read from its source: no import cycles, one writer
per file of a run directory."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> the package it installs as (pyproject.toml package-dir)
PACKAGES = {"deltaprompts": "deltaprompts", "generators": "deltaprompts.generators",
            "templates": "deltaprompts.templates", "verifiers": "deltaprompts.verifiers",
            "divergence": "deltaprompts.divergence"}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module an imported name lies in (a module, or the module defining the name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    """Every package module `name` imports at run time, at module level or inside functions."""
    is_package = path.name == "__init__.py"
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and ast.unparse(block.test) in
                   ("TYPE_CHECKING", "typing.TYPE_CHECKING") for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # read by type checkers only, never imported at run time
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if not t.startswith("deltaprompts"):
                continue
            r = _resolve(t)
            # a package and its own submodules aside (an __init__ gathers them; a submodule reads its package)
            if r and r != name and not r.startswith(name + ".") and not name.startswith(r + "."):
                found.add(r)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    graph = defaultdict(set, {name: _imports(name, path) for name, path in MODULES.items()})
    cycles = _cycles(graph)
    shown = ["; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(shown)


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are not docstrings (messages, with spaces, are skipped by the caller)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


@pytest.mark.parametrize("needle, owner", [
    ("stats.json", "deltaprompts.store"),       # shard stats: RunStore.write_items
    ("deltas.jsonl", "deltaprompts.store"),     # scores/: ScoreStore
    ("samples-", "deltaprompts.store"),
    ("forced.jsonl", "deltaprompts.store"),
    ("manifest.json", "deltaprompts.store"),
])
def test_one_module_names_each_file_of_a_run(needle, owner):
    """Only the store builds the paths of shard stats, manifests and score files: every other
    module reads and writes them through RunStore / ScoreStore."""
    found = [f"{MODULES[m].relative_to(ROOT)}:{line}: {text!r}" for m in MODULES if m != owner
             for line, text in _string_constants(MODULES[m]) if needle in text and " " not in text]
    assert not found, f"{needle!r} is spelled outside {owner}: {found}"
