"""Local and Kaggle sources read every supported layout into the same RawDataset, by class name."""

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_PARAMS, files_and_bytes
from PIL import Image

from fer.core.emotions import EMOTIONS
from fer.core.errors import FerError
from fer.data.sources.kaggle import fetch_kaggle
from fer.data.sources.local import read_local

CSV_USAGES = ("Training", "PublicTest", "PrivateTest")

MAX_SIDE = REPO_PARAMS.data.max_side


def pixels_of_class(k: int, side: int = 48) -> str:
    return " ".join([str(10 * k)] * side * side)


def write_fer_csv(path: Path, columns=("emotion", "pixels", "Usage"), extra_rows: tuple = ()) -> Path:
    """One image per class, every pixel 10 * class, usages cycling Training/PublicTest/PrivateTest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        ",".join(
            {"emotion": str(k), "pixels": pixels_of_class(k), "Usage": CSV_USAGES[k % 3]}[c.strip()] for c in columns
        )
        for k in range(len(EMOTIONS))
    ]
    path.write_text("\n".join([",".join(columns), *rows, *extra_rows]) + "\n")
    return path


def save_image(path: Path, size: tuple[int, int], mode: str = "L", fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (90, 120, 200) if mode == "RGB" else 120
    Image.new(mode, size, colour).save(path, format=fmt)


def size_of_class(k: int) -> tuple[int, int]:
    """Class-specific (width, height), so labels can be checked through lossy jpg."""
    return 40 + k, 30 + 2 * k


def write_msambare_tree(root: Path, classes=EMOTIONS) -> Path:
    """train/<class>/ and test/<class>/ jpgs; each image's size encodes its class."""
    for split in ("train", "test"):
        for name in classes:
            k = EMOTIONS.index(name)
            for i in range(2):
                save_image(root / split / name / f"{i}.jpg", size_of_class(k))
    return root


def assert_sizes_match_labels(ds) -> None:
    for image, label in zip(ds.images, ds.labels):
        width, height = size_of_class(EMOTIONS.index(ds.label_set.classes[label]))
        assert image.shape == (height, width)


# ---- csv ------------------------------------------------------------------------------------


def test_csv_labels_usage_and_pixels(tmp_path):
    ds = read_local(write_fer_csv(tmp_path / "fer2013.csv"), "csv", MAX_SIDE)
    assert list(ds.labels) == list(range(7))
    assert ds.usage == ["train", "val", "test", "train", "val", "test", "train"]
    for k, image in enumerate(ds.images):
        assert image.shape == (48, 48) and image.dtype == np.uint8
        assert (image == 10 * k).all()
    assert ds.source[0].endswith("fer2013.csv:0")
    assert ds.skipped == 0


def test_icml_header_with_leading_spaces(tmp_path):
    # icml_face_data.csv's real header: "emotion, Usage, pixels".
    path = write_fer_csv(tmp_path / "icml_face_data.csv", columns=("emotion", " Usage", " pixels"))
    ds = read_local(path, "csv", MAX_SIDE)
    assert list(ds.labels) == list(range(7))
    assert ds.usage[1] == "val"


def test_csv_without_usage_column(tmp_path):
    path = tmp_path / "nousage.csv"
    path.write_text("emotion,pixels\n3," + pixels_of_class(3) + "\n")
    ds = read_local(path, "csv", MAX_SIDE)
    assert ds.usage == [""] and list(ds.labels) == [3]


@pytest.mark.parametrize(
    "bad_row",
    [
        "3,1 2 3,Training",  # too few pixels
        "3," + pixels_of_class(3)[:-1] + "x,Training",  # non-numeric pixel
        "3," + pixels_of_class(3)[:-2] + "256,Training",  # pixel out of range
        "9," + pixels_of_class(3) + ",Training",  # label outside 0..6
        "sad," + pixels_of_class(3) + ",Training",  # label not a number
    ],
)
def test_bad_csv_row_is_skipped_and_counted(tmp_path, bad_row):
    ds = read_local(write_fer_csv(tmp_path / "fer2013.csv", extra_rows=(bad_row,)), "csv", MAX_SIDE)
    assert len(ds) == 7 and ds.skipped == 1


def test_non_48_square_side_is_inferred(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("emotion,pixels\n" + "".join(f"{k},{pixels_of_class(k, side=64)}\n" for k in range(3)))
    ds = read_local(path, "csv", MAX_SIDE)
    assert [im.shape for im in ds.images] == [(64, 64)] * 3


def test_wrong_csv_columns_name_the_file(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(FerError, match=r"faces\.csv: expected columns emotion,pixels.*found label,image"):
        read_local(path, "csv", MAX_SIDE)


def test_folder_holding_one_csv(tmp_path):
    write_fer_csv(tmp_path / "fer2013" / "fer2013.csv")
    ds = read_local(tmp_path / "fer2013", "folder", MAX_SIDE)
    assert list(ds.labels) == list(range(7))


# ---- folders --------------------------------------------------------------------------------


def test_msambare_tree_labels_by_folder_name(tmp_path):
    ds = read_local(write_msambare_tree(tmp_path / "fer2013"), "folder", MAX_SIDE)
    assert len(ds) == 2 * 2 * 7 and ds.skipped == 0
    assert sorted(set(ds.usage)) == ["test", "train"]
    assert_sizes_match_labels(ds)
    assert ds.label_set.classes == EMOTIONS  # all seven folders: FER2013's canonical order
    assert all(EMOTIONS[label] == src.split("/")[-2] for label, src in zip(ds.labels, ds.source))


def test_class_folders_give_their_own_classes_in_the_canonical_order(tmp_path):
    ds = read_local(write_msambare_tree(tmp_path, classes=("surprise", "happy")), "folder", MAX_SIDE)
    assert ds.label_set.classes == ("happy", "surprise")
    assert sorted(set(ds.labels)) == [0, 1]
    assert_sizes_match_labels(ds)


def test_human_face_emotions_tree(tmp_path):
    save_image(tmp_path / "Angry" / "a.jpg", (300, 200), "RGB")
    save_image(tmp_path / "HAPPY" / "b.png", (50, 70), "L")
    save_image(tmp_path / "Surprised" / "c.png", (60, 40), "RGB")
    save_image(tmp_path / "fear" / "d.jpeg", (1000, 500), "RGB")  # oversized: downscaled
    (tmp_path / "Sad").mkdir()  # an empty class folder is a class without images (the fetch stage refuses it)
    (tmp_path / "Angry" / "notes.txt").write_text("not an image")
    (tmp_path / "HAPPY" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "HAPPY" / "Thumbs.db").write_bytes(b"\0\1")

    ds = read_local(tmp_path, "folder", max_side=128)
    assert ds.label_set.classes == ("angry", "fear", "happy", "sad", "surprise")
    by_label = {ds.label_set.classes[label]: image for label, image in zip(ds.labels, ds.images)}
    assert sorted(by_label) == ["angry", "fear", "happy", "surprise"]
    assert by_label["angry"].shape == (128 * 2 // 3, 128)
    assert by_label["happy"].shape == (70, 50)
    assert by_label["surprise"].shape == (40, 60)
    assert by_label["fear"].shape == (64, 128)
    assert all(image.ndim == 2 and image.dtype == np.uint8 for image in ds.images)
    assert set(ds.usage) == {""} and ds.skipped == 0


def test_exif_rotated_photo_is_turned_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: stored rotated by 90 degrees
    path = tmp_path / "happy" / "phone.jpg"
    path.parent.mkdir()
    Image.new("RGB", (60, 40)).save(path, exif=exif)
    assert read_local(tmp_path, "folder", MAX_SIDE).images[0].shape == (60, 40)


def test_corrupt_image_is_counted_skip(tmp_path):
    write_msambare_tree(tmp_path, classes=("happy",))
    (tmp_path / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    assert len(ds) == 4 and ds.skipped == 1


def test_decompression_bomb_is_counted_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save_image(tmp_path / "happy" / "small.png", (20, 20))
    save_image(tmp_path / "happy" / "warns.png", (40, 40))  # over the limit: PIL only warns
    save_image(tmp_path / "happy" / "bomb.png", (100, 100))  # over twice the limit: PIL raises
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    assert len(ds) == 1 and ds.skipped == 2


def test_a_class_folder_beyond_the_emotions_is_a_class_after_them(tmp_path):
    write_msambare_tree(tmp_path, classes=("happy",))
    save_image(tmp_path / "train" / "Contempt" / "0.png", (10, 10))
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    assert ds.label_set.classes == ("happy", "contempt")
    assert [ds.label_set.classes[label] for label, src in zip(ds.labels, ds.source) if "Contempt" in src] == [
        "contempt"
    ]


@pytest.mark.parametrize(
    "make_empty",
    [
        lambda root: root.mkdir(),  # nothing at all
        lambda root: (root / "happy").mkdir(parents=True),  # only empty class folders
        lambda root: (root / "angry").mkdir(parents=True) or (root / "angry" / "x.txt").write_text("hi"),
    ],
)
def test_dataset_without_images_names_the_path(tmp_path, make_empty):
    root = tmp_path / "empty"
    make_empty(root)
    with pytest.raises(FerError, match=r"/empty: no (FER data found|readable images)"):
        read_local(root, "folder", MAX_SIDE)


@pytest.mark.parametrize("kind", ["csv", "folder", "zip"])
def test_missing_path_names_the_path(tmp_path, kind):
    with pytest.raises(FerError, match=f"nowhere: not found; expected a .*{kind}"):
        read_local(tmp_path / "nowhere", kind, MAX_SIDE)


# ---- zip ------------------------------------------------------------------------------------


def zip_tree(tree: Path, archive: Path, prefix: str) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                zf.write(file, f"{prefix}/{file.relative_to(tree).as_posix()}")
    return archive


def test_zip_with_extra_top_level_folder(tmp_path):
    tree = write_msambare_tree(tmp_path / "tree", classes=("angry", "neutral"))
    archive = zip_tree(tree, tmp_path / "archive.zip", prefix="fer2013")
    ds = read_local(archive, "zip", MAX_SIDE)
    assert len(ds) == 8
    assert_sizes_match_labels(ds)
    assert ds.source[0].startswith(f"{archive}/fer2013/")


@pytest.fixture
def temp_inside(tmp_path, monkeypatch):
    """tempfile's folder moved under tmp_path, so that anything extracted through tempfile shows up there."""
    (tmp_path / "temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))


def test_zip_member_escaping_is_kept_inside(tmp_path, temp_inside):
    # A zip is read in place: a member named ../happy/escaped.png is neither an image of the dataset, nor a way
    # to read the real file it names beside the archive, nor written anywhere (tempfile's folder included).
    archive = tmp_path / "in" / "evil.zip"
    archive.parent.mkdir()
    save_image(tmp_path / "happy" / "escaped.png", (12, 12))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../happy/escaped.png", png_bytes())
        zf.writestr("happy/../../escaped.png", png_bytes())  # inside a class folder, it still leads out of it
        zf.writestr("happy/0.png", png_bytes())
    before = files_and_bytes(tmp_path)
    ds = read_local(archive, "zip", MAX_SIDE)
    assert ds.source == [f"{archive}/happy/0.png"] and ds.label_set.classes == ("happy",)
    del ds  # its decoded pixels wait in a scratch file (fer.data.rawdata.ImageSpool) until the dataset goes
    assert files_and_bytes(tmp_path) == before


def test_not_a_zip(tmp_path):
    path = tmp_path / "data.zip"
    path.write_text("plain text")
    with pytest.raises(FerError, match="data.zip: not a valid zip file"):
        read_local(path, "zip", MAX_SIDE)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (12, 12), 7).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- kaggle ---------------------------------------------------------------------------------


@pytest.fixture
def kagglehub(monkeypatch):
    """kagglehub with the network probe stubbed out, so tests never touch the internet."""
    kagglehub = pytest.importorskip("kagglehub")
    import requests

    monkeypatch.setattr(requests, "head", lambda *args, **kwargs: None)
    return kagglehub


def test_kaggle_reads_downloaded_tree(tmp_path, monkeypatch, kagglehub):
    tree = write_msambare_tree(tmp_path / "versions" / "1", classes=("disgust", "sad"))
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle: str(tree))
    ds = fetch_kaggle("msambare/fer2013", MAX_SIDE)
    assert len(ds) == 8 and sorted(set(ds.usage)) == ["test", "train"]
    assert_sizes_match_labels(ds)


def test_kaggle_offline_gives_one_actionable_error(monkeypatch, kagglehub):
    import requests

    def offline(handle):
        raise requests.ConnectionError("Failed to resolve 'api.kaggle.com'\nmore detail")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(FerError) as caught:
        fetch_kaggle("someone/faces", MAX_SIDE)
    message = str(caught.value)
    assert "someone/faces" in message and "Failed to resolve" in message and "more detail" not in message
    assert "KAGGLE_USERNAME" in message and "data.source" in message


def test_sixteen_bit_images_are_scaled_by_their_depth_and_counted(tmp_path):
    (tmp_path / "happy").mkdir()
    for name in ("deep.png", "deep.pgm"):  # 16-bit grey; PIL opens the PGM (maxval 65535) as 32-bit mode "I"
        Image.fromarray(np.full((48, 48), 30000, np.uint16)).save(tmp_path / "happy" / name)
    save_image(tmp_path / "happy" / "plain.png", (48, 48))
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    for name in ("deep.png", "deep.pgm"):
        deep = ds.images[ds.source.index(f"{tmp_path}/happy/{name}")]
        assert (deep == round(30000 / 257)).all(), name  # not clipped to white, nor refused as 32-bit
    assert ds.sixteen_bit == 2 and ds.skipped == 0


def test_32_bit_integer_and_float_images_are_skipped_and_counted(tmp_path):
    (tmp_path / "happy").mkdir()
    # 32-bit samples have no one scale to 0..255 (TIFF opens them as PIL modes "I" and "F").
    Image.fromarray(np.full((48, 48), 70000, np.int32)).save(tmp_path / "happy" / "integer.tif")
    Image.fromarray(np.full((48, 48), 0.5, np.float32)).save(tmp_path / "happy" / "float.tif")
    save_image(tmp_path / "happy" / "plain.png", (48, 48))
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    assert ds.source == [f"{tmp_path}/happy/plain.png"] and ds.skipped == 2 and ds.sixteen_bit == 0


def test_jfif_is_read_and_an_unreadable_avif_is_counted(tmp_path):
    (tmp_path / "happy").mkdir()
    save_image(tmp_path / "happy" / "photo.jfif", (48, 48), fmt="JPEG")
    (tmp_path / "happy" / "broken.avif").write_bytes(b"\0\0\0\x1cftypavif not really")
    ds = read_local(tmp_path, "folder", MAX_SIDE)
    assert len(ds) == 1 and ds.skipped == 1


def test_a_zip_bomb_is_refused_from_its_directory_and_nothing_is_extracted(tmp_path, temp_inside):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("happy/0.png", png_bytes())
        zf.writestr("happy/huge.png", bytes(64 * 2**20))  # 64 MB of zeros in ~64 kB
    before = files_and_bytes(tmp_path)
    with pytest.raises(FerError, match=r"bomb.zip: member happy/huge.png expands 67108864 bytes from \d+, over 100x"):
        read_local(archive, "zip", MAX_SIDE)
    assert files_and_bytes(tmp_path) == before
