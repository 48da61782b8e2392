"""What the Dockerfiles copy is in the build context: a file of the clone or a pipeline output, not left out by
.dockerignore. Both ways a COPY broke were found only by building (scripts/image_sizes.sh): a `# comment` after
an instruction, which Docker reads as more paths to copy, and an export that .dockerignore left out."""

from pathlib import Path

import pathspec
import pytest
from conftest import REPO

from fer.core.paths import PATHS

DOCKERFILES = sorted((REPO / "dockerfiles").glob("*.Dockerfile"))


def _instructions(dockerfile: Path) -> list[list[str]]:
    """Each instruction's words, its continuation lines joined, comment lines left out (Docker splits a COPY on
    whitespace: quotes are not the shell's)."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [line.split() for line in joined.splitlines() if line.strip()]


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


def _outside_the_build_context(dockerfile: Path) -> list[str]:
    """Each copied path that is neither a file of the clone nor a pipeline output, or that .dockerignore leaves
    out, with why."""
    pipeline_outputs = {str(path) for path in vars(PATHS).values()}
    excludes = _build_context_excludes()
    problems = []
    for source in _copied_paths(dockerfile):
        path = source.removeprefix("./").rstrip("/") or "."
        if not ((REPO / path).exists() or path in pipeline_outputs):
            problems.append(f"{dockerfile.name}: COPY {source}: no such file")
        elif excludes.match_file(path):
            problems.append(f"{dockerfile.name}: COPY {source}: left out by .dockerignore")
    return problems


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_copied_path_is_in_the_build_context(dockerfile):
    assert _copied_paths(dockerfile)
    assert _outside_the_build_context(dockerfile) == []


def test_a_comment_after_copy_and_an_ignored_output_are_found(tmp_path):
    dockerfile = tmp_path / "api.Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11-slim\n"
        "# a comment line is fine\n"
        "COPY metrics ./metrics   # the champion's record\n"
        "COPY outputs/champion.pt \\\n    ./outputs/\n"
        "COPY outputs/champion.int8.onnx ./outputs/\n"
    )
    assert _outside_the_build_context(dockerfile) == [
        "api.Dockerfile: COPY #: no such file",
        "api.Dockerfile: COPY the: no such file",
        "api.Dockerfile: COPY champion's: no such file",
        "api.Dockerfile: COPY outputs/champion.int8.onnx: left out by .dockerignore",
    ]
