"""CelebA's Kaggle layout, written and read back; the drawn attribute faces; `fer synthetic-celeba`."""

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO_PARAMS
from sklearn.linear_model import LogisticRegression

from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.data.sources.celeba import read_celeba, write_celeba_layout
from fer.data.sources.local import read_local
from fer.data.sources.synthetic import ATTRIBUTE_PREVALENCE, ATTRIBUTES, generate, generate_attributes

REPO = Path(__file__).resolve().parents[1]
N_FACES = 40
KAGGLE_IMAGES = "img_align_celeba/img_align_celeba"
ATTRIBUTES_CSV, PARTITION_CSV = "list_attr_celeba.csv", "list_eval_partition.csv"

MAX_SIDE = REPO_PARAMS.data.max_side


@pytest.fixture(scope="module")
def faces():
    return generate_attributes(N_FACES, 48, 1)


@pytest.fixture(scope="module")
def layout(faces, tmp_path_factory):
    folder = tmp_path_factory.mktemp("written") / "celeba"
    write_celeba_layout(faces, folder, seed=2)
    return folder


@pytest.fixture
def celeba(layout, tmp_path) -> Path:
    """A copy of the written layout, for a test to change."""
    return Path(shutil.copytree(layout, tmp_path / "celeba"))


def partition_usages(folder: Path) -> list[str]:
    """Each image's split as list_eval_partition.csv gives it, read here without read_celeba."""
    return [("train", "val", "test")[p] for p in pd.read_csv(folder / PARTITION_CSV)["partition"]]


def image_names(n: int) -> list[str]:
    return [f"{i:06d}.jpg" for i in range(1, n + 1)]


def edit_csv(file: Path, change) -> None:
    """Rewrite the csv as change(table) returns it (cells as strings)."""
    change(pd.read_csv(file, dtype=str, keep_default_na=False)).to_csv(file, index=False)


def test_written_files_are_kaggles_layout(faces, layout):
    attributes = pd.read_csv(layout / ATTRIBUTES_CSV, dtype={"image_id": str})
    assert list(attributes.columns) == ["image_id", *ATTRIBUTES]
    assert attributes["image_id"].tolist() == image_names(N_FACES)
    assert np.array_equal(attributes[list(ATTRIBUTES)].to_numpy(), np.where(faces.labels == 1, 1, -1))
    assert sorted(p.name for p in (layout / KAGGLE_IMAGES).iterdir()) == image_names(N_FACES)
    # round(0.1 * 40) images each for val and test, picked at random rather than the last ones
    assert Counter(partition_usages(layout)) == {"train": 32, "val": 4, "test": 4}
    assert partition_usages(layout)[-8:] != ["val"] * 4 + ["test"] * 4


def test_written_layout_reads_back_with_the_same_attributes_and_usages(faces, layout):
    ds = read_celeba(layout, "shown", max_side=256)
    assert ds.label_set == LabelSet("attributes", ATTRIBUTES)
    assert np.array_equal(ds.labels, faces.labels)
    assert ds.usage == partition_usages(layout)
    assert ds.source == [f"shown/{KAGGLE_IMAGES}/{name}" for name in image_names(N_FACES)]
    assert ds.skipped == 0
    # JPEG at quality 95 changes a pixel by a grey level or two on average, never the picture
    difference = np.abs(np.stack(ds.images).astype(int) - np.stack(faces.images))
    assert difference.mean() < 4


def test_a_single_img_align_celeba_folder_reads_through_read_local(faces, celeba):
    (celeba / KAGGLE_IMAGES).rename(celeba / "images")
    (celeba / "img_align_celeba").rmdir()
    (celeba / "images").rename(celeba / "img_align_celeba")
    ds = read_local(celeba, "folder", MAX_SIDE)
    assert np.array_equal(ds.labels, faces.labels)
    assert ds.usage == partition_usages(celeba)
    assert ds.source[0] == f"{celeba}/img_align_celeba/000001.jpg"


def test_a_zip_of_the_layout_in_a_wrapper_folder_reads_in_place(faces, layout, tmp_path):
    archive = tmp_path / "celeba.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(layout.rglob("*")):
            if file.is_file():
                zipped.write(file, f"archive/{file.relative_to(layout).as_posix()}")
    ds = read_local(archive, "zip", MAX_SIDE)
    assert np.array_equal(ds.labels, faces.labels)
    assert ds.usage == partition_usages(layout)
    assert ds.source[0] == f"{archive}/archive/{KAGGLE_IMAGES}/000001.jpg"


def test_without_a_partition_file_no_image_has_a_split(faces, celeba):
    (celeba / PARTITION_CSV).unlink()
    ds = read_celeba(celeba, str(celeba), max_side=256)
    assert ds.usage == [""] * N_FACES
    assert np.array_equal(ds.labels, faces.labels)


def test_an_image_left_out_of_the_partition_file_has_no_split(celeba):
    usages = partition_usages(celeba)
    edit_csv(celeba / PARTITION_CSV, lambda table: table.drop(index=4))
    assert read_celeba(celeba, str(celeba), max_side=256).usage == [*usages[:4], "", *usages[5:]]


def test_missing_and_undecodable_images_are_counted_as_skipped(faces, celeba):
    (celeba / KAGGLE_IMAGES / "000003.jpg").unlink()
    (celeba / KAGGLE_IMAGES / "000005.jpg").write_bytes(b"not a jpeg")
    ds = read_celeba(celeba, "shown", max_side=256)
    kept = [i for i in range(N_FACES) if i not in (2, 4)]
    assert ds.skipped == 2
    assert np.array_equal(ds.labels, faces.labels[kept])
    assert ds.source == [f"shown/{KAGGLE_IMAGES}/{image_names(N_FACES)[i]}" for i in kept]


def set_cell(row: int, column: str, value: str):
    def change(table):
        table.loc[row, column] = value
        return table

    return change


BAD_INPUTS = {
    "value 0": (
        ATTRIBUTES_CSV,
        set_cell(2, "Mustache", "0"),
        r"list_attr_celeba.csv: image_id 000003.jpg \(row 3\), column Mustache holds '0'; expected 1 or -1",
    ),
    "empty value": (
        ATTRIBUTES_CSV,
        set_cell(0, "Bangs", ""),
        r"list_attr_celeba.csv: image_id 000001.jpg \(row 1\), column Bangs holds ''; expected 1 or -1",
    ),
    "no image_id": (
        ATTRIBUTES_CSV,
        lambda table: table.rename(columns={"image_id": "file"}),
        r"list_attr_celeba.csv: no image_id column \(found file,Bangs,",
    ),
    "no attributes": (
        ATTRIBUTES_CSV,
        lambda table: table[["image_id"]],
        r"list_attr_celeba.csv: no attribute columns; ",
    ),
    "partition 3": (
        PARTITION_CSV,
        set_cell(1, "partition", "3"),
        r"list_eval_partition.csv: image_id 000002.jpg \(row 2\) has partition '3'; "
        r"expected 0 \(train\), 1 \(val\) or 2 \(test\)",
    ),
    "partition twice": (
        PARTITION_CSV,
        set_cell(1, "image_id", "000001.jpg"),
        r"list_eval_partition.csv: image_id 000001.jpg is listed twice",
    ),
    "no partition column": (
        PARTITION_CSV,
        lambda table: table[["image_id"]],
        r"list_eval_partition.csv: no partition column",
    ),
}


@pytest.mark.parametrize("file, change, message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_tables_are_one_line_errors_naming_file_and_cell(celeba, file, change, message):
    edit_csv(celeba / file, change)
    with pytest.raises(FerError, match=f"^{re.escape(str(celeba))}/{message}") as raised:
        read_local(celeba, "folder", MAX_SIDE)
    assert "\n" not in str(raised.value)


def test_no_images_folder_is_a_one_line_error(celeba):
    shutil.rmtree(celeba / "img_align_celeba")
    expected = (
        f"^{re.escape(str(celeba))}: no img_align_celeba/ folder beside list_attr_celeba.csv; expected the "
        "images in img_align_celeba/img_align_celeba/"
    )
    with pytest.raises(FerError, match=expected) as raised:
        read_local(celeba, "folder", MAX_SIDE)
    assert "\n" not in str(raised.value)


# ---- the drawn attribute faces -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_and_test():
    return generate_attributes(1200, 48, 1), generate_attributes(400, 48, 2)


def test_attribute_faces_are_deterministic_in_the_seed():
    a, b, other = (generate_attributes(30, 48, seed) for seed in (4, 4, 5))
    assert np.array_equal(np.stack(a.images), np.stack(b.images)) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(np.stack(a.images), np.stack(other.images))
    assert a.label_set == LabelSet("attributes", ATTRIBUTES)
    assert {im.shape for im in a.images} == {(48, 48)} and a.images[0].dtype == np.uint8
    assert a.usage == [""] * 30 and a.source[:2] == ["synthetic:0", "synthetic:1"]
    assert {im.shape for im in generate_attributes(3, 64, 0).images} == {(64, 64)}


def test_attribute_prevalences_are_near_their_targets(train_and_test):
    shown = train_and_test[0].labels.mean(axis=0)
    assert np.abs(shown - np.array(list(ATTRIBUTE_PREVALENCE.values()))).max() < 0.04


def test_attributes_are_visible_yet_not_all_linear(train_and_test):
    """A logistic regression on (2x downscaled) pixels beats the majority class on every attribute, clearly on
    glasses and smiles; but pose and identity keep it from getting them all right."""
    train, test = train_and_test

    def pixels(ds):
        x = np.stack(ds.images).astype(np.float32).reshape(len(ds), 24, 2, 24, 2).mean((2, 4)).reshape(len(ds), -1)
        return (x - x.mean(axis=1, keepdims=True)) / 255

    train_pixels, test_pixels = pixels(train), pixels(test)
    accuracy, majority = {}, {}
    for k, name in enumerate(ATTRIBUTES):
        model = LogisticRegression(C=0.3, max_iter=500).fit(train_pixels, train.labels[:, k])
        accuracy[name] = model.score(test_pixels, test.labels[:, k])
        majority[name] = max(test.labels[:, k].mean(), 1 - test.labels[:, k].mean())
    assert all(accuracy[name] >= majority[name] for name in ATTRIBUTES), (accuracy, majority)
    assert accuracy["Eyeglasses"] > majority["Eyeglasses"] + 0.04, (accuracy, majority)
    assert accuracy["Smiling"] > majority["Smiling"] + 0.03, (accuracy, majority)
    assert min(accuracy.values()) < 0.9, accuracy


def test_expression_faces_are_unchanged():
    """generate's output before the renderer was shared with the attribute faces: its labels exactly, and its
    images by their means (exact pixels may differ by a rounding between CPUs' float paths)."""
    ds = generate(300, 48, 1, photo=False)
    assert hashlib.sha256(ds.labels.astype("<i8").tobytes()).hexdigest() == (
        "1578d5d0992b878eab3b645884a0eb8b7c8fa67cf7b72d385441c637eea88d2e"
    )
    means = np.stack(ds.images)[:12].mean(axis=(1, 2))
    assert np.allclose(
        means, [123.59, 95.57, 121.16, 93.09, 116.42, 69.24, 124.01, 79.03, 131.53, 92.92, 123.02, 168.51], atol=0.02
    )


def test_cli_writes_a_layout_that_reads_back(tmp_path):
    out = tmp_path / "celeba"
    done = subprocess.run(
        [sys.executable, "-m", "fer.cli", "synthetic-celeba", str(out), "--images", "50"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: 50 synthetic 48x48 faces") and done.stdout.count("\n") == 1
    ds = read_local(out, "folder", MAX_SIDE)
    assert len(ds) == 50 and ds.label_set.classes == ATTRIBUTES
    assert np.array_equal(ds.labels, generate_attributes(50, 48, 0).labels)
    assert Counter(ds.usage) == {"train": 40, "val": 5, "test": 5}
