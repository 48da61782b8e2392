import subprocess

import pytest

from fer.core.errors import FerError
from fer.tools.dvc_cli import run_dvc


def test_runs_this_interpreters_dvc_without_the_venv_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert run_dvc("--version").strip()[0].isdigit()


def test_failure_is_one_line_naming_the_command(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    run_dvc("init", "-q", cwd=tmp_path)
    with pytest.raises(FerError, match=r"^dvc repro no-such-stage failed: ERROR: .*dvc.yaml") as error:
        run_dvc("repro", "no-such-stage", cwd=tmp_path)
    assert "\n" not in str(error.value)
