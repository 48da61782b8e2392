"""CelebA in the layout of the Kaggle dataset jessicali9530/celeba-dataset: the attributes task.

list_attr_celeba.csv: image_id, then one column per attribute holding 1 (shown) or -1 (not);
list_eval_partition.csv (optional): image_id, partition 0/1/2 = train/val/test; the images in
img_align_celeba/img_align_celeba/ (Kaggle nests the folder twice) or in a single img_align_celeba/.
write_celeba_layout writes the same layout, so that the reader and the pipeline can run on drawn faces.
"""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fer.core.errors import FerError, one_line
from fer.core.labels import LabelSet
from fer.core.storage import atomic_path
from fer.data.rawdata import SPLITS, RawDataset
from fer.data.sources.files import decode_all

ATTRIBUTES_FILE = "list_attr_celeba.csv"
PARTITION_FILE = "list_eval_partition.csv"
IMAGES_FOLDER = "img_align_celeba"
ID_COLUMN = "image_id"
PARTITION_COLUMN = "partition"
JPEG_QUALITY = 95


def read_celeba(folder: Path | zipfile.Path, shown_as: str, max_side: int, scratch: Path | None = None) -> RawDataset:
    """The images list_attr_celeba.csv names, in its row order, each attribute 1 where the file says 1, else 0.

    A listed image that is missing or cannot be decoded is counted in `skipped`: the full set is large, and a
    few lost files should not stop it. `folder` may be a zip's folder (zipfile.Path); sources are reported
    under `shown_as`; decoded images wait on disk in `scratch` (fer.data.sources.files.decode_all).
    """
    images_folder, images_shown = find_images_folder(folder, shown_as)
    attributes_shown = f"{shown_as}/{ATTRIBUTES_FILE}"
    table = read_table(folder / ATTRIBUTES_FILE, attributes_shown)
    image_ids = id_column(table, attributes_shown)
    names = [column for column in table.columns if column != ID_COLUMN]
    if not names:
        raise FerError(
            f"{attributes_shown}: no attribute columns; expected {ID_COLUMN} followed by one column "
            "per attribute (5_o_Clock_Shadow, ..., Young) holding 1 or -1"
        )
    labels = attribute_labels(table[names], image_ids, attributes_shown)
    usage = read_usage(folder, shown_as, image_ids)

    files = [file if file.is_file() else None for file in (images_folder / image_id for image_id in image_ids)]
    images, kept, sixteen_bit = decode_all(files, max_side, scratch)
    return RawDataset(
        images,
        labels[kept],
        [usage[row] for row in kept],
        [f"{images_shown}/{image_ids[row]}" for row in kept],
        LabelSet("attributes", tuple(names)),
        skipped=len(image_ids) - len(kept),
        sixteen_bit=sixteen_bit,
    )


def find_images_folder(folder: Path | zipfile.Path, shown_as: str) -> tuple[Path | zipfile.Path, str]:
    """img_align_celeba/img_align_celeba/ where Kaggle's double nesting is kept, else img_align_celeba/."""
    outer = folder / IMAGES_FOLDER
    if not outer.is_dir():
        raise FerError(
            f"{shown_as}: no {IMAGES_FOLDER}/ folder beside {ATTRIBUTES_FILE}; expected the images in "
            f"{IMAGES_FOLDER}/{IMAGES_FOLDER}/ (as Kaggle ships them) or {IMAGES_FOLDER}/"
        )
    inner = outer / IMAGES_FOLDER
    if inner.is_dir():
        return inner, f"{shown_as}/{IMAGES_FOLDER}/{IMAGES_FOLDER}"
    return outer, f"{shown_as}/{IMAGES_FOLDER}"


def read_table(file: Path | zipfile.Path, shown_as: str) -> pd.DataFrame:
    """The csv with its cells as pandas reads them: numbers where a column holds only numbers, else strings
    (never NaN: an empty cell stays "", so that a bad cell can be quoted as it is)."""
    try:
        with file.open("rb") as stream:
            table = pd.read_csv(stream, keep_default_na=False, dtype={ID_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FerError(f"{shown_as}: not a readable csv ({one_line(err)})") from None
    table.columns = table.columns.str.strip()
    return table


def id_column(table: pd.DataFrame, shown_as: str) -> list[str]:
    if ID_COLUMN not in table.columns:
        raise FerError(
            f"{shown_as}: no {ID_COLUMN} column (found {','.join(table.columns[:5])}); expected "
            f"{ID_COLUMN} followed by the attribute columns"
        )
    return table[ID_COLUMN].str.strip().tolist()


def attribute_labels(values: pd.DataFrame, image_ids: list[str], shown_as: str) -> np.ndarray:
    """(N, K) int8: 1 where a cell holds 1, 0 where it holds -1; any other cell is an error naming it."""
    numbers = values.apply(pd.to_numeric, errors="coerce")
    bad = np.argwhere(~numbers.isin([-1, 1]).to_numpy())
    if len(bad):
        row, column = bad[0]
        raise FerError(
            f"{shown_as}: image_id {image_ids[row]} (row {row + 1}), column {values.columns[column]} "
            f"holds {str(values.iat[row, column])!r}; expected 1 or -1"
        )
    return (numbers.to_numpy() == 1).astype(np.int8)


def read_usage(folder: Path | zipfile.Path, shown_as: str, image_ids: list[str]) -> list[str]:
    """Each image's split from list_eval_partition.csv; "" for every image without the file, or not in it."""
    file = folder / PARTITION_FILE
    if not file.is_file():
        return [""] * len(image_ids)
    partition_shown = f"{shown_as}/{PARTITION_FILE}"
    table = read_table(file, partition_shown)
    partition_ids = pd.Series(id_column(table, partition_shown))
    if PARTITION_COLUMN not in table.columns:
        raise FerError(
            f"{partition_shown}: no {PARTITION_COLUMN} column; expected {ID_COLUMN},{PARTITION_COLUMN} "
            "with partition 0 (train), 1 (val) or 2 (test)"
        )
    numbers = pd.to_numeric(table[PARTITION_COLUMN], errors="coerce")
    bad = np.flatnonzero(~numbers.isin([0, 1, 2]).to_numpy())
    if len(bad):
        row = bad[0]
        raise FerError(
            f"{partition_shown}: image_id {partition_ids[row]} (row {row + 1}) has partition "
            f"{str(table[PARTITION_COLUMN].iat[row])!r}; expected 0 (train), 1 (val) or 2 (test)"
        )
    repeated = partition_ids[partition_ids.duplicated()]
    if len(repeated):
        raise FerError(
            f"{partition_shown}: image_id {repeated.iat[0]} is listed twice; expected one partition per image"
        )
    # Partitions 0, 1, 2 are the splits train, val, test, in that order.
    usage_of_id = pd.Series(np.array(SPLITS)[numbers.to_numpy(np.int64)], index=partition_ids)
    return pd.Series(image_ids).map(usage_of_id).fillna("").tolist()


def write_celeba_layout(
    dataset: RawDataset, folder: str | Path, seed: int = 0, val: float = 0.1, test: float = 0.1
) -> None:
    """Write an attributes dataset in Kaggle's CelebA layout, all at once (atomically): JPEGs 000001.jpg, ...
    in img_align_celeba/img_align_celeba/, their attributes as 1/-1, and a seeded random partition giving
    round(val * n) images to val, round(test * n) to test and the rest to train."""
    if dataset.label_set.task != "attributes":
        raise ValueError(f"write_celeba_layout: a dataset of the {dataset.label_set.task} task has no attributes")
    image_ids = [f"{i:06d}.jpg" for i in range(1, len(dataset) + 1)]
    attributes = pd.DataFrame(np.where(dataset.labels == 1, 1, -1), columns=list(dataset.label_set.classes))
    attributes.insert(0, ID_COLUMN, image_ids)
    partition = pd.DataFrame({ID_COLUMN: image_ids, PARTITION_COLUMN: random_partition(len(dataset), seed, val, test)})
    with atomic_path(folder) as tmp:
        images_folder = tmp / IMAGES_FOLDER / IMAGES_FOLDER
        images_folder.mkdir(parents=True)
        for image_id, image in zip(image_ids, dataset.images):
            Image.fromarray(image).save(images_folder / image_id, quality=JPEG_QUALITY)
        attributes.to_csv(tmp / ATTRIBUTES_FILE, index=False)
        partition.to_csv(tmp / PARTITION_FILE, index=False)


def random_partition(n_images: int, seed: int, val: float, test: float) -> np.ndarray:
    """0 (train), 1 (val) or 2 (test) per image, round(val * n) and round(test * n) of them picked at random."""
    n_val, n_test = round(val * n_images), round(test * n_images)
    partition = np.zeros(n_images, np.int64)
    order = np.random.default_rng(seed).permutation(n_images)
    partition[order[:n_val]] = 1
    partition[order[n_val : n_val + n_test]] = 2
    return partition
