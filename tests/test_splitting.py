import numpy as np
import pytest

from fer.core.errors import FerError
from fer.data.splitting import duplicate_groups, original_assignment, stratified_assignment


def _distinct_images(n, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)


def test_stratified_split_is_80_10_10_per_class_and_repeatable():
    labels = np.repeat(np.arange(7), [100, 20, 100, 200, 100, 80, 100])
    owner = duplicate_groups(_distinct_images(len(labels)))
    a = stratified_assignment(labels, owner, 0.1, 0.1, seed=3)
    b = stratified_assignment(labels, owner, 0.1, 0.1, seed=3)
    assert (a == b).all()
    assert (a != stratified_assignment(labels, owner, 0.1, 0.1, seed=4)).any()
    for k in range(7):
        n = (labels == k).sum()
        assert abs((a[labels == k] == "test").sum() - n * 0.1) <= 1
        assert abs((a[labels == k] == "val").sum() - n * 0.1) <= 1


def test_exact_duplicates_never_straddle_splits():
    images = _distinct_images(700)
    labels = np.arange(700) % 7
    images[600:] = images[:100]  # 100 copies, same labels
    owner = duplicate_groups(images)
    assert (owner[600:] == np.arange(100)).all()
    a = stratified_assignment(labels, owner, 0.1, 0.1, seed=0)
    assert (a[600:] == a[:100]).all()


def test_original_usage_kept_and_val_carved_from_train_when_missing():
    n = 700
    labels = np.arange(n) % 7
    usage = np.array(["train"] * 560 + ["test"] * 140, dtype=object)
    a = original_assignment(usage, labels, duplicate_groups(_distinct_images(n)), val=0.1, seed=0)
    assert (a[560:] == "test").all()
    assert (a[:560] == "val").sum() == 56
    assert set(a) == {"train", "val", "test"}


def test_original_drops_test_copies_of_training_images():
    images = _distinct_images(30)
    images[25] = images[0]
    labels = np.arange(30) % 3
    usage = np.array(["train"] * 20 + ["val"] * 5 + ["test"] * 5, dtype=object)
    a = original_assignment(usage, labels, duplicate_groups(images), val=0.1, seed=0)
    assert a[25] == "" and a[0] == "train"
    assert (a[26:] == "test").all()


def test_original_needs_usage_and_stratified_needs_enough_per_class():
    labels = np.arange(14) % 7
    owner = np.arange(14)
    with pytest.raises(FerError, match="split.strategy=original"):
        original_assignment(np.array([""] * 14, dtype=object), labels, owner, 0.1, 0)
    with pytest.raises(FerError, match="cannot stratify"):
        stratified_assignment(labels, owner, 0.1, 0.1, 0)
