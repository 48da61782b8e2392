"""Aligned and split datasets on disk: one image array plus a CSV manifest per folder.

The data stages stream these a chunk at a time (fer.core.arrays); training loads a split whole where it fits
the device, else reads its batches from the memory-mapped file.
"""

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.arrays import NpyAppender, NpyRows, chunk_rows
from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.core.storage import atomic_path, load_array
from fer.data.rawdata import MANIFEST, SPLITS, SYNTHETIC_SOURCE, TRAIN, read_manifest

IMAGES = "images.npy"
IMAGES_WHAT = "the images of a dataset folder (an (N, S, S) uint8 .npy array)"


def save_images(out_dir: str | Path, images: np.ndarray, manifest: pd.DataFrame, label_set: LabelSet) -> None:
    """Write (N, S, S) uint8 images with an N-row manifest holding label_set's columns, atomically."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        np.save(tmp / IMAGES, np.ascontiguousarray(images, dtype=np.uint8))
        save_manifest(tmp, len(images), manifest, label_set)


def save_manifest(folder: Path, n_images: int, manifest: pd.DataFrame, label_set: LabelSet) -> None:
    """The manifest and label set beside a folder's n_images images."""
    if n_images != len(manifest) or not set(label_set.column_names()) <= set(manifest):
        raise FerError(
            f"{folder}: need one manifest row with {label_set.task} labels per image "
            f"(got {n_images} images, {len(manifest)} rows)"
        )
    manifest.to_csv(folder / MANIFEST, index=False)
    label_set.save(folder)


def image_rows(in_dir: str | Path) -> NpyRows:
    """A dataset folder's images, to be read a chunk of rows at a time."""
    return NpyRows(Path(in_dir) / IMAGES, IMAGES_WHAT)


def load_manifest(in_dir: str | Path) -> pd.DataFrame:
    return read_manifest(Path(in_dir) / MANIFEST, "the manifest of a dataset folder (a CSV, one row per image)")


def load_images(in_dir: str | Path, mmap_mode: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """A dataset folder's images (read whole, or memory-mapped with mmap_mode "r") and manifest."""
    images = load_array(Path(in_dir) / IMAGES, IMAGES_WHAT, mmap_mode)
    return images, load_manifest(in_dir)


def save_splits(
    out_dir: str | Path,
    images: np.ndarray | NpyRows,
    manifest: pd.DataFrame,
    assignment: np.ndarray,
    label_set: LabelSet,
) -> None:
    """One sub-folder per split (SPLITS), each with its images and manifest rows, written as one atomic folder.

    The images (an array, or NpyRows on disk) are read once, a chunk at a time, each row appended to its split.
    """
    with atomic_path(out_dir) as tmp, contextlib.ExitStack() as files:
        writers = {}
        for name in SPLITS:
            (tmp / name).mkdir(parents=True)
            writers[name] = files.enter_context(NpyAppender(tmp / name / IMAGES, images.shape[1:]))
        step = chunk_rows(images)
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            for name, writer in writers.items():
                writer.append(chunk[assignment[start : start + len(chunk)] == name])
        files.close()
        for name in SPLITS:
            rows = np.flatnonzero(assignment == name)
            save_manifest(tmp / name, len(rows), manifest.iloc[rows].reset_index(drop=True), label_set)


def manifest_labels(folder: str | Path, manifest: pd.DataFrame) -> tuple[LabelSet, np.ndarray]:
    label_set = LabelSet.load(folder)
    return label_set, label_set.from_columns(manifest, str(Path(folder) / MANIFEST))


def load_labels(folder: str | Path) -> tuple[LabelSet, np.ndarray]:
    """(label set, labels) of a dataset folder, from its manifest alone (the images stay on disk)."""
    return manifest_labels(folder, load_manifest(folder))


def load_labelled(
    folder: str | Path, mmap_mode: str | None = None
) -> tuple[np.ndarray, pd.DataFrame, LabelSet, np.ndarray]:
    """(images, manifest, label set, labels) of a dataset folder; labels are (N,) int64 class indices, or
    (N, K) int8 0/1 attributes."""
    images, manifest = load_images(folder, mmap_mode)
    return images, manifest, *manifest_labels(folder, manifest)


def load_split(split_dir: str | Path, name: str, mmap_mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, S, S) uint8, labels) of one split; mmap_mode "r" leaves the images in their file."""
    images, _, _, labels = load_labelled(Path(split_dir) / name, mmap_mode)
    return images, labels


def split_label_set(split_dir: str | Path) -> LabelSet:
    """What the labels of a split folder mean (the train split's label set, the same in every split)."""
    return LabelSet.load(Path(split_dir) / TRAIN)


def training_data(split_dir: str | Path) -> dict:
    """What a model trained on this split saw: its data source ("synthetic" when every image is drawn by the
    synthetic source, else "dataset"; "unknown" without a source column), its images and their classes."""
    folder = Path(split_dir) / TRAIN
    manifest = load_manifest(folder)
    label_set, labels = manifest_labels(folder, manifest)
    if "source" not in manifest:
        source = "unknown"
    else:
        drawn = manifest["source"].astype(str).str.startswith(SYNTHETIC_SOURCE).all()
        source = "synthetic" if drawn else "dataset"
    return {"source": source, "images": len(manifest), "classes": label_set.counts(labels)}
