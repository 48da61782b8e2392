"""The one on-disk format every source produces and every later stage reads.

Images of any size are stored as one ragged array (all pixels concatenated, grey uint8) plus a CSV
manifest with one row per image, because DVC handles a few large files far better than thousands of
small ones.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.errors import FerError, one_line
from fer.core.labels import LabelSet
from fer.core.storage import atomic_path, existing_file, load_array

PIXELS = "pixels.npy"
MANIFEST = "manifest.csv"
USAGES = ("train", "val", "test", "")  # "" = no split given by the source
SYNTHETIC_SOURCE = "synthetic:"  # the `source` of a drawn face (fer.data.sources.synthetic): this, then its index


@dataclass
class RawDataset:
    """Grey images of varied sizes with their labels.

    images: list of 2-D uint8 arrays; labels: indices into label_set.classes (N,), or (N, K) 0/1 attributes;
    usage: the split the source assigned ("" if none); source: where each image came from (file path or csv
    row), for error messages.
    """

    images: list
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
        if not self.label_set.multi_label:
            self.labels = np.asarray(self.labels, np.int64).reshape(n)
        else:
            self.labels = np.asarray(self.labels, np.int8).reshape(n, len(self.label_set.classes))

    def __len__(self):
        return len(self.images)


def save(ds: RawDataset, out_dir: str | Path) -> None:
    if len(ds) == 0:
        raise FerError(f"{out_dir}: refusing to write an empty dataset")
    shapes = np.array([im.shape for im in ds.images], dtype=np.int64).reshape(-1, 2)
    sizes = shapes[:, 0] * shapes[:, 1]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    manifest = pd.DataFrame({
        **ds.label_set.columns(ds.labels),
        "usage": ds.usage,
        "height": shapes[:, 0],
        "width": shapes[:, 1],
        "offset": offsets,
        "source": ds.source,
    })
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        np.save(tmp / PIXELS, np.concatenate([np.ascontiguousarray(im, np.uint8).ravel() for im in ds.images]))
        manifest.to_csv(tmp / MANIFEST, index=False)
        ds.label_set.save(tmp)


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
        raise FerError(f"{in_dir}: not found; expected the raw dataset folder of the fetch stage ({PIXELS}, "
                       f"{MANIFEST} and its label set): run dvc repro fetch")
    pixels = load_array(in_dir / PIXELS, "the fetched images (every pixel concatenated: a 1-D uint8 .npy array)",
                        mmap_mode="r")
    m = read_manifest(in_dir / MANIFEST, "the manifest of the fetched images (a CSV, one row per image)",
                      dtype={"usage": str, "source": str})
    label_set = LabelSet.load(in_dir)
    images = [
        np.asarray(pixels[o:o + h * w]).reshape(h, w)
        for o, h, w in zip(m["offset"], m["height"], m["width"])
    ]
    return RawDataset(images, label_set.from_columns(m, str(in_dir / MANIFEST)), list(m["usage"]), list(m["source"]),
                      label_set)
