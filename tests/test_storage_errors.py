"""A missing or corrupt stage output stops a stage with one line naming the file and what it should hold, never
with a library's traceback (json, numpy) that names neither."""

import re

import numpy as np
import pandas as pd
import pytest

from fer.core.errors import FerError
from fer.core.labels import FER2013, LabelSet
from fer.core.storage import read_json
from fer.data import rawdata
from fer.data.datasets import load_images, load_manifest, save_images


def raises_one_line(match: str):
    """pytest.raises(FerError) whose message matches and is a single line."""
    return pytest.raises(FerError, match=re.compile(f"^[^\n]*{match}[^\n]*$"))


@pytest.fixture
def dataset_folder(tmp_path):
    folder = tmp_path / "split" / "train"
    save_images(folder, np.zeros((2, 8, 8), np.uint8), pd.DataFrame({"label": [0, 1]}), FER2013)
    return folder


@pytest.fixture
def raw_folder(tmp_path):
    folder = tmp_path / "raw"
    rawdata.save(rawdata.RawDataset([np.zeros((4, 6), np.uint8)], [3], [""], ["a.png"], FER2013), folder)
    return folder


def test_a_missing_json_file_is_named_with_what_it_should_be(tmp_path):
    with raises_one_line("champion.json: not found; expected the champion record"):
        read_json(tmp_path / "champion.json", "the champion record")


@pytest.mark.parametrize("content", ['{"name": "cnn",', "", "\xff\xfe"])
def test_a_malformed_json_file_is_named_with_what_it_should_be(tmp_path, content):
    path = tmp_path / "champion.json"
    path.write_bytes(content.encode("latin-1"))
    with raises_one_line("champion.json: not valid JSON .*; expected the champion record"):
        read_json(path, "the champion record")


def corrupt(path, how: str) -> None:
    """Damage a .npy file the ways a killed copy or a wrong file would."""
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-10], "empty": b"", "text": b"not an array\n"}[how])


@pytest.mark.parametrize("how", ["truncated", "empty", "text"])
def test_corrupt_dataset_images_are_named_with_what_they_should_be(dataset_folder, how):
    corrupt(dataset_folder / "images.npy", how)
    with raises_one_line("train/images.npy: not a readable .npy array .*expected the images of a dataset folder"):
        load_images(dataset_folder)


def test_a_dataset_folder_without_its_files_names_each(dataset_folder):
    (dataset_folder / "manifest.csv").unlink()
    with raises_one_line("train/manifest.csv: not found; expected the manifest of a dataset folder"):
        load_manifest(dataset_folder)
    (dataset_folder / "images.npy").unlink()
    with raises_one_line("train/images.npy: not found; expected the images of a dataset folder"):
        load_images(dataset_folder)


def test_a_missing_raw_folder_is_named_with_what_it_should_be(tmp_path):
    with raises_one_line("nowhere: not found; expected the raw dataset folder of the fetch stage"):
        rawdata.load(tmp_path / "nowhere")


@pytest.mark.parametrize("how", ["truncated", "empty", "text"])
def test_corrupt_raw_pixels_are_named_with_what_they_should_be(raw_folder, how):
    corrupt(raw_folder / "pixels.npy", how)
    with raises_one_line("raw/pixels.npy: not a readable .npy array .*expected the fetched images"):
        rawdata.load(raw_folder)


def test_intact_files_still_load(dataset_folder, raw_folder):
    images, manifest = load_images(dataset_folder)
    assert images.shape == (2, 8, 8) and list(manifest["label"]) == [0, 1]
    raw = rawdata.load(raw_folder)
    assert raw.images[0].shape == (4, 6) and list(raw.labels) == [3]


@pytest.mark.parametrize("content", [b"", b"label\n\xff\xfe\x00\n", b'label,"unclosed\n1,2\n'])
def test_a_corrupt_manifest_is_named_with_what_it_should_be(dataset_folder, content):
    (dataset_folder / "manifest.csv").write_bytes(content)
    with raises_one_line("train/manifest.csv: not a readable CSV .*expected the manifest of a dataset folder"):
        load_manifest(dataset_folder)


@pytest.mark.parametrize("content", ["[]", '{"task": "expression"}'])
def test_a_label_set_without_task_and_classes_is_named(dataset_folder, content):
    (dataset_folder / "labels.json").write_text(content)
    with raises_one_line("train/labels.json: expected a JSON object with 'task' and 'classes'"):
        LabelSet.load(dataset_folder)


def test_a_corrupt_raw_manifest_is_named_with_what_it_should_be(raw_folder):
    (raw_folder / "manifest.csv").write_bytes(b"")
    with raises_one_line("raw/manifest.csv: not a readable CSV .*expected the manifest of the fetched images"):
        rawdata.load(raw_folder)
