"""Faces and their registration: a face's box and landmarks, mapped onto a fixed-size crop.

Detection and registration (`align_face`) are separate so that the align stage can keep one face per image
while a prediction API can align every face in a photo. The detectors live in `fer.data.haar` (OpenCV's
cascades) and `fer.runtime.face_detector` (the landmark detector, which needs torch); both return `Face`s.
`fer.data.aligning` runs detection and registration over a dataset, `fer.data.sample_grid` draws the check.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Where registration puts the five landmarks (eyes, nose tip, mouth corners; left-in-image first), as
# fractions of the crop side: where the registered 48x48 crops of the synthetic source have them (face
# units of fer.data.sources.synthetic: eyes at (+-0.295, -0.17), nose tip 0.22, mouth corners (+-0.25,
# 0.47), mapped by (1 + u) / 2), which is also about where FER2013's crops have them.
FIVE_POINT_TEMPLATE = np.array([[0.3525, 0.415], [0.6475, 0.415], [0.5, 0.61], [0.375, 0.735], [0.625, 0.735]])

# The cascades scan 20-24 px windows, so a face filling a 48x48 FER crop is barely larger than the
# smallest window; upscaling such images first is what makes them detectable at all.
MIN_DETECT_SIDE = 96


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


# A detector: a batch of grey images in, each image's faces (largest first) out.
Detector = Callable[[list[np.ndarray]], list[list[Face]]]


def upscaled_for_detection(gray: np.ndarray) -> tuple[np.ndarray, float]:
    scale = max(1.0, MIN_DETECT_SIDE / min(gray.shape[:2]))
    if scale == 1.0:
        return gray, 1.0
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), scale


def eye_tilt_degrees(eyes) -> float:
    """Angle of the left-to-right eye line; positive when the right-in-image eye is lower."""
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def alignment_matrix(face: Face, margin: float, crop: str) -> tuple[np.ndarray, int]:
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


def align_face(gray: np.ndarray, face: Face, size: int, margin: float, crop: str) -> np.ndarray:
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
