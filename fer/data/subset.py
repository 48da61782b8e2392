"""data.max_images: a smaller dataset for a quick first run, each class keeping its share."""

import numpy as np

from fer.core.errors import FerError
from fer.data.rawdata import RawDataset


def limit_images(dataset: RawDataset, max_images: int, seed: int) -> RawDataset:
    """At most max_images images of dataset (0: all), in dataset's order: drawn per class in the classes' shares
    (expression labels), or at random (attributes, several labels per image); seeded. No image is read."""
    if max_images == 0 or len(dataset) <= max_images:
        return dataset
    # Here, not at the top: sklearn takes ~1 s and 80 MB to import, which a full fetch does not need.
    from sklearn.model_selection import train_test_split

    strata = dataset.labels if dataset.labels.ndim == 1 else None
    try:
        rows, _ = train_test_split(np.arange(len(dataset)), train_size=max_images, random_state=seed, stratify=strata)
    except ValueError as err:
        raise FerError(
            f"data.max_images={max_images}: cannot keep every class's share of the "
            f"{len(dataset)} images ({err}); raise it, or set 0 for all images"
        ) from None
    rows = np.sort(rows)
    return dataset.subset(rows, dataset.labels[rows], dataset.label_set)
