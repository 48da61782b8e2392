"""Register faces in grey images: landmarks at fixed positions (or the box squared), fixed size.

Detection and registration (`align_face`) are separate so that the align stage can keep one face per
image while a prediction API can align every face in a photo. The Haar detector (`detect_faces`) lives
here; the landmark detector needs torch and lives in `fer.runtime.face_detector`, which calls in with
the same `Face`. `align_all` is the batch entry point used by the pipeline; `save_sample_grid` draws
before/after pairs, with the landmarks, for a human check.
"""

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import cv2
import numpy as np
from tqdm import tqdm

from fer.core.errors import FerError
from fer.core.params import AlignCrop, OnMiss
from fer.core.storage import atomic_path

ON_MISS_ACTIONS = get_args(OnMiss)
CROPS = get_args(AlignCrop)

# Where registration puts the five landmarks (eyes, nose tip, mouth corners; left-in-image first), as
# fractions of the crop side: where the registered 48x48 crops of the synthetic source have them (face
# units of fer.data.sources.synthetic: eyes at (+-0.295, -0.17), nose tip 0.22, mouth corners (+-0.25,
# 0.47), mapped by (1 + u) / 2), which is also about where FER2013's crops have them.
FIVE_POINT_TEMPLATE = np.array(
    [[0.3525, 0.415], [0.6475, 0.415], [0.5, 0.61], [0.375, 0.735], [0.625, 0.735]]
)

# alt2 finds ~88% of the 25x25 LFW faces versus ~83% for the "default" cascade, with no false hits.
FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
EYE_CASCADE = "haarcascade_eye.xml"

# The cascades scan 20-24 px windows, so a face filling a 48x48 FER crop is barely larger than the
# smallest window; upscaling such images first is what makes them detectable at all.
MIN_DETECT_SIDE = 96
# Eyes are ~1/5 of the face width; an upper-face strip this wide gives eyes above the 20 px window.
MIN_EYE_STRIP_WIDTH = 120
# Eyes of an upright face sit in the upper half of the box, but on a face rolled by 15 degrees the
# lower eye reaches past it; a little more than half keeps it while still excluding the nostrils.
EYE_STRIP_HEIGHT = 0.6
# A pair tilted more than this is a mismatch (eye + eyebrow, eye + nostril); the frontal cascade
# itself stops finding faces beyond ~20-25 degrees of roll.
MAX_EYE_TILT_DEGREES = 30.0
# Eye centres sit roughly 0.3-0.5 face widths apart; outside this range the pair is not two eyes.
EYE_SEPARATION_RANGE = (0.2, 0.7)


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the input image
    # (x, y) points, left-in-image first: the eye centres (Haar), or those plus the nose tip and the
    # mouth corners (a landmark detector, in FIVE_POINT_TEMPLATE's order); None when none were found.
    landmarks: tuple[tuple[float, float], ...] | None
    score: float  # the detector's confidence; only comparable between faces of one detector

    @property
    def eyes(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        return None if self.landmarks is None else self.landmarks[:2]


@dataclass
class AlignResult:
    images: np.ndarray  # (kept.sum(), size, size) uint8, in input order
    detected: np.ndarray  # (N,) bool: a face was found in input i
    registered: np.ndarray  # (N,) bool: input i was aligned on its landmarks (not just its box)
    kept: np.ndarray  # (N,) bool: input i is in `images`
    faces: list  # (N,) the Face aligned for input i, or None


# One classifier per thread: detectMultiScale on a shared CascadeClassifier from several threads (the API's
# worker pool) races and misses faces now and then.
_per_thread = threading.local()


def _cascade(name: str) -> cv2.CascadeClassifier:
    cascades = _per_thread.__dict__.setdefault("cascades", {})
    if name not in cascades:
        cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
        if cascade.empty():
            raise FerError(f"cannot load the OpenCV cascade {name} from {cv2.data.haarcascades}")
        cascades[name] = cascade
    return cascades[name]


def _detect(cascade_name: str, gray: np.ndarray, min_side: int, max_side: int = 0, neighbours: int = 3):
    """Boxes (n, 4) and confidences (n,) from one cascade."""
    boxes, _, weights = _cascade(cascade_name).detectMultiScale3(
        gray,
        scaleFactor=1.1,
        minNeighbors=neighbours,
        minSize=(min_side, min_side),
        maxSize=(max_side, max_side),
        outputRejectLevels=True,
    )
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(weights, dtype=np.float64).ravel()


def upscaled_for_detection(gray: np.ndarray) -> tuple[np.ndarray, float]:
    scale = max(1.0, MIN_DETECT_SIDE / min(gray.shape[:2]))
    if scale == 1.0:
        return gray, 1.0
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), scale


def detect_faces(gray: np.ndarray, min_face: int = 20, min_face_fraction: float = 0.0) -> list[Face]:
    """Frontal faces of at least `min_face` input pixels and `min_face_fraction` of the shorter side,
    largest first, each with its eyes if found."""
    image, scale = upscaled_for_detection(gray)
    min_face = max(min_face, min_face_fraction * min(gray.shape[:2]))
    boxes, scores = _detect(FACE_CASCADE, image, min_side=max(1, round(min_face * scale)))
    faces = []
    for box, score in zip(boxes, scores):
        eyes = _find_eyes(image, box)
        faces.append(
            Face(
                box=tuple(round(v / scale) for v in box),
                landmarks=None if eyes is None else tuple((ex / scale, ey / scale) for ex, ey in eyes),
                score=float(score),
            )
        )
    faces.sort(key=lambda f: (f.box[2] * f.box[3], f.score), reverse=True)
    return faces


def _find_eyes(image: np.ndarray, box: np.ndarray):
    """Centres of the most plausible eye pair in the upper part of the face box, or None."""
    x, y, w, h = (int(v) for v in box)
    strip = image[y : y + round(h * EYE_STRIP_HEIGHT), x : x + w]
    zoom = max(1.0, MIN_EYE_STRIP_WIDTH / w)
    if zoom > 1.0:
        strip = cv2.resize(strip, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
    strip_w = strip.shape[1]
    eye_boxes, weights = _detect(EYE_CASCADE, strip, min_side=strip_w // 8, max_side=strip_w // 2)
    # Work in face-width units so the plausibility limits do not depend on the face size.
    centres = (eye_boxes[:, :2] + eye_boxes[:, 2:] / 2) / strip_w
    pair = _best_eye_pair(centres, weights)
    if pair is None:
        return None
    return tuple((x + float(cx) * w, y + float(cy) * w) for cx, cy in pair)


def _best_eye_pair(centres: np.ndarray, weights: np.ndarray):
    """The highest-confidence (left, right) pair: one per half of the face, level-ish, eye-spaced."""
    best, best_weight = None, -math.inf
    for i, left in enumerate(centres):
        for j, right in enumerate(centres):
            if not (left[0] < 0.5 <= right[0]):
                continue
            dx, dy = right - left
            tilt = abs(math.degrees(math.atan2(dy, dx)))
            spaced = EYE_SEPARATION_RANGE[0] <= math.hypot(dx, dy) <= EYE_SEPARATION_RANGE[1]
            if tilt <= MAX_EYE_TILT_DEGREES and spaced and weights[i] + weights[j] > best_weight:
                best, best_weight = (tuple(left), tuple(right)), weights[i] + weights[j]
    return best


def eye_tilt_degrees(eyes) -> float:
    """Angle of the left-to-right eye line; positive when the right-in-image eye is lower."""
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def alignment_matrix(face: Face, margin: float, crop: str = "landmarks") -> tuple[np.ndarray, int]:
    """Affine map from the input image onto the square crop of `face`, and the crop's side.

    The side is the face box grown by `margin` of its size on each side. crop="landmarks" with five
    landmarks: the least-squares similarity transform putting them on FIVE_POINT_TEMPLATE; with the two
    eyes only (Haar): a rotation about their midpoint that levels them, the box centred. crop="box", or no
    landmarks: the plain square crop of the box.
    """
    x, y, w, h = face.box
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    points = face.landmarks if crop == "landmarks" else None
    if points is not None and len(points) == len(FIVE_POINT_TEMPLATE):
        return _similarity(np.asarray(points, dtype=np.float64), FIVE_POINT_TEMPLATE * side), side
    if points is None:
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    else:
        pivot = np.mean(face.eyes, axis=0)
        matrix = cv2.getRotationMatrix2D((float(pivot[0]), float(pivot[1])), eye_tilt_degrees(face.eyes), 1.0)
    box_centre = matrix @ np.array([x + w / 2, y + h / 2, 1.0])
    matrix[:, 2] += side / 2 - box_centre
    return matrix, side


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + shift that maps the src points onto dst with least squared error."""
    n = len(src)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def align_face(gray: np.ndarray, face: Face, size: int, margin: float, crop: str = "landmarks") -> np.ndarray:
    """The face as a size x size uint8 image, registered on its landmarks when it has them (see alignment_matrix)."""
    matrix, side = alignment_matrix(face, margin, crop)
    # Warping straight into the crop touches only the crop's pixels, and BORDER_REPLICATE pads
    # faces that reach past the image edge; the resize is separate so shrinking can use INTER_AREA.
    crop_image = cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _resized_square(crop_image, size)


def _resized_square(square: np.ndarray, size: int) -> np.ndarray:
    if square.shape[0] == size:
        return square.astype(np.uint8)  # a copy: callers may keep it after the input is gone
    shrinking = square.shape[0] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation).astype(np.uint8, copy=False)


def resize_only(gray: np.ndarray, size: int) -> np.ndarray:
    """For already-registered faces (FER2013): centre square crop, then resize to size x size."""
    h, w = gray.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return _resized_square(gray[top : top + side, left : left + side], size)


def _check_choice(param: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise FerError(f"{param} must be one of {choices} (got {value!r})")


# A detector: a batch of grey images in, each image's faces (largest first) out.
Detector = Callable[[list[np.ndarray]], list[list[Face]]]


def align_all(
    images: list[np.ndarray], detect: Detector | None, size: int, margin: float, crop: str, on_miss: str,
    batch_size: int = 256, progress: bool = False,
) -> AlignResult:
    """Register every image: with no detector resize each whole; otherwise align each image's largest face.

    Images go to `detect` `batch_size` at a time. An image without a face is resized as is
    (`on_miss="resize"`) or left out ("drop"). `progress` shows a progress bar on stderr.
    """
    _check_choice("align.crop", crop, CROPS)
    _check_choice("align.on_miss", on_miss, ON_MISS_ACTIONS)
    n = len(images)
    found: list[Face | None] = [None] * n
    if detect is not None:
        with tqdm(total=n, desc="align: detecting faces", unit="img", disable=not progress) as bar:
            for start in range(0, n, batch_size):
                batch = images[start : start + batch_size]
                for i, faces in enumerate(detect(batch), start):
                    found[i] = faces[0] if faces else None
                bar.update(len(batch))
    detected = np.array([face is not None for face in found], dtype=bool)
    registered = np.array([face is not None and crop == "landmarks" and face.landmarks is not None
                           for face in found], dtype=bool)
    kept = detected | (detect is None) | (on_miss == "resize")
    aligned = [
        align_face(gray, face, size, margin, crop) if face is not None else resize_only(gray, size)
        for gray, face, keep in zip(images, found, kept) if keep
    ]
    stacked = np.stack(aligned) if aligned else np.zeros((0, size, size), dtype=np.uint8)
    return AlignResult(images=stacked, detected=detected, registered=registered, kept=kept, faces=found)


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


def save_sample_grid(before: list[np.ndarray], after: np.ndarray, path, n: int = 16, faces=None) -> None:
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
