"""The pre-commit hooks pass on the tree, run offline, and catch what they are there for."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _pre_commit(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # the hooks are the venv's tools
    return subprocess.run(
        [BIN / "pre-commit", "run", "--all-files", "--color=never", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_hook_passes_on_the_tree():
    done = _pre_commit(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_hooks_catch_bad_yaml_an_unformatted_file_and_a_large_file(tmp_path):
    shutil.copy(ROOT / ".pre-commit-config.yaml", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # ruff's settings
    (tmp_path / "params.yaml").write_text("seed: [42\n")
    (tmp_path / "ugly.py").write_text("x = {'a':1}\n")
    (tmp_path / "weights.bin").write_bytes(bytes(600 * 1024))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    done = _pre_commit(tmp_path)
    failed = {line.split(".", 1)[0] for line in done.stdout.splitlines() if line.endswith("Failed")}
    assert failed == {"ruff format", "YAML syntax", "no large files"}, done.stdout
    assert (tmp_path / "ugly.py").read_text() == "x = {'a':1}\n"  # checked, not rewritten
