"""The align stage's output, written as the crops come: the aligned images, their manifest and the sample grid.

Only one batch of raw images and its crops are in memory at a time, however large the dataset.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer.core.arrays import NpyAppender
from fer.core.errors import FerError
from fer.core.params import AlignParams
from fer.core.storage import atomic_path
from fer.data.aligning import align_batches
from fer.data.datasets import IMAGES, save_manifest
from fer.data.faces import Detector
from fer.data.rawdata import RawDataset
from fer.data.sample_grid import save_sample_grid


@dataclass
class AlignCounts:
    kept: int
    detected: int
    registered: int


def write_aligned(
    raw: RawDataset, detect: Detector | None, p: AlignParams, out_dir: str | Path, samples_path: str | Path
) -> AlignCounts:
    """Align every raw image into out_dir (images, manifest, label set) and draw p.samples before/after pairs."""
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
