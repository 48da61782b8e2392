"""Run the `dvc` command line from this interpreter, so a venv's `fer` works without activating the venv."""

import os
import subprocess
import sys
from pathlib import Path

from fer.core.errors import FerError, one_line


def run_dvc(*args: str, cwd: str | Path = ".") -> str:
    """dvc's stdout; a failure becomes one line with dvc's last error line."""
    # Stage commands say `python`: put this interpreter's folder first so they find the same environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "PATH": path}
    )
    if done.returncode:
        raise FerError(f"dvc {' '.join(args)} failed: {one_line(done.stderr or 'no output', last=True)}")
    return done.stdout
