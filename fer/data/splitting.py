"""Train/val/test assignment: stratified with a seed, or the source's own usage; duplicates never straddle.

Strata are class indices, or None where there is nothing to stratify by (the attributes task): a seeded random
split then.
"""

import hashlib

import numpy as np
from sklearn.model_selection import train_test_split

from fer.core.errors import FerError
from fer.data.rawdata import SPLITS, TEST, TRAIN, VAL


def duplicate_groups(images) -> np.ndarray:
    """For each image (of an array, or NpyRows read a chunk at a time), the index of the first image with
    identical pixels (itself if unique)."""
    first_seen: dict[bytes, int] = {}
    owner = np.empty(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        digest = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()
        owner[i] = first_seen.setdefault(digest, i)
    return owner


def _stratified(indices: np.ndarray, strata: np.ndarray | None, held_out: int, seed: int):
    """Split `indices` into (rest, held_out) with `held_out` images held out, stratified by class."""
    try:
        return train_test_split(
            indices, test_size=held_out, random_state=seed, stratify=None if strata is None else strata[indices]
        )
    except ValueError as err:
        counts = np.bincount(strata[indices]) if strata is not None else [len(indices)]
        present = {k: int(c) for k, c in enumerate(counts) if c}
        raise FerError(
            f"split: cannot stratify the images per class index {present} ({err}); "
            "every class needs a few images (at least 10 is safe)"
        ) from None


def stratified_assignment(
    strata: np.ndarray | None, owner: np.ndarray, val: float, test: float, seed: int
) -> np.ndarray:
    """Split unique images stratified by label; each duplicate follows the image it copies."""
    unique = np.flatnonzero(owner == np.arange(len(owner)))
    rest, test_idx = _stratified(unique, strata, round(test * len(unique)), seed)
    train_idx, val_idx = _stratified(rest, strata, round(val * len(unique)), seed)
    assignment = np.empty(len(owner), dtype=object)
    for name, idx in zip(SPLITS, (train_idx, val_idx, test_idx)):
        assignment[idx] = name
    return assignment[owner]


def original_assignment(
    usage: np.ndarray, strata: np.ndarray | None, owner: np.ndarray, val: float, seed: int
) -> np.ndarray:
    """Keep the source's own split (FER2013 Training/PublicTest/PrivateTest, CelebA's list_eval_partition).

    Sources that ship only train/test (msambare) get a stratified val carved out of train. Where
    exact copies sit in several splits, only those in the earliest split (train, val, test) are kept;
    the others are marked "" so no image is in two splits.
    """
    usage = np.asarray(usage, dtype=object)
    if not np.isin(usage, SPLITS).all():
        raise FerError(
            "split.strategy=original: the source has images without a train/test usage; "
            "use split.strategy=stratified for this dataset"
        )
    if TEST not in usage:
        raise FerError("split.strategy=original: the source defines no test images; use stratified")
    assignment = usage.copy()
    if VAL not in usage:
        train = np.flatnonzero(usage == TRAIN)
        _, val_idx = _stratified(train, strata, round(val * len(train)), seed)
        assignment[val_idx] = VAL
    rank = np.array([SPLITS.index(a) for a in assignment])
    earliest = np.full(len(rank), len(SPLITS))
    np.minimum.at(earliest, owner, rank)
    assignment[rank > earliest[owner]] = ""
    return assignment
