"""Write stage outputs so that a crash never leaves a half-written file or folder behind."""

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fer.core.errors import FerError, one_line


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside `target`; on success it is renamed onto `target`.

    Works for a file or a folder: whatever the caller creates at the yielded path replaces the old
    target in one rename. On an exception the temporary path is removed and the target is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    # The writer's pid in the name tells a later run whether this temp folder is still someone's.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    tmp_target = tmp / (target.name + suffix)
    try:
        yield tmp_target
        if target.is_dir() and not target.is_symlink():
            # A folder cannot be renamed over a full one: swap the two instead, so that the target is never
            # missing; the old folder then goes with tmp.
            if not _exchange(tmp_target, target):
                os.replace(target, tmp / ".replaced")
                os.replace(tmp_target, target)
        else:
            os.replace(tmp_target, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_temps(target: Path) -> None:
    """Temp folders beside target left by a writer that was killed (its pid is gone, or it predates pids)."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        pid = stale.name.removeprefix(f".{target.name}.").split(".")[0]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    at_fdcwd, rename_exchange = -100, 2
    return renameat2 is not None and renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def scratch_folder(target: str | os.PathLike):
    """Yield an empty folder beside `target` (on its disk) for a writer's scratch files; it goes on exit, and a
    killed writer's is removed by the next atomic_path(target)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """path, if it is a file; else one line naming it and what it should be. Every file read here is a stage
    output, so the way to get it is to run the pipeline."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: not found; expected {what} (dvc repro writes it)")
    return path


def read_json(path: str | os.PathLike, what: str = "a JSON file"):
    """The parsed file; a missing or malformed file is one line naming it and what it should be."""
    path = existing_file(path, what)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FerError(f"{path}: not valid JSON ({err}); expected {what}") from None


def load_array(path: str | os.PathLike, what: str, mmap_mode: str | None = None) -> np.ndarray:
    """The .npy array at path; a missing, truncated or corrupt file is one line naming it and what it should be
    (numpy's own errors say neither). Pickled objects are refused: an array file never needs them."""
    path = existing_file(path, what)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise FerError(f"{path}: not a readable .npy array ({one_line(err)}); expected {what}") from None


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
