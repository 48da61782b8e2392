"""Reading image files from a folder tree or a zip's members (zipfile.Path), shared by the local sources."""

import zipfile
from pathlib import Path

from PIL import Image

from fer.data.photos import BadPhoto, Decoded, decode_image

# No face photo needs more pixels than this: larger images are counted skips, refused from the header before
# any pixel is decoded, so a decompression bomb cannot exhaust memory. (Checked here rather than by setting
# PIL's process-wide Image.MAX_IMAGE_PIXELS, which would change every other reader in the process.)
MAX_IMAGE_PIXELS = 40_000_000

# Every suffix PIL knows (.jfif and .avif included): such a file is read, or counted as a skip if it cannot be;
# other files (notes.txt, Thumbs.db) are not images and are passed over.
IMAGE_SUFFIXES = frozenset(Image.registered_extensions())


def visible_children(folder: Path | zipfile.Path) -> list:
    """Entries by name, minus hidden ones and macOS zip litter (__MACOSX/, ._* resource forks)."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))), key=lambda p: p.name)


def files_under(folder: Path | zipfile.Path) -> list:
    """Every visible file below folder, in path order (Path.rglob, which a zip's members lack before Python 3.12).
    Hidden entries are skipped as in visible_children, and with them a zip member's `..` components, which
    zipfile.Path shows as a folder named `..` inside the class folder."""
    files = []
    for entry in visible_children(folder):
        files += files_under(entry) if entry.is_dir() else [entry]
    return files


def load_grey(file: Path | zipfile.Path, max_side: int) -> Decoded | None:
    """The image as grey uint8 with its longer side at most max_side; None if it cannot be decoded."""
    try:
        with file.open("rb") as stream:
            return decode_image(stream, str(file), MAX_IMAGE_PIXELS, max_side)
    except BadPhoto:
        return None
