"""Reading image files from a folder tree or a zip's members (zipfile.Path), shared by the local sources."""

import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fer.data.indexed import IndexedImages, indexable, read_grey
from fer.data.photos import BadPhoto, Decoded
from fer.data.rawdata import ImageSpool, RaggedImages

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


def load_grey(file: Path | zipfile.Path | None, max_side: int) -> tuple[Decoded, str] | None:
    """read_grey's (image, content hash); None if the file cannot be decoded (or is None)."""
    if file is None:
        return None
    try:
        return read_grey(file, max_side)
    except BadPhoto:
        return None


def load_all_grey(files: list, max_side: int) -> Iterator[tuple[Decoded, str] | None]:
    """load_grey of each file, in order, decoded on every core a chunk at a time."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, len(files), DECODE_CHUNK):
            yield from pool.map(lambda file: load_grey(file, max_side), files[start : start + DECODE_CHUNK])


def decode_all(
    files: list, max_side: int, scratch: Path | None
) -> tuple[RaggedImages | IndexedImages, np.ndarray, int]:
    """Decode files (None: a missing file): the images, which files they came from (indices into files) and how
    many were 16-bit. Failures are left out. Files inside the project come back as an index of themselves
    (fer.data.indexed), others decoded into a spool in `scratch` (None: the system's temp folder)."""
    index = indexable(files)
    spool = None if index else ImageSpool(scratch)
    decoded_from, hashes, shapes, sixteen_bit = [], [], [], 0
    for i, loaded in enumerate(load_all_grey(files, max_side)):
        if loaded is not None:
            decoded, digest = loaded
            decoded_from.append(i)
            sixteen_bit += decoded.bits == 16
            if index:
                hashes.append(digest)
                shapes.append(decoded.grey.shape)
            else:
                spool.add(decoded.grey)
    decoded_from = np.array(decoded_from, dtype=np.int64)
    if not index:
        return spool.images(), decoded_from, sixteen_bit
    shapes = np.array(shapes, dtype=np.int64).reshape(-1, 2)
    paths = [str(files[i]) for i in decoded_from]
    return IndexedImages(paths, hashes, shapes[:, 0], shapes[:, 1]), decoded_from, sixteen_bit
