"""What the Dockerfiles copy is in the build context: a file of the clone or a pipeline output, not left out by
.dockerignore. Both ways a COPY broke were found only by building (scripts/image_sizes.sh): a `# comment` after
an instruction, which Docker reads as more paths to copy, and an export that .dockerignore left out."""

import shlex
from pathlib import Path

import pathspec
import pytest
from conftest import REPO

from fer.core.paths import PATHS

DOCKERFILES = sorted((REPO / "dockerfiles").glob("*.Dockerfile"))


def _instructions(dockerfile: Path) -> list[list[str]]:
    """Each instruction's words, its continuation lines joined, comment lines left out."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def _copied_paths(dockerfile: Path) -> list[str]:
    copies = [words[1:] for words in _instructions(dockerfile) if words[0].upper() in {"COPY", "ADD"}]
    return [source for args in copies for source in [a for a in args if not a.startswith("--")][:-1]]


def _build_context_excludes() -> pathspec.GitIgnoreSpec:
    """.dockerignore's rules: each relative to the context's root (a git pattern without a slash would match at
    any depth), the last matching one deciding, a ! rule taking a path back."""
    rules = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    anchored = [f"!/{r[1:]}" if r.startswith("!") else f"/{r}" for r in rules if r and not r.startswith("#")]
    return pathspec.GitIgnoreSpec.from_lines(anchored)


def test_the_rules_read_as_docker_reads_them():
    excludes = _build_context_excludes()
    assert excludes.match_file("outputs/models/cnn-seed42.pt")
    assert excludes.match_file("fer/__pycache__/cli.cpython-311.pyc")
    assert not excludes.match_file("fer/data/sources.py")  # `data` is the clone's data/, not fer/data


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_is_in_the_build_context(dockerfile):
    pipeline_outputs = {str(path) for path in vars(PATHS).values()}
    excludes = _build_context_excludes()
    copied = _copied_paths(dockerfile)
    assert copied
    for source in copied:
        path = source.removeprefix("./").rstrip("/") or "."
        assert (REPO / path).exists() or path in pipeline_outputs, f"{dockerfile.name}: COPY {source}: no such file"
        assert not excludes.match_file(path), f"{dockerfile.name}: COPY {source}: left out by .dockerignore"
