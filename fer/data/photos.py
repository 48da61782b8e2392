"""Read an uploaded or local photo as a grey array, refusing what is not a safe, reasonable image."""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer.core.errors import FerError


class BadPhoto(FerError):
    """A photo we refuse; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def decode_photo(data: bytes, name: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """(H, W) uint8 grey, upright as the camera's EXIF orientation says; limits from params `predict:`."""
    if len(data) > max_bytes:
        raise BadPhoto(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit", 413)
    try:
        with Image.open(io.BytesIO(data)) as image:
            # The header gives the size before any pixel is decoded: refuse bombs before they expand.
            if image.width * image.height > max_pixels:
                raise BadPhoto(f"{name}: {image.width}x{image.height} pixels is over the {max_pixels}-pixel limit",
                               413)
            grey = ImageOps.exif_transpose(image).convert("L")
    except UnidentifiedImageError:
        raise BadPhoto(f"{name}: not an image PIL can read (JPEG, PNG, WebP, BMP, ...)", 415) from None
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as err:  # truncated or corrupt
        raise BadPhoto(f"{name}: unreadable image ({err})", 415) from None
    return np.asarray(grey, dtype=np.uint8)


def read_photo(path: str | Path, max_bytes: int, max_pixels: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise BadPhoto(f"{path}: no such file", 404)
    return decode_photo(path.read_bytes(), str(path), max_bytes, max_pixels)
