"""Read an image as a grey array, refusing what is not a safe, reasonable image: the one decoder that the
dataset sources (fer.data.sources.local) and `fer predict` / `fer serve` share."""

import io
import warnings
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer.core.errors import FerError, one_line

# 16-bit grey (PNG, TIFF; a deep PGM opens as "I": _is_deep_netpbm): convert("L") would clip every value above
# 255 to white.
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class BadPhoto(FerError):
    """A photo we refuse; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class Decoded(NamedTuple):
    grey: np.ndarray  # (H, W) uint8, upright
    bits: int  # bits per sample of the source: 8, or 16 when it was scaled down to 8
    scale: float  # the source's size over grey's (> 1 when decoded at reduced size)


def decode_image(source: str | Path | BinaryIO, name: str, max_pixels: int, max_side: int) -> Decoded:
    """The image as grey uint8, upright as its EXIF orientation says, its longer side at most max_side.

    Refused (BadPhoto) from the header, before any pixel is decoded, when over max_pixels; a JPEG is decoded
    straight to grey at the smallest 1/2^k size that still covers max_side, so a large photo never expands
    in full.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over PIL's limit: a bomb too
            with Image.open(source) as image:
                if image.width * image.height > max_pixels:
                    raise BadPhoto(
                        f"{name}: {image.width}x{image.height} pixels is over the {max_pixels}-pixel limit", 413
                    )
                original_side = max(image.size)
                image.draft("L", (max_side, max_side))
                ImageOps.exif_transpose(image, in_place=True)  # phone photos are often stored sideways
                grey, bits = _grey(image, name)
    except UnidentifiedImageError:
        raise BadPhoto(f"{name}: not an image PIL can read (JPEG, PNG, WebP, BMP, ...)", 415) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:  # PIL's limit, at open
        raise BadPhoto(f"{name}: over the {max_pixels}-pixel limit ({one_line(err)})", 413) from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt
        raise BadPhoto(f"{name}: unreadable image ({err})", 415) from None
    grey.thumbnail((max_side, max_side))  # keeps the aspect ratio and never enlarges
    return Decoded(np.asarray(grey, dtype=np.uint8), bits, original_side / max(grey.size))


def _grey(image: Image.Image, name: str) -> tuple[Image.Image, int]:
    """(grey 8-bit image, the source's bits per sample), scaled by the source's real bit depth."""
    if image.mode in SIXTEEN_BIT_MODES or _is_deep_netpbm(image):
        wide = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8)), 16
    if image.mode in ("I", "F"):  # 32-bit samples have no one scale to 0..255
        raise BadPhoto(
            f"{name}: 32-bit {'float' if image.mode == 'F' else 'integer'} pixels; expected 8- or 16-bit samples", 415
        )
    return _grey_on_white(image), 8


def _grey_on_white(image: Image.Image) -> Image.Image:
    """The image in grey as a viewer shows it, transparent parts on white: convert("L") alone would drop the
    alpha and keep the colour stored under fully transparent pixels, which no one sees (a face can hide there).
    Composited in grey, one byte a pixel, so an upload near the pixel limit costs no full-colour copies."""
    if image.mode in ("P", "RGBa", "La") and (image.mode != "P" or "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode not in ("RGBA", "LA", "PA"):
        return image.convert("L")
    grey, alpha = image.convert("LA").split()
    if alpha.getextrema() == (255, 255):  # opaque everywhere: nothing to composite
        return grey
    on_white = Image.new("L", image.size, 255)
    on_white.paste(grey, mask=alpha)
    return on_white


def _is_deep_netpbm(image: Image.Image) -> bool:
    """A PGM with maxval over 255: PIL opens it as 32-bit mode "I", its samples already scaled to 0..65535."""
    return image.format == "PPM" and image.mode == "I"


def decode_photo(data: bytes, name: str, max_bytes: int, max_pixels: int, max_side: int) -> Decoded:
    """An uploaded photo; limits from params `predict:`."""
    if len(data) > max_bytes:
        raise BadPhoto(f"{name}: {len(data)} bytes is over the {max_bytes}-byte limit", 413)
    return decode_image(io.BytesIO(data), name, max_pixels, max_side)


def read_photo(path: str | Path, max_bytes: int, max_pixels: int, max_side: int) -> Decoded:
    """A photo file, refused by its size on disk before it is read."""
    path = Path(path)
    if not path.is_file():
        raise BadPhoto(f"{path}: no such file", 404)
    size = path.stat().st_size
    if size > max_bytes:
        raise BadPhoto(f"{path}: {size} bytes is over the {max_bytes}-byte limit", 413)
    with open(path, "rb") as f:
        return decode_photo(f.read(max_bytes + 1), str(path), max_bytes, max_pixels, max_side)
