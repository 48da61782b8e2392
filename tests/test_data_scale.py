"""The data stages hold a chunk of images at a time: their peak memory does not grow with the dataset."""

import shutil

import numpy as np
import pytest
from conftest import REPO

from fer.core.arrays import NpyAppender, NpyRows
from fer.core.labels import FER2013
from fer.data import rawdata
from fer.data.subset import limit_images
from fer.tools.bench_data import run_stage

SMALL, LARGE = 2_000, 20_000
SIDE = 96  # 20,000 raw images of 96x96 are 184 MB: a stage holding them all would stand out
# What may grow with ten times the images: the manifest, labels and split assignment (a few MB).
MARGIN_BYTES = 30 * 2**20


def raw_project(folder, n: int):
    """A project whose fetch output holds n distinct grey images of varied sizes, with FER2013 labels."""
    rng = np.random.default_rng(n)
    images = [rng.integers(0, 256, (SIDE - i % 7, SIDE), dtype=np.uint8) for i in range(n)]
    labels = np.arange(n) % len(FER2013.classes)
    rawdata.save(
        rawdata.RawDataset(images, labels, [""] * n, [f"drawn:{i}" for i in range(n)], FER2013),
        folder / "outputs" / "raw",
    )
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    return folder


@pytest.mark.parametrize("stages", [("align", "split")])
def test_align_and_split_peak_memory_stays_flat_when_the_data_grows_tenfold(tmp_path, stages):
    peaks = {}
    for n in (SMALL, LARGE):
        project = raw_project(tmp_path / str(n), n)
        peaks[n] = {stage: run_stage(project, stage)[1] for stage in stages}
    for stage in stages:
        grown = peaks[LARGE][stage] - peaks[SMALL][stage]
        assert grown < MARGIN_BYTES, f"{stage}: peak grew by {grown / 2**20:.0f} MB from {SMALL} to {LARGE} images"


def test_max_images_keeps_each_class_share_in_source_order():
    n = 1000
    labels = np.repeat(np.arange(7), [400, 20, 150, 130, 100, 100, 100])
    images = [np.full((2, 2), i % 256, np.uint8) for i in range(n)]
    dataset = rawdata.RawDataset(images, labels, [""] * n, [str(i) for i in range(n)], FER2013)
    subset = limit_images(dataset, 100, seed=0)
    assert len(subset) == 100
    assert np.bincount(subset.labels, minlength=7).tolist() == [40, 2, 15, 13, 10, 10, 10]
    rows = [int(s) for s in subset.source]
    assert rows == sorted(rows) and all(subset.labels[k] == labels[r] for k, r in enumerate(rows))
    assert limit_images(dataset, 0, seed=0) is dataset and limit_images(dataset, n, seed=0) is dataset
    assert limit_images(dataset, 100, seed=1).source != subset.source


def test_a_streamed_npy_file_is_what_np_save_writes_and_reads_back_by_rows(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (1001, 12, 10), dtype=np.uint8)
    np.save(tmp_path / "saved.npy", images)
    with NpyAppender(tmp_path / "streamed.npy", (12, 10)) as streamed:
        for start in range(0, len(images), 100):
            streamed.append(images[start : start + 100])
    assert (tmp_path / "streamed.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    rows = NpyRows(tmp_path / "streamed.npy", "test images")
    assert len(rows) == 1001 and np.array_equal(rows[995:2000], images[995:])
    assert np.array_equal(np.stack(list(rows)), images)


def test_raw_images_read_back_whole_sliced_and_subset(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (5 + i % 4, 7 - i % 3), dtype=np.uint8) for i in range(50)]
    labels = np.arange(50) % len(FER2013.classes)
    rawdata.save(rawdata.RawDataset(images, labels, [""] * 50, [str(i) for i in range(50)], FER2013), tmp_path / "raw")
    loaded = rawdata.load(tmp_path / "raw")
    assert all(np.array_equal(a, b) for a, b in zip(loaded.images[0:50], images))
    assert np.array_equal(loaded.images[-1], images[-1])
    rows = np.array([3, 4, 40])
    picked = loaded.subset(rows, labels[rows], FER2013)
    assert all(np.array_equal(a, images[r]) for a, r in zip(picked.images[0:3], rows))
    assert picked.source == ["3", "4", "40"]
