"""Image files inside the project, kept as an index (path, content hash, decoded size) instead of a decoded copy.

A folder of JPEGs decodes to about three times its size in grey pixels (CelebA: 7.4 GB from 1.4 GB), and
DVC would cache that copy once more. The fetch stage therefore stores, for files the project itself holds
(under data/, which DVC tracks), only where each image is and what it was; the align stage decodes them
again from the source, a chunk at a time on every core. The hash makes a file that changed after fetch an
error rather than a silent mix of old labels and new pixels.
"""

import hashlib
import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer.core.errors import FerError
from fer.data.photos import BadPhoto, Decoded, decode_image

# No face photo needs more pixels than this: larger images are counted skips, refused from the header before
# any pixel is decoded, so a decompression bomb cannot exhaust memory. (Checked here rather than by setting
# PIL's process-wide Image.MAX_IMAGE_PIXELS, which would change every other reader in the process.)
MAX_IMAGE_PIXELS = 40_000_000

# The raw manifest's column of content hashes: its presence marks a raw folder that indexes files.
HASH_COLUMN = "sha256"


def read_grey(file: Path | zipfile.Path, max_side: int) -> tuple[Decoded, str]:
    """The file as grey uint8 (fer.data.photos.decode_image, longer side at most max_side) and the sha256 of
    its bytes; BadPhoto if it cannot be decoded."""
    data = file.read_bytes()
    decoded = decode_image(io.BytesIO(data), str(file), MAX_IMAGE_PIXELS, max_side)
    return decoded, hashlib.sha256(data).hexdigest()


def indexable(files: list) -> bool:
    """Whether these files can be indexed rather than copied: plain files given relative to the project
    (the stage's working folder) and inside it. A zip's members, or files elsewhere (a download cache),
    are copied: the project cannot count on them staying as they are."""
    return all(
        isinstance(file, Path) and not file.is_absolute() and ".." not in file.parts
        for file in files
        if file is not None
    )


class IndexedImages:
    """Images decoded on demand from their files, as fetch decoded them: an index gives one image, a slice a
    list of them (decoded on every core). `subset` picks rows without reading any file."""

    def __init__(self, files: np.ndarray, hashes: np.ndarray, heights: np.ndarray, widths: np.ndarray):
        self.files, self.hashes = np.asarray(files, dtype=object), np.asarray(hashes, dtype=object)
        self.heights, self.widths = np.asarray(heights, dtype=np.int64), np.asarray(widths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, rows) -> "IndexedImages":
        return IndexedImages(self.files[rows], self.hashes[rows], self.heights[rows], self.widths[rows])

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self._decode(range(len(self))[index])
        rows = range(*index.indices(len(self)))
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            return list(pool.map(self._decode, rows))

    def _decode(self, row: int) -> np.ndarray:
        file, height, width = Path(self.files[row]), int(self.heights[row]), int(self.widths[row])
        if not file.is_file():
            raise FerError(f"{file}: not found; the fetch stage indexed it (restore it, or run dvc repro)")
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.hashes[row]:
            raise FerError(f"{file}: changed since the fetch stage indexed it (content hash differs); run dvc repro")
        # Fetch stored the decoded size, not data.max_side: an image at its longer-side limit was shrunk to exactly
        # that side, and a smaller one was never shrunk, so max(height, width) decodes it as fetch did.
        try:
            grey = decode_image(io.BytesIO(data), str(file), MAX_IMAGE_PIXELS, max(height, width)).grey
        except BadPhoto:
            grey = None
        if grey is None or grey.shape != (height, width):
            raise FerError(
                f"{file}: no longer decodes as when the fetch stage indexed it ({height}x{width}); "
                "run dvc repro -f fetch"
            )
        return grey
