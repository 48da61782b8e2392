"""Reading image files from a folder tree or a zip's members (zipfile.Path), shared by the local sources."""

import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fer.data.photos import BadPhoto, Decoded, decode_image
from fer.data.rawdata import ImageSpool, RaggedImages

# No face photo needs more pixels than this: larger images are counted skips, refused from the header before
# any pixel is decoded, so a decompression bomb cannot exhaust memory. (Checked here rather than by setting
# PIL's process-wide Image.MAX_IMAGE_PIXELS, which would change every other reader in the process.)
MAX_IMAGE_PIXELS = 40_000_000

# Files decoded at once, on every core (PIL and OpenCV release the GIL while decoding and resizing): enough to
# keep the cores busy, few enough that the decoded images waiting to be stored stay small.
DECODE_CHUNK = 256

# Every suffix PIL knows (.jfif and .avif included): such a file is read, or counted as a skip if it cannot be;
# other files (notes.txt, Thumbs.db) are not images and are passed over.
IMAGE_SUFFIXES = frozenset(Image.registered_extensions())


def visible_children(folder: Path | zipfile.Path) -> list:
    """Entries by name, minus hidden ones and macOS zip litter (__MACOSX/, ._* resource forks)."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))), key=lambda p: p.name)


def files_under(folder: Path | zipfile.Path) -> list:
    """Every visible file below folder, in path order (Path.rglob, which a zip's members lack before Python 3.12).
    Hidden entries are skipped as in visible_children, and with them a zip member's `..` components, which
    zipfile.Path shows as a folder named `..` inside the class folder."""
    files = []
    for entry in visible_children(folder):
        files += files_under(entry) if entry.is_dir() else [entry]
    return files


def load_grey(file: Path | zipfile.Path | None, max_side: int) -> Decoded | None:
    """The image as grey uint8 with its longer side at most max_side; None if it cannot be decoded (or is None)."""
    if file is None:
        return None
    try:
        with file.open("rb") as stream:
            return decode_image(stream, str(file), MAX_IMAGE_PIXELS, max_side)
    except BadPhoto:
        return None


def load_all_grey(files: list, max_side: int) -> Iterator[Decoded | None]:
    """load_grey of each file, in order, decoded on every core a chunk at a time."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, len(files), DECODE_CHUNK):
            yield from pool.map(lambda file: load_grey(file, max_side), files[start : start + DECODE_CHUNK])


def decode_all(files: list, max_side: int, scratch: Path | None) -> tuple[RaggedImages, np.ndarray, int]:
    """Decode files (None: a missing file) into a spool in `scratch` (None: the system's temp folder): the images,
    which files they came from (indices into files) and how many were 16-bit. Failures are left out."""
    spool, decoded_from, sixteen_bit = ImageSpool(scratch), [], 0
    for i, decoded in enumerate(load_all_grey(files, max_side)):
        if decoded is not None:
            spool.add(decoded.grey)
            decoded_from.append(i)
            sixteen_bit += decoded.bits == 16
    return spool.images(), np.array(decoded_from, dtype=np.int64), sixteen_bit
