"""Face detectors side by side on real photos that ship inside packages (skimage, matplotlib), and on drawn
photos of many sizes whose true landmarks are known.

Real photos, per method: lfw_subset faces found (of 100 real 25x25 faces) and false detections (of its 100
non-faces), faces found in the astronaut, Grace Hopper and a composed five-face group photo, and ms per 640x480
photo (warm-up, then repeats: median and range) and per lfw crop in batches. Drawn photos (drawn_photos), per
method: the align stage's ms per photo, how many drawn faces it finds and its landmark error.
"""

import statistics
import time

import cv2
import numpy as np

from fer.core.errors import FerError
from fer.core.params import FACE_METHODS, AlignParams
from fer.data.aligning import align_all
from fer.data.sources.synthetic import generate_with_landmarks
from fer.runtime.face_detector import face_detector, prepare_for_photo_batches
from fer.tools.spread import Spread

LFW_MIN_FACE = 12  # lfw_subset's faces fill their 25x25 crops
# The drawn photos: longer sides and width / height ratios, as photos of any size come out of a folder read
# at data.max_side 256.
PHOTO_LONGER_SIDES = (120, 256)
PHOTO_ASPECTS = (1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3)


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
    placed = [
        (astronaut()[16:216, 124:324], 340, 10, 70),
        (grace_hopper()[44:404, 87:447], 248, 360, 10),
        (lfw[0], 100, 380, 300),
        (lfw[1], 60, 520, 320),
        (lfw[2], 36, 620, 330),
    ]
    for source, side, x, y in placed:
        shrink = source.shape[0] > side
        canvas[y : y + side, x : x + side] = cv2.resize(
            source, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        )
    return canvas, [(x, y, side) for _, side, x, y in placed]


def _ms(run, repeats: int, warm_ups: int = 2) -> tuple[list[float], list[float]]:
    """Wall and CPU (this process's) milliseconds of each timed run. On a shared machine the CPU time of a
    single-threaded run is close to what its wall time would be alone."""
    for _ in range(warm_ups):
        run()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(1000 * (time.perf_counter() - start_wall))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return wall, cpu


def bench_faces(min_face: int, min_face_fraction: float, repeats: int) -> list[dict]:
    """One row per detector. The 25x25 lfw crops are searched for faces of LFW_MIN_FACE px and more."""
    astronaut_photo, grace, lfw, (group, placed) = astronaut(), grace_hopper(), lfw_subset(), group_photo()
    photo = cv2.resize(astronaut_photo, (640, 480), interpolation=cv2.INTER_AREA)
    rows = []
    for method in FACE_METHODS:
        detect, detect_small = face_detector(method, min_face), face_detector(method, LFW_MIN_FACE)
        found = [bool(faces) for faces in detect_small(lfw)]
        per_photo = _ms(lambda detect=detect: detect([photo], min_face_fraction), repeats)[0]
        batched = _ms(lambda detect=detect_small: detect(lfw), 1)[0][0] / len(lfw)
        rows.append(
            {
                "method": method,
                "lfw faces /100": sum(found[:100]),
                "lfw non-faces /100": sum(found[100:]),
                "astronaut /1": len(detect([astronaut_photo], min_face_fraction)[0]),
                "grace_hopper /1": len(detect([grace], min_face_fraction)[0]),
                f"group /{len(placed)}": len(detect([group], min_face_fraction)[0]),
                "ms / 640x480 photo": Spread.of(per_photo).format(0),
                "ms / lfw crop, batched": f"{batched:.1f}",
            }
        )
    return rows


def drawn_photos(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """n photo-style scenes of the synthetic source at assorted sizes and aspect ratios (PHOTO_LONGER_SIDES,
    PHOTO_ASPECTS), each cut around its face, and the (n, 5, 2) landmarks drawn in them."""
    dataset, landmarks = generate_with_landmarks(n, PHOTO_LONGER_SIDES[1], seed, photo=True)
    rng = np.random.default_rng(seed)
    framed = [
        _reframed(scene, points, round(rng.uniform(*PHOTO_LONGER_SIDES)), rng.choice(PHOTO_ASPECTS))
        for scene, points in zip(dataset.images, landmarks)
    ]
    return [photo for photo, _ in framed], np.stack([points for _, points in framed])


def _reframed(scene: np.ndarray, points: np.ndarray, longer_side: int, aspect: float):
    """The square `scene` shrunk to `longer_side` and cut to `aspect` (width / height) around its face, and
    the landmarks `points` moved along."""
    scale = longer_side / scene.shape[0]
    shrunk = cv2.resize(scene, (longer_side, longer_side), interpolation=cv2.INTER_AREA)
    points = (points + 0.5) * scale - 0.5  # pixel centres at integers
    width, height = (
        (longer_side, round(longer_side / aspect)) if aspect >= 1 else (round(longer_side * aspect), longer_side)
    )
    centre = points.mean(axis=0)
    left = int(np.clip(round(centre[0] - width / 2), 0, longer_side - width))
    top = int(np.clip(round(centre[1] - height / 2), 0, longer_side - height))
    return shrunk[top : top + height, left : left + width], points - (left, top)


def landmark_error(found, truth) -> float:
    """The mean distance from each found landmark to the true one, in inter-ocular distances (between the
    true eye centres); `found` may hold only the first few of `truth`'s landmarks (Haar: the eyes)."""
    found, truth = np.asarray(found, np.float64), np.asarray(truth, np.float64)
    inter_ocular = np.linalg.norm(truth[1] - truth[0])
    return float(np.linalg.norm(found - truth[: len(found)], axis=1).mean() / inter_ocular)


def _holds(face, point) -> bool:
    x, y, w, h = face.box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def bench_drawn_photos(align: AlignParams, n_photos: int, repeats: int) -> list[dict]:
    """One row per detector: the align stage (align's params) on drawn_photos(n_photos): its speed, how many
    photos it found a face in, and how well it found the drawn faces (_landmark_columns)."""
    photos, truth = drawn_photos(n_photos)
    prepare_for_photo_batches()
    rows = []
    for method in FACE_METHODS:
        result, wall, cpu = _timed_align(photos, face_detector(method, align.min_face), align, repeats)
        rows.append(
            {
                "method": method,
                "ms / photo": Spread.of([ms / n_photos for ms in wall]).format(1),
                "CPU ms / photo": f"{statistics.median(cpu) / n_photos:.1f}",
                "detected": f"{result.detected.mean():.1%}",
                **_landmark_columns(result.faces, truth),
            }
        )
    return rows


def _timed_align(photos: list[np.ndarray], detect, align: AlignParams, repeats: int):
    """The align stage's result on `photos`, and the wall and CPU ms of each of `repeats` runs after a warm-up
    batch."""
    last = None

    def run(images=photos):
        nonlocal last
        last = align_all(images, detect, align)

    run(photos[: align.batch_size])
    wall, cpu = _ms(run, repeats, warm_ups=0)
    return last, wall, cpu


def _landmark_columns(faces: list, truth: np.ndarray) -> dict:
    """How many of the drawn faces were found (the face aligned is the drawn one when its box holds the true
    nose tip), how many of those with landmarks, and their mean landmark_error: of the eyes alone, and of all
    five points where five were found."""
    found = [(face.landmarks, true) for face, true in zip(faces, truth) if face is not None and _holds(face, true[2])]
    marked = [(np.asarray(points), true) for points, true in found if points is not None]
    return {
        f"drawn face /{len(truth)}": len(found),
        "with landmarks": len(marked),
        "eye error": _mean([landmark_error(points[:2], true) for points, true in marked]),
        "5-point error": _mean([landmark_error(points, true) for points, true in marked if len(points) == len(true)]),
    }


def _mean(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if values else "-"


def markdown(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines) + "\n"
