"""The package layout: every package folder is listed in pyproject.toml, templates ship as data."""

import sys
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"add to / remove from [tool.setuptools] packages: {sorted(found ^ listed)}"


def test_templates_ship_as_package_data():
    root = resources.files("deltaprompts.templates")
    files = [p for p in Path(str(root)).rglob("*.yaml")]
    assert any("questions" in p.parts for p in files)
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    suffixes = {p.suffix for p in Path(str(root)).rglob("*") if p.is_file() and p.suffix != ".py"}
    globs = data["deltaprompts.templates"]
    assert all(any(g.endswith(s) for g in globs) for s in suffixes), f"template file types not shipped: {suffixes}"


def test_core_imports_without_torch_or_plotly():
    import subprocess

    code = ("import sys; sys.modules['torch'] = None; sys.modules['plotly'] = None; sys.modules['transformers'] = None\n"
            "import deltaprompts.cli, deltaprompts.generate\n"
            "from deltaprompts.generators import FAMILIES; FAMILIES.names()")
    subprocess.run([sys.executable, "-c", code], check=True)
