"""What may sit in the data folder: regular files and folders, and symlinks to them that do not loop.

Opening a FIFO blocks until something writes to it, so one in data/ hangs whoever reads the folder (DVC's
hashing of the fetch stage's dependency included); a socket or device is no image either. A symlink to a folder
above it makes a walk that follows links see the same images again and again. The validate stage refuses both
before DVC hashes data/ for the fetch stage.
"""

import os
import stat
from pathlib import Path

from fer.core.errors import FerError


def check_dataset_tree(root: str | Path) -> None:
    root = Path(root)
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):  # does not descend into symlinked folders
        for name in dirs + files:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                try:
                    target = path.resolve(strict=True)
                except FileNotFoundError:
                    continue  # a dangling link holds no data; readers pass over it
                except (OSError, RuntimeError):
                    raise FerError(f"{path}: a symlink that loops; remove it from {root}") from None
                if target.is_dir() and Path(folder).resolve().is_relative_to(target):
                    raise FerError(
                        f"{path}: a symlink to {target}, a folder above it, so its images would be read "
                        f"again and again; remove it from {root}"
                    )
                mode = target.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise FerError(
                    f"{path}: not a regular file (a FIFO, socket or device: reading it would block or "
                    f"make no sense); remove it from {root}"
                )
