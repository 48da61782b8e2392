"""The one on-disk format every source produces and every later stage reads.

Images of any size are stored as one ragged array (all pixels concatenated, grey uint8) plus a CSV
manifest with one row per image, because DVC handles a few large files far better than thousands of
small ones. Both are written and read a chunk of images at a time, so memory does not grow with the dataset.
Image files inside the project are not copied: the manifest alone indexes them (fer.data.indexed), each
row's source being the file and a sha256 column its content hash.
"""

import os
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.arrays import NpyAppender, NpyRows
from fer.core.errors import FerError, one_line
from fer.core.labels import LabelSet
from fer.core.storage import atomic_path, existing_file
from fer.data.indexed import HASH_COLUMN, IndexedImages

PIXELS = "pixels.npy"
MANIFEST = "manifest.csv"  # every dataset folder's manifest: raw, aligned and each split
# The pipeline's splits, in order; a source's usage is one of them, or "" where the source gives none.
SPLITS = ("train", "val", "test")
TRAIN, VAL, TEST = SPLITS
SAVE_CHUNK = 1024  # images read at once when writing a raw folder
SYNTHETIC_SOURCE = "synthetic:"  # the `source` of a drawn face (fer.data.sources.synthetic): this, then its index


class RaggedImages:
    """Images of varied sizes stored one after another in a 1-D pixel file, read on demand: an index gives one
    image, a slice a list of them (neighbours are read in one go). `subset` picks rows without reading any."""

    def __init__(self, pixels: NpyRows, heights: np.ndarray, widths: np.ndarray, offsets: np.ndarray):
        self.pixels, self.heights, self.widths, self.offsets = pixels, heights, widths, offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def subset(self, rows) -> "RaggedImages":
        return RaggedImages(self.pixels, self.heights[rows], self.widths[rows], self.offsets[rows])

    def __getitem__(self, index):
        if not isinstance(index, slice):
            row = range(len(self))[index]
            return self[row : row + 1][0]
        rows = range(*index.indices(len(self)))
        sizes = self.heights[rows] * self.widths[rows]
        if not rows:
            return []
        start, stop = self.offsets[rows].min(), (self.offsets[rows] + sizes).max()
        if stop - start > 2 * sizes.sum():  # rows far apart (a subset): read each alone
            return [
                self.pixels.read(self.offsets[i], self.offsets[i] + size).reshape(self.heights[i], self.widths[i])
                for i, size in zip(rows, sizes)
            ]
        block = self.pixels.read(start, stop)
        return [
            block[self.offsets[i] - start :][:size].reshape(self.heights[i], self.widths[i])
            for i, size in zip(rows, sizes)
        ]


class ImageSpool:
    """Decoded images written to a scratch file as a source reads them, then read back as RaggedImages: a source
    of any size holds none of its images in memory. The file goes when the images that read it are gone."""

    def __init__(self, scratch: str | Path | None):
        handle, name = tempfile.mkstemp(prefix=".spool-", suffix=".npy", dir=scratch)
        os.close(handle)
        self.path = Path(name)
        self.writer = NpyAppender(self.path, ())
        self.shapes: list[tuple[int, int]] = []

    def add(self, grey: np.ndarray) -> None:
        self.shapes.append(grey.shape)
        self.writer.append(np.ravel(grey))

    def pixels(self) -> NpyRows:
        """Every pixel added, back to back, to be read: the spool takes no more."""
        self.writer.finish()
        pixels = NpyRows(self.path, "a scratch file of decoded images")
        # Every image read from the spool shares this reader; the scratch folder may have gone first.
        weakref.finalize(pixels, self.path.unlink, True)  # missing_ok
        return pixels

    def images(self) -> RaggedImages:
        """The images added, in order."""
        shapes = np.array(self.shapes, dtype=np.int64).reshape(-1, 2)
        sizes = shapes[:, 0] * shapes[:, 1]
        return RaggedImages(self.pixels(), shapes[:, 0], shapes[:, 1], np.cumsum(sizes) - sizes)


@dataclass
class RawDataset:
    """Grey images of varied sizes with their labels.

    images: 2-D uint8 arrays (a list, RaggedImages reading them from disk, or IndexedImages decoding them from
    their files); labels: indices into
    label_set.classes (N,), or (N, K) 0/1 attributes;
    usage: the split the source assigned ("" if none); source: where each image came from (file path or csv
    row), for error messages.
    """

    images: list | RaggedImages | IndexedImages
    labels: np.ndarray
    usage: list
    source: list
    label_set: LabelSet
    skipped: int = 0
    sixteen_bit: int = 0  # images read from 16-bit samples, scaled to 8 bits by their real depth

    def __post_init__(self):
        n = len(self.images)
        if not (len(self.labels) == len(self.usage) == len(self.source) == n):
            raise ValueError("RawDataset: images, labels, usage and source must have the same length")
        self.labels = self.label_set.head.label_array(self.labels)

    def __len__(self):
        return len(self.images)

    def subset(self, rows: np.ndarray, labels: np.ndarray, label_set: LabelSet) -> "RawDataset":
        """These rows (ascending indices), relabelled; the images are not read."""
        on_disk = isinstance(self.images, (RaggedImages, IndexedImages))
        images = self.images.subset(rows) if on_disk else [self.images[i] for i in rows]
        return RawDataset(
            images,
            labels,
            [self.usage[i] for i in rows],
            [self.source[i] for i in rows],
            label_set,
            self.skipped,
            self.sixteen_bit,
        )


def save(ds: RawDataset, out_dir: str | Path) -> None:
    if len(ds) == 0:
        raise FerError(f"{out_dir}: refusing to write an empty dataset")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if isinstance(ds.images, IndexedImages):
            _index_manifest(ds).to_csv(tmp / MANIFEST, index=False)
        else:
            with NpyAppender(tmp / PIXELS, ()) as pixels:
                shapes = np.empty((len(ds), 2), dtype=np.int64)
                for start in range(0, len(ds), SAVE_CHUNK):
                    for i, image in enumerate(ds.images[start : start + SAVE_CHUNK], start):
                        shapes[i] = image.shape
                        pixels.append(np.ravel(image))
            _manifest(ds, shapes).to_csv(tmp / MANIFEST, index=False)
        ds.label_set.save(tmp)


def _manifest(ds: RawDataset, shapes: np.ndarray) -> pd.DataFrame:
    sizes = shapes[:, 0] * shapes[:, 1]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return pd.DataFrame(
        {
            **ds.label_set.columns(ds.labels),
            "usage": ds.usage,
            "height": shapes[:, 0],
            "width": shapes[:, 1],
            "offset": offsets,
            "source": ds.source,
        }
    )


def _index_manifest(ds: RawDataset) -> pd.DataFrame:
    """The manifest of indexed files: its source column is where align reads each image."""
    images = ds.images
    if list(ds.source) != list(images.files):
        raise ValueError("rawdata.save: an indexed dataset's sources must be its files")
    return pd.DataFrame(
        {
            **ds.label_set.columns(ds.labels),
            "usage": ds.usage,
            "height": images.heights,
            "width": images.widths,
            HASH_COLUMN: images.hashes,
            "source": ds.source,
        }
    )


def read_manifest(path: Path, what: str, **read_csv_options) -> pd.DataFrame:
    """A stage's CSV manifest; a missing or unreadable file is one line naming it and what it should be."""
    path = existing_file(path, what)
    try:
        return pd.read_csv(path, keep_default_na=False, **read_csv_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FerError(f"{path}: not a readable CSV ({one_line(err)}); expected {what}") from None


def load(in_dir: str | Path) -> RawDataset:
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise FerError(
            f"{in_dir}: not found; expected the raw dataset folder of the fetch stage ({PIXELS} or an index of "
            f"image files, {MANIFEST} and its label set): run dvc repro fetch"
        )
    m = read_manifest(
        in_dir / MANIFEST,
        "the manifest of the fetched images (a CSV, one row per image)",
        dtype={"usage": str, "source": str, HASH_COLUMN: str},
    )
    heights, widths = m["height"].to_numpy(np.int64), m["width"].to_numpy(np.int64)
    if HASH_COLUMN in m:
        images = IndexedImages(m["source"].to_numpy(object), m[HASH_COLUMN].to_numpy(object), heights, widths)
    else:
        pixels = NpyRows(in_dir / PIXELS, "the fetched images (every pixel concatenated: a 1-D uint8 .npy array)")
        images = RaggedImages(pixels, heights, widths, m["offset"].to_numpy(np.int64))
    label_set = LabelSet.load(in_dir)
    return RawDataset(
        images, label_set.from_columns(m, str(in_dir / MANIFEST)), list(m["usage"]), list(m["source"]), label_set
    )
