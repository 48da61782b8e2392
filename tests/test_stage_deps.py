"""Every library file a stage runs is among that stage's deps in dvc.yaml, found by following imports.

Without this, a change to a module a stage imports leaves `dvc status` clean while the stage's outputs were
made by the old code. The closure is static: every `import` of a fer module (at any depth, including the
lazy ones inside functions), the packages' __init__ files those imports run, and, for a package that imports
its own submodules by name (the model registry: importlib.import_module(f"{__name__}.{module}")), all of them.
"""

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_packages(module: str) -> list[Path]:
    """The module's file and the __init__ of every package above it, all of which its import runs."""
    parts = module.split(".")
    files = [_module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def _imports_own_submodules(node: ast.AST) -> bool:
    """importlib.import_module(f"{__name__}...") in a package's __init__."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args):
        return False
    name = node.args[0]
    return (
        isinstance(name, ast.JoinedStr)
        and isinstance(name.values[0], ast.FormattedValue)
        and getattr(name.values[0].value, "id", None) == "__name__"
    )


def _absolute_module(node: ast.ImportFrom, package: str) -> str:
    """The module a relative `from ... import` names (`from ..serve import api`), resolved in package."""
    return importlib.util.resolve_name("." * node.level + (node.module or ""), package)


def imported_fer_modules(file: Path, package: str | None = None) -> set[str]:
    """package: the one file belongs to, which relative imports start from (by default, from its path)."""

    def own_package() -> str:
        return package or ".".join(file.relative_to(REPO).with_suffix("").parts[:-1])

    modules = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module if not node.level else _absolute_module(node, own_package())
            modules.add(module)
            # `from fer.data import rawdata` (or `from . import rawdata`) imports a submodule
            modules |= {f"{module}.{alias.name}" for alias in node.names if _module_file(f"{module}.{alias.name}")}
        elif _imports_own_submodules(node):
            modules |= {f"{own_package()}.{sub.stem}" for sub in file.parent.glob("*.py") if sub.stem != "__init__"}
    return {m for m in modules if m == "fer" or m.startswith("fer.")}


def import_closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        for module in imported_fer_modules(file):
            todo += _with_packages(module)
    return {f.relative_to(REPO) for f in seen}


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


@pytest.mark.parametrize("name, stage", _stages().items())
def test_every_file_a_stage_imports_is_one_of_its_deps(name, stage):
    script = re.search(r"stages/\w+\.py", stage["cmd"]).group(0)
    deps = [Path(dep) for dep in stage["deps"] if "${" not in dep]
    uncovered = sorted(
        str(f) for f in import_closure(REPO / script) if not any(f == dep or dep in f.parents for dep in deps)
    )
    assert not uncovered, f"{name}: add to its deps in dvc.yaml: {', '.join(uncovered)}"


def test_the_closure_follows_lazy_imports_and_registry_names():
    closure = import_closure(REPO / "stages" / "train.py")
    assert Path("fer/models/vit.py") in closure  # named in fer/core/archs.py, imported on demand
    assert Path("fer/models/vit.py") not in import_closure(REPO / "stages" / "split.py")
    assert Path("fer/data/sources/synthetic.py") not in closure  # train never generates data
    assert {Path("fer/__init__.py"), Path("fer/train/__init__.py")} <= closure
