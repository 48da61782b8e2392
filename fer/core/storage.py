"""Write stage outputs so that a crash never leaves a half-written file or folder behind."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from fer.core.errors import FerError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `target`; on success it is renamed onto `target`.

    Works for a file or a folder: whatever the caller creates at the yielded path replaces the old
    target in one rename. On an exception the temporary path is removed and the target is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp_target = tmp / (target.name + suffix)
    try:
        yield tmp_target
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp_target, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "a JSON file"):
    """The parsed file; a missing or malformed file is one line naming it and what it should be."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: not found; expected {what} (dvc repro writes it)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FerError(f"{path}: not valid JSON ({err}); expected {what}") from None


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
