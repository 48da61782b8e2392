"""Align a whole dataset: find each image's largest face, register it, a batch at a time.

`align_batches` yields the crops batch by batch, so that the align stage can write them as they come and
hold one batch of images at a time; `align_all` collects them, for callers that want them all in memory.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from fer.core.arrays import read_ahead
from fer.core.params import AlignParams
from fer.data.faces import Detector, Face, align_face, resize_only


@dataclass
class AlignedBatch:
    faces: list  # the Face aligned for each input of the batch, or None
    kept: np.ndarray  # (n,) bool: the input is in `images`
    registered: np.ndarray  # (n,) bool: the input was aligned on its landmarks (not just its box)
    images: np.ndarray  # (kept.sum(), size, size) uint8, in input order

    @property
    def detected(self) -> np.ndarray:
        return np.array([face is not None for face in self.faces], dtype=bool)


@dataclass
class AlignResult:
    images: np.ndarray  # (kept.sum(), size, size) uint8, in input order
    detected: np.ndarray  # (N,) bool: a face was found in input i
    registered: np.ndarray  # (N,) bool: input i was aligned on its landmarks (not just its box)
    kept: np.ndarray  # (N,) bool: input i is in `images`
    faces: list  # (N,) the Face aligned for input i, or None


def align_batches(
    images: Sequence[np.ndarray], detect: Detector | None, p: AlignParams, progress: bool = False
) -> Iterator[AlignedBatch]:
    """Register every image: with no detector resize each whole; otherwise align each image's largest face.

    Images go to `detect` p.batch_size at a time; the next batch is read (for indexed files: decoded, on every
    core) while the detector works on this one. An image without a face is resized as is (p.on_miss="resize")
    or left out ("drop"). `progress` shows a progress bar on stderr.
    """

    def read(start: int) -> list[np.ndarray]:
        return [np.asarray(image) for image in images[start : start + p.batch_size]]

    with tqdm(total=len(images), desc="align", unit="img", disable=not progress) as bar:
        for batch in read_ahead(read, range(0, len(images), p.batch_size)):
            yield _aligned(batch, detect, p)
            bar.update(len(batch))


def _aligned(batch: list[np.ndarray], detect: Detector | None, p: AlignParams) -> AlignedBatch:
    found: list[Face | None] = [None] * len(batch)
    if detect is not None:
        found = [faces[0] if faces else None for faces in detect(batch)]
    kept = np.array([face is not None or detect is None or p.on_miss == "resize" for face in found], dtype=bool)
    registered = np.array(
        [face is not None and p.crop == "landmarks" and face.landmarks is not None for face in found], dtype=bool
    )
    aligned = [
        align_face(gray, face, p.size, p.margin, p.crop) if face is not None else resize_only(gray, p.size)
        for gray, face, keep in zip(batch, found, kept)
        if keep
    ]
    images = np.stack(aligned) if aligned else np.zeros((0, p.size, p.size), dtype=np.uint8)
    return AlignedBatch(found, kept, registered, images)


def align_all(
    images: Sequence[np.ndarray], detect: Detector | None, p: AlignParams, progress: bool = False
) -> AlignResult:
    """align_batches' crops and flags over all the images, in memory."""
    batches = list(align_batches(images, detect, p, progress))
    if not batches:
        empty = np.zeros(0, dtype=bool)
        return AlignResult(np.zeros((0, p.size, p.size), dtype=np.uint8), empty, empty, empty, [])
    return AlignResult(
        images=np.concatenate([b.images for b in batches]),
        detected=np.concatenate([b.detected for b in batches]),
        registered=np.concatenate([b.registered for b in batches]),
        kept=np.concatenate([b.kept for b in batches]),
        faces=[face for b in batches for face in b.faces],
    )
