"""The align stage's output, written as the crops come: the aligned images, their manifest and the sample grid.

Only one batch of raw images and its crops are in memory at a time, however large the dataset.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.arrays import NpyAppender
from fer.core.errors import FerError
from fer.core.malloc import map_large_blocks
from fer.core.params import AlignParams
from fer.core.storage import atomic_path
from fer.data.aligning import align_batches
from fer.data.datasets import IMAGES, save_manifest
from fer.data.faces import Detector
from fer.data.rawdata import RawDataset
from fer.data.sample_grid import save_sample_grid

# MTCNN over batches of photos of many sizes: with glibc's own rising threshold the stage's peak grew batch after
# batch (1.17 -> 1.44 GB over five batches of 256 photos; the same batch repeated stayed flat). Measured on
# full-size Human Face Emotions (59,099 photos, docs/data-scale.md): 128 kB 1022 s and 1.14 GB, 8 MB 749-805 s and
# 1.67-1.75 GB, 16 MB 672 s and 1.90 GB; glibc's own mode runs as fast as 32 MB fixed but peaks at 1.7 GB already
# on a tenth of the photos. 8 MB: as fast as before streaming (786 s) and under the 2 GB the data stages are held
# to.
MMAP_THRESHOLD_BYTES = 8 * 2**20


@dataclass
class AlignCounts:
    kept: int
    detected: int
    registered: int


def write_aligned(
    raw: RawDataset, detect: Detector | None, p: AlignParams, out_dir: str | Path, samples_path: str | Path
) -> AlignCounts:
    """Align every raw image into out_dir (images, manifest, label set) and draw p.samples before/after pairs."""
    map_large_blocks(MMAP_THRESHOLD_BYTES)
    kept = np.zeros(len(raw), dtype=bool)
    detected = np.zeros(len(raw), dtype=bool)
    registered = 0
    before, after, faces = [], [], []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        with NpyAppender(tmp / IMAGES, (p.size, p.size)) as images:
            start = 0
            for batch in align_batches(raw.images, detect, p, progress=True):
                n = len(batch.faces)
                kept[start : start + n], detected[start : start + n] = batch.kept, batch.detected
                registered += int(batch.registered.sum())
                images.append(batch.images)
                rows = np.flatnonzero(batch.kept)[: p.samples - len(before)]
                before += [raw.images[start + i] for i in rows]
                after += list(batch.images[: len(rows)])
                faces += [batch.faces[i] for i in rows]
                start += n
        if not kept.any():
            raise FerError(
                f"align: no face found in any of {len(raw)} images (align.method={p.method}); "
                "try align.on_miss=resize or align.method=resize"
            )
        manifest = pd.DataFrame(
            {
                **raw.label_set.columns(raw.labels),
                "usage": raw.usage,
                "source": raw.source,
                "detected": detected,
            }
        )[kept].reset_index(drop=True)
        save_manifest(tmp, int(kept.sum()), manifest, raw.label_set)
    save_sample_grid(before, np.stack(after), samples_path, p.samples, faces=faces)
    return AlignCounts(int(kept.sum()), int(detected.sum()), registered)
