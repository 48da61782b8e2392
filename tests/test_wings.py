"""Imports flow one way between the wings of fer/ (docs/architecture.md): a module imports only from its own
wing and the wings below it, so a low wing (core, data) never drags in a high one (torch-heavy models, the
serving stack) and each wing can be read, tested and changed knowing only what lies beneath it.

The walk is the one tests/test_stage_deps.py follows for stage deps, so lazy imports inside functions count too.
"""

from pathlib import Path

import pytest
from conftest import REPO
from test_stage_deps import imported_fer_modules

# Lowest first, as in fer/__init__.py; fer/cli.py sits on top of them all.
WINGS = ("core", "data", "models", "runtime", "train", "evaluate", "export", "serve", "tools", "cli")


def wing_of(module: str) -> str | None:
    """The wing of a fer module name (fer.data.sources.local -> data); None for the bare `fer` package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(file: Path, wing: str, package: str | None = None) -> list[str]:
    """The fer modules `file`, a module of `wing`, imports from a wing above its own."""
    rank = WINGS.index(wing)
    return sorted(
        module
        for module in imported_fer_modules(file, package)
        if wing_of(module) is not None and WINGS.index(wing_of(module)) > rank
    )


def _wing_modules() -> list:
    """(wing, file) of every module under fer/<wing>/, named by its path."""
    return [
        pytest.param(wing, file, id=str(file.relative_to(REPO)))
        for wing in WINGS[:-1]
        for file in sorted((REPO / "fer" / wing).rglob("*.py"))
    ]


def test_every_package_of_fer_is_a_ranked_wing():
    """A new wing has to take its place in the order, or its imports would go unchecked."""
    packages = {p.name for p in (REPO / "fer").iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(WINGS[:-1]), "add the new wing to WINGS here, fer/__init__.py and docs/architecture.md"


@pytest.mark.parametrize("wing, file", _wing_modules())
def test_a_module_imports_only_from_its_own_wing_and_below(wing, file):
    upward = upward_imports(file, wing)
    assert not upward, f"{file.relative_to(REPO)} ({wing}) imports from a higher wing: {', '.join(upward)}"


def test_a_lazy_import_from_a_higher_wing_is_caught(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text(
        "from fer.core.errors import FerError\n\n\ndef read():\n"
        "    from fer.models import build_model\n    return build_model\n"
    )
    assert upward_imports(module, "data") == ["fer.models"]
    assert upward_imports(module, "runtime") == []


def test_a_relative_import_from_a_higher_wing_is_caught(tmp_path):
    module = tmp_path / "reader.py"
    module.write_text("from ..models import build_model\nfrom . import rawdata\n")
    assert upward_imports(module, "data", package="fer.data") == ["fer.models"]
