"""Face detectors side by side on real photos that ship inside packages (skimage, matplotlib).

Per method: lfw_subset faces found (of 100 real 25x25 faces) and false detections (of its 100 non-faces),
faces found in the astronaut, Grace Hopper and a composed five-face group photo, and ms per 640x480 photo
(warm-up, then repeats: median and range) and per lfw crop in batches.
"""

import statistics
import time

import cv2
import numpy as np

from fer.core.errors import FerError
from fer.runtime.face_detector import FACE_METHODS, face_detector

LFW_MIN_FACE = 12  # lfw_subset's faces fill their 25x25 crops


def _packages():
    try:
        import matplotlib.cbook
        from skimage import data
    except ImportError as err:
        raise FerError(f"the real photos come from the test extra ({err.name}): pip install -e '.[test]'") from None
    return matplotlib.cbook, data


def grace_hopper() -> np.ndarray:
    """matplotlib's 600x512 black-and-white portrait of Grace Hopper, grey."""
    with _packages()[0].get_sample_data("grace_hopper.jpg") as f:
        return cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_GRAYSCALE)


def astronaut() -> np.ndarray:
    """skimage's 512x512 colour portrait of Eileen Collins, grey."""
    return cv2.cvtColor(_packages()[1].astronaut(), cv2.COLOR_RGB2GRAY)


def lfw_subset() -> list[np.ndarray]:
    """skimage's 100 real 25x25 faces, then 100 non-faces, uint8."""
    return [np.round(img * 255).astype(np.uint8) for img in _packages()[1].lfw_subset()]


def group_photo() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 720x480 grey group photo composed from five real faces on grass, and each face's (x, y, side).

    The faces are ~40%, ~30%, ~20%, ~12% and ~7% of the shorter side: the astronaut's and Grace Hopper's
    faces with some head and shoulders around them, then three tight lfw_subset crops upscaled.
    """
    canvas = (cv2.resize(_packages()[1].grass(), (720, 480)) * 0.6 + 60).astype(np.uint8)
    lfw = lfw_subset()
    placed = [(astronaut()[16:216, 124:324], 340, 10, 70), (grace_hopper()[44:404, 87:447], 248, 360, 10),
              (lfw[0], 100, 380, 300), (lfw[1], 60, 520, 320), (lfw[2], 36, 620, 330)]
    for source, side, x, y in placed:
        shrink = source.shape[0] > side
        canvas[y : y + side, x : x + side] = cv2.resize(
            source, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return canvas, [(x, y, side) for _, side, x, y in placed]


def _ms(run, repeats: int) -> list[float]:
    for _ in range(2):  # warm-up
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - start))
    return times


def bench_faces(min_face: int, min_face_fraction: float, repeats: int) -> list[dict]:
    """One row per detector. The 25x25 lfw crops are searched for faces of LFW_MIN_FACE px and more."""
    astronaut_photo, grace, lfw, (group, placed) = astronaut(), grace_hopper(), lfw_subset(), group_photo()
    photo = cv2.resize(astronaut_photo, (640, 480), interpolation=cv2.INTER_AREA)
    rows = []
    for method in FACE_METHODS:
        detect, detect_small = face_detector(method, min_face), face_detector(method, LFW_MIN_FACE)
        found = [bool(faces) for faces in detect_small(lfw)]
        per_photo = _ms(lambda detect=detect: detect([photo], min_face_fraction), repeats)
        batched = _ms(lambda detect=detect_small: detect(lfw), 1)[0] / len(lfw)
        rows.append({
            "method": method,
            "lfw faces /100": sum(found[:100]),
            "lfw non-faces /100": sum(found[100:]),
            "astronaut /1": len(detect([astronaut_photo], min_face_fraction)[0]),
            "grace_hopper /1": len(detect([grace], min_face_fraction)[0]),
            f"group /{len(placed)}": len(detect([group], min_face_fraction)[0]),
            "ms / 640x480 photo": f"{statistics.median(per_photo):.0f} ({min(per_photo):.0f}-{max(per_photo):.0f})",
            "ms / lfw crop, batched": f"{batched:.1f}",
        })
    return rows


def markdown(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines) + "\n"
