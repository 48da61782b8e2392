"""The align stage's check for a human: before/after pairs side by side, the landmarks drawn on the before."""

import math

import cv2
import numpy as np

from fer.core.errors import FerError
from fer.core.storage import atomic_path
from fer.data.faces import Face


def _fit_tile(gray: np.ndarray, tile: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """`gray` scaled to fit a tile x tile square without distortion, centred on black; the scale and the
    (left, top) offset that map input coordinates into the tile."""
    h, w = gray.shape[:2]
    scale = tile / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, new_h), interpolation=interpolation)
    out = np.zeros((tile, tile), dtype=np.uint8)
    top, left = (tile - new_h) // 2, (tile - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out, scale, (left, top)


def _draw_landmarks(tile: np.ndarray, face: Face, scale: float, offset: tuple[int, int]) -> None:
    """White dots ringed in black (visible on any skin tone) at the face's landmarks, in place."""
    radius = max(1, tile.shape[0] // 40)
    for x, y in face.landmarks or ():
        centre = (round(x * scale + offset[0]), round(y * scale + offset[1]))
        cv2.circle(tile, centre, radius + 1, 0, -1, lineType=cv2.LINE_AA)
        cv2.circle(tile, centre, radius, 255, -1, lineType=cv2.LINE_AA)


def save_sample_grid(before: list[np.ndarray], after: np.ndarray, path, n: int, faces=None) -> None:
    """PNG of the first `n` (before, after) pairs side by side; before[i] is the original of after[i].

    Pairs fill a near-square grid, ceil(sqrt(n)) pairs per row; tiles are after's size. faces[i], when
    given and not None, has its landmarks drawn on before[i]'s tile.
    """
    tile = after.shape[1]
    faces = faces if faces is not None else [None] * len(before)
    pairs = list(zip(before, after, faces))[:n]
    pairs_per_row = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(len(pairs) / pairs_per_row))
    canvas = np.zeros((rows * tile, pairs_per_row * 2 * tile), dtype=np.uint8)
    for k, (original, aligned, face) in enumerate(pairs):
        top, left = (k // pairs_per_row) * tile, (k % pairs_per_row) * 2 * tile
        shown, scale, offset = _fit_tile(original, tile)
        if face is not None:
            _draw_landmarks(shown, face, scale, offset)
        canvas[top : top + tile, left : left + tile] = shown
        canvas[top : top + tile, left + tile : left + 2 * tile] = aligned
    ok, png = cv2.imencode(".png", canvas)
    if not ok:
        raise FerError(f"could not encode the sample grid for {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(png.tobytes())
