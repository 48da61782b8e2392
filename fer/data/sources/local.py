"""Read a FER dataset from a local csv, folder tree or zip, in whichever public layout it comes.

Layouts: fer2013.csv / icml_face_data.csv (emotion, pixels[, Usage]), whose classes are FER2013's 7 emotions;
msambare/fer2013 trees (train/<class>/*.jpg, test/<class>/*.jpg) and Human Face Emotions trees (<Class>/* of any
size and colour), whose classes are their folders; a folder holding one such csv; CelebA (list_attr_celeba.csv
beside img_align_celeba/, the attributes task); a zip of any of these, possibly wrapped in an extra folder.
"""

import math
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from fer.core.emotions import EMOTIONS, class_name, default_order
from fer.core.errors import FerError, one_line
from fer.core.labels import FER2013, LabelSet
from fer.core.params import MIN_IMAGE_SIDE
from fer.data.rawdata import TEST, TRAIN, VAL, ImageSpool, RaggedImages, RawDataset
from fer.data.sources.celeba import ATTRIBUTES_FILE, read_celeba
from fer.data.sources.files import IMAGE_SUFFIXES, decode_all, files_under, visible_children

# A zip is read member by member, never extracted, so a killed fetch leaves nothing behind; these refuse a zip
# bomb from its directory before any member is inflated. (Real datasets: images barely compress, fer2013.csv
# about 3x; a bomb expands a thousandfold.)
MAX_UNZIPPED_BYTES = 4 * 2**30
MAX_ZIP_RATIO = 100

# Split names as they appear in csv Usage columns and as split folders, lower-cased.
USAGE_NAMES = {
    "training": TRAIN,
    "train": TRAIN,
    "publictest": VAL,
    "validation": VAL,
    "valid": VAL,
    "val": VAL,
    "privatetest": TEST,
    "testing": TEST,
    "test": TEST,
}

LAYOUTS = (
    f"train/<class>/ and test/<class>/ folders, <class>/ folders of images, one .csv file, or CelebA's "
    f"{ATTRIBUTES_FILE} with its images"
)
EXPECTED = {
    "csv": "a .csv file",
    "folder": f"a folder holding {LAYOUTS}",
    "zip": f"a .zip file holding {LAYOUTS}",
}

PIXEL_BLOCK_ROWS = 1024  # keeps parse_pixel_block's temporaries near 100 MB
NEWLINE, SPACE, ZERO = ord("\n"), ord(" "), ord("0")


def read_local(path: str | Path, kind: str, max_side: int, scratch: Path | None = None) -> RawDataset:
    """Read `path` as `kind` ("csv", "folder" or "zip"); images come back grey, at most max_side wide/high.

    Decoded image files wait on disk in `scratch` (None: the system's temp folder), not in memory."""
    if kind not in EXPECTED:
        raise FerError(f"data.source: unknown local source {kind!r}; expected csv, folder or zip")
    path = Path(path)
    if not (path.is_dir() if kind == "folder" else path.is_file()):
        raise FerError(f"{path}: not found; expected {EXPECTED[kind]}")
    if kind == "csv":
        dataset = read_csv(path, str(path), scratch)
    elif kind == "zip":
        dataset = read_zip(path, max_side, scratch)
    else:
        dataset = FolderReader(path, str(path), max_side, scratch).read()
    if len(dataset) == 0:
        raise FerError(f"{path}: no readable images ({dataset.skipped} skipped); expected {EXPECTED[kind]}")
    return dataset


def read_zip(path: Path, max_side: int, scratch: Path | None) -> RawDataset:
    try:
        with zipfile.ZipFile(path) as archive:
            check_unzipped_size(archive, path)
            # zipfile.Path walks the members like folders; a member's declared size bounds what it inflates to.
            return FolderReader(zipfile.Path(archive), str(path), max_side, scratch).read()
    except zipfile.BadZipFile as err:
        raise FerError(f"{path}: not a valid zip file ({err})") from None


def check_unzipped_size(archive: zipfile.ZipFile, path: Path) -> None:
    members = archive.infolist()
    total = sum(member.file_size for member in members)
    if total > MAX_UNZIPPED_BYTES:
        raise FerError(
            f"{path}: unpacks to {total} bytes, over the {MAX_UNZIPPED_BYTES}-byte limit; expected a "
            "FER dataset (split it, or use data.source: folder)"
        )
    for member in members:
        if member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1):
            raise FerError(
                f"{path}: member {member.filename} expands {member.file_size} bytes from "
                f"{member.compress_size}, over {MAX_ZIP_RATIO}x (a zip bomb?); expected a FER dataset"
            )


class FolderReader:
    """Work out which layout a folder tree holds and collect its images.

    `root` is a Path or a zipfile.Path (a zip's members, read in place); sources are reported under `shown_as`,
    the user's path.
    """

    def __init__(self, root: Path | zipfile.Path, shown_as: str, max_side: int, scratch: Path | None):
        self.root, self.shown_as, self.max_side, self.scratch = root, shown_as, max_side, scratch
        self.files, self.class_names, self.usage = [], [], []
        self.class_folders: set[str] = set()

    def read(self) -> RawDataset:
        return self.read_layout(self.root)

    def shown(self, path: Path) -> str:
        relative = PurePosixPath(str(path)).relative_to(PurePosixPath(str(self.root))).as_posix()
        return self.shown_as if relative == "." else f"{self.shown_as}/{relative}"

    def read_layout(self, folder: Path) -> RawDataset:
        children = visible_children(folder)
        subdirs = [p for p in children if p.is_dir()]
        csvs = [p for p in children if p.is_file() and p.suffix.lower() == ".csv"]
        if any(p.name == ATTRIBUTES_FILE for p in csvs):
            return read_celeba(folder, self.shown(folder), self.max_side, self.scratch)
        if any(d.name.lower() in USAGE_NAMES for d in subdirs):
            self.read_splits(folder, subdirs)
            return self.collected()
        if len(subdirs) > 1 or any(class_name(d.name) in EMOTIONS for d in subdirs):
            self.read_class_folders(folder, usage="")
            return self.collected()
        if len(csvs) == 1 and not subdirs:
            return read_csv(csvs[0], self.shown(csvs[0]), self.scratch)
        if len(subdirs) == 1 and not csvs:
            # A lone wrapper folder, e.g. archive.zip -> fer2013/train/...
            return self.read_layout(subdirs[0])
        several = f" (found {len(csvs)} .csv files: point data.path at one)" if len(csvs) > 1 else ""
        raise FerError(f"{self.shown(folder)}: no FER data found{several}; expected {LAYOUTS}")

    def collected(self) -> RawDataset:
        """The images found, labelled by their class folders: emotions in the canonical order, then the others.

        A class folder without a readable image is still a class (fer.data.classes refuses it unless data.classes
        leaves it out)."""
        classes = default_order(self.class_folders)
        index = {name: k for k, name in enumerate(classes)}
        images, rows, sixteen_bit = decode_all(self.files, self.max_side, self.scratch)
        return RawDataset(
            images,
            [index[self.class_names[i]] for i in rows],
            [self.usage[i] for i in rows],
            [self.shown(self.files[i]) for i in rows],
            LabelSet("expression", tuple(classes)),
            len(self.files) - len(rows),
            sixteen_bit,
        )

    def read_splits(self, folder: Path, subdirs: list[Path]) -> None:
        for split in subdirs:
            usage = USAGE_NAMES.get(split.name.lower())
            if usage is None:
                raise FerError(
                    f"{self.shown(folder)}: unexpected folder '{split.name}' beside the split "
                    "folders; expected only train/, val/ and test/"
                )
            self.read_class_folders(split, usage)

    def read_class_folders(self, folder: Path, usage: str) -> None:
        for class_dir in (p for p in visible_children(folder) if p.is_dir()):
            name = class_name(class_dir.name)
            self.class_folders.add(name)
            for file in files_under(class_dir):
                if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                    self.files.append(file)
                    self.class_names.append(name)
                    self.usage.append(usage)


def read_csv(file: Path | zipfile.Path, shown_as: str, scratch: Path | None) -> RawDataset:
    """fer2013.csv-style table; malformed rows are skipped and counted, sources are "<file>:<row>".

    Read PIXEL_BLOCK_ROWS rows at a time, their pixel values parsed into a spool in `scratch`, so that memory
    holds one block of the file however long it is."""
    spool, counts, labels, usage = ImageSpool(scratch), [], [], []
    try:
        with file.open("rb") as stream:
            for table in pd.read_csv(stream, dtype=str, keep_default_na=False, chunksize=PIXEL_BLOCK_ROWS):
                found = ",".join(table.columns)
                # icml_face_data.csv writes " Usage" and " pixels".
                table.columns = table.columns.str.strip().str.lower()
                if not {"emotion", "pixels"} <= set(table.columns):
                    raise FerError(f"{shown_as}: expected columns emotion,pixels[,Usage], found {found}")
                values, block_counts = parse_pixel_block(table["pixels"].tolist())
                spool.add(values.reshape(1, -1))
                counts.append(block_counts)
                labels.append(pd.to_numeric(table["emotion"].str.strip(), errors="coerce").to_numpy())
                usage += csv_usage(table, shown_as)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise FerError(f"{shown_as}: not a readable csv ({one_line(err)})") from None
    counts = np.concatenate(counts) if counts else np.empty(0, np.int64)
    labels = np.concatenate(labels) if labels else np.empty(0)
    side = square_side(counts, shown_as)
    keep = (counts > 0) & (counts == side * side) & np.isin(labels, range(len(EMOTIONS)))
    rows = np.flatnonzero(keep)
    # The spool holds every well-formed row's values back to back: an image of side x side at its row's start.
    starts = np.cumsum(counts) - counts
    images = RaggedImages(spool.pixels(), np.full(len(rows), side), np.full(len(rows), side), starts[rows])
    return RawDataset(
        images,
        labels[rows].astype(np.int64),
        [usage[i] for i in rows],
        [f"{shown_as}:{i}" for i in rows],
        FER2013,
        skipped=len(counts) - len(rows),
    )


def parse_pixel_block(rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Values of the block's well-formed rows, concatenated, and each row's value count (0 if malformed),
    vectorised over the raw bytes (Python parsing takes minutes).

    A row is well-formed when it holds only digits and spaces and every number is 0..255.
    """
    # Each row, newline included, is one segment starting at its leading newline. A newline inside a
    # quoted field would shift every later row, so it is made a stray byte instead.
    text = np.frombuffer("".join("\n" + row.replace("\n", "?") for row in rows).encode() + b"\n", np.uint8)
    row_starts = np.flatnonzero(text == NEWLINE)[:-1]
    is_digit = (text >= ZERO) & (text <= ZERO + 9)
    stray = ~is_digit & (text != SPACE) & (text != NEWLINE)
    four_digits = is_digit[3:] & is_digit[2:-1] & is_digit[1:-2] & is_digit[:-3]
    ends_number = np.append(is_digit[:-1] & ~is_digit[1:], False)

    # Non-digits count as 0, so a 1- or 2-digit number's missing leading digits add nothing; the
    # hundreds digit only counts if the tens is a digit, else it belongs to the previous number.
    digits = np.where(is_digit, text - ZERO, 0).astype(np.int16)
    last = np.flatnonzero(ends_number)
    value = digits[last] + 10 * digits[last - 1] + 100 * digits[last - 2] * is_digit[last - 1]

    counts = np.add.reduceat(ends_number, row_starts, dtype=np.int64)
    row_of_number = np.repeat(np.arange(len(rows)), counts)
    malformed = np.logical_or.reduceat(stray, row_starts) | np.logical_or.reduceat(
        np.append(four_digits, [False] * 3), row_starts
    )
    malformed[row_of_number[value > 255]] = True
    counts[malformed] = 0
    return value[~malformed[row_of_number]].astype(np.uint8), counts


def square_side(counts: np.ndarray, shown_as: str) -> int:
    """Image side of the file, from its most common row length (48 for FER2013, but not assumed)."""
    lengths, frequency = np.unique(counts[counts > 0], return_counts=True)
    if len(lengths) == 0:
        return 0
    length = int(lengths[np.argmax(frequency)])
    side = math.isqrt(length)
    if side * side != length or side < MIN_IMAGE_SIDE:
        raise FerError(
            f"{shown_as}: pixel rows hold {length} values; expected a square image of at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} (48x48 = 2304 for FER2013)"
        )
    return side


def csv_usage(table: pd.DataFrame, shown_as: str) -> list[str]:
    if "usage" not in table.columns:
        return [""] * len(table)
    names = table["usage"].str.strip().str.lower()
    unknown = sorted(set(names) - set(USAGE_NAMES) - {""})
    if unknown:
        raise FerError(
            f"{shown_as}: unknown Usage value(s) {', '.join(unknown[:5])}; expected Training, PublicTest or PrivateTest"
        )
    return [USAGE_NAMES.get(name, "") for name in names]
