"""Synthetic FER2013-like data: labelled grey faces showing the 7 expressions, drawn offline in seconds; and
CelebA-like faces wearing a few binary attributes (glasses, mustache, bangs, a smile, an open mouth).

Lets the whole pipeline run (and its tests pass) with no download. Each face is a set of implicit shapes
(ellipses, strokes as distance fields, soft edges) evaluated on coordinate grids for a whole chunk of images
at once. An expression is a displacement from the neutral face, scaled by a random intensity; identity,
pose, lighting, blur, noise and occluders vary on top, so that a fixed pixel template (a linear model)
does poorly while local, shift-tolerant features (a small CNN) do well but not perfectly. Attribute faces
are the same faces: a smile and an open mouth displace them as expressions do, and glasses, a mustache and
bangs are drawn over them.

Every step is elementwise numpy arithmetic in a fixed order, never a matrix product: the BLAS kernel of a
product (OpenBLAS picks one per CPU) rounds in its own order, and moved a few pixels, and so every hash
downstream, between CPUs (docs/noise.md says which machines draw the same bytes).

Coordinates: image x, y span [-1, 1] (y down). Face coordinates u, v are the image coordinates un-rotated,
un-shifted and un-scaled by the face's pose, so every feature is drawn once, upright, in face units.
"""

import numpy as np

from fer.core.emotions import EMOTIONS
from fer.core.labels import FER2013, LabelSet
from fer.data.rawdata import SYNTHETIC_SOURCE, RawDataset

# Class counts of the FER2013 train split, in canonical order: the imbalance to reproduce (disgust rare).
FER2013_TRAIN_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])

# Pixels drawn together: enough images to vectorise well, few enough that the work arrays stay in cache.
PIXELS_PER_CHUNK = 2**19

# How each expression moves the face away from neutral, at full intensity, in face units (or factors
# where noted). Columns follow EMOTIONS: angry, disgust, fear, happy, sad, surprise, neutral.
EXPRESSION_DELTAS = {
    "brow_raise": (-0.02, -0.01, 0.07, 0.01, 0.00, 0.10, 0.0),  # both ends up
    "brow_inner_raise": (-0.07, -0.03, 0.05, 0.00, 0.07, 0.01, 0.0),  # inner end up; < 0 = frown
    "brow_inner_in": (0.05, 0.02, 0.03, 0.00, 0.01, 0.00, 0.0),  # inner ends drawn together
    "eye_open": (-0.20, -0.25, 0.50, -0.50, -0.15, 0.60, 0.0),  # factor on lid opening
    "mouth_width": (-0.15, 0.00, 0.30, 0.30, -0.05, -0.30, 0.0),  # factor on mouth width
    "mouth_curve": (-0.02, -0.04, -0.03, 0.11, -0.09, 0.00, 0.0),  # corners up; < 0 = down
    "mouth_open": (0.00, 0.03, 0.09, 0.04, 0.00, 0.17, 0.0),  # lip gap at the centre
    "mouth_round": (0.00, 0.00, 0.00, 0.00, 0.00, 1.00, 0.0),  # 1 = an "O" instead of a lens
    "upper_lip_raise": (0.00, 0.07, 0.00, 0.00, 0.00, 0.00, 0.0),  # on one side only
    "lip_press": (1.00, 0.20, 0.00, 0.00, 0.30, 0.00, 0.0),  # thin, dark, pressed lips
    "nose_wrinkle": (0.40, 1.00, 0.00, 0.00, 0.00, 0.00, 0.0),
    "teeth": (0.00, 0.50, 0.80, 1.00, 0.00, 0.30, 0.0),
}

# Share of faces showing each attribute (CelebA's names), drawn independently: CelebA's own rates, except
# that the rare ones are raised so that a few hundred faces still hold enough examples to learn from.
ATTRIBUTE_PREVALENCE = {
    "Bangs": 0.2,  # CelebA 0.15
    "Eyeglasses": 0.15,  # 0.065
    "Mouth_Slightly_Open": 0.45,  # 0.48
    "Mustache": 0.15,  # 0.04
    "Smiling": 0.45,  # 0.48
}
ATTRIBUTES = tuple(ATTRIBUTE_PREVALENCE)

# The attributes that move the face, as EXPRESSION_DELTAS do: a smile is FER2013's happy face; a slightly
# open mouth parts the lips a little less than fear does, showing some teeth.
SMILE_DELTAS = {k: d[EMOTIONS.index("happy")] for k, d in EXPRESSION_DELTAS.items()}
MOUTH_OPEN_DELTAS = {"mouth_open": 0.08, "teeth": 0.3}


def generate(n_images: int, size: int, seed: int, photo: bool) -> RawDataset:
    """n_images labelled size x size faces, deterministic in seed; photo=True places them in cluttered scenes
    (size is then the photo's side, synthetic.photo_size, else the crop's, synthetic.image_size)."""
    return generate_with_landmarks(n_images, size, seed, photo)[0]


def generate_with_landmarks(n_images: int, size: int, seed: int, photo: bool) -> tuple[RawDataset, np.ndarray]:
    """generate()'s faces, and where their five landmarks were drawn: (n_images, 5, 2) pixel (x, y), pixel
    centres at integers, in fer.data.faces.FIVE_POINT_TEMPLATE's order (a detector's ground truth)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(EMOTIONS)), class_counts(n_images)))
    images, landmarks = _draw_faces(
        n_images,
        size,
        photo,
        rng,
        face_of=lambda rows: _sample_face(_expression_deltas(labels[rows]), rng),
    )
    return _dataset(images, labels, FER2013), landmarks


def generate_attributes(n_images: int, image_size: int, seed: int) -> RawDataset:
    """n_images faces labelled with ATTRIBUTES (1 = shown), deterministic in seed; each attribute independent."""
    rng = np.random.default_rng(seed)
    shown = rng.random((n_images, len(ATTRIBUTES))) < np.array(list(ATTRIBUTE_PREVALENCE.values()))

    def face_of(rows: slice) -> dict:
        present = {name: shown[rows, k].astype(np.float64) for k, name in enumerate(ATTRIBUTES)}
        return _sample_face(_attribute_deltas(present), rng) | _sample_accessories(present, rng)

    images, _ = _draw_faces(
        n_images, image_size, False, rng, face_of, extra_parts=(_draw_bangs, _draw_mustache, _draw_glasses)
    )
    return _dataset(images, shown.astype(np.int8), LabelSet("attributes", ATTRIBUTES))


def _draw_faces(
    n_images: int, size: int, photo: bool, rng: np.random.Generator, face_of, extra_parts=()
) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, size, size) and where their landmarks were drawn (n, 5, 2), a chunk at a time (memory);
    face_of(rows) samples the faces of the chunk's rows (a slice)."""
    images = np.empty((n_images, size, size), np.uint8)
    landmarks = np.empty((n_images, 5, 2))
    chunk = max(1, PIXELS_PER_CHUNK // size**2)
    for start in range(0, n_images, chunk):
        rows = slice(start, start + chunk)
        face = face_of(rows)
        pose = _sample_pose(len(face["skin"]), photo, rng)
        images[rows] = _render_chunk(face, pose, size, photo, rng, extra_parts)
        landmarks[rows] = _landmarks(face, pose, size)
    return images, landmarks


def _dataset(images: np.ndarray, labels: np.ndarray, label_set: LabelSet) -> RawDataset:
    n = len(images)
    return RawDataset(list(images), labels, [""] * n, [f"{SYNTHETIC_SOURCE}{i}" for i in range(n)], label_set)


def class_counts(n_images: int) -> np.ndarray:
    """Per-class counts in FER2013 proportions summing to n_images (largest remainder rounding)."""
    exact = n_images * FER2013_TRAIN_COUNTS / FER2013_TRAIN_COUNTS.sum()
    counts = np.floor(exact).astype(np.int64)
    # Stable sort so that ties in the remainder always go to the same (earlier) class.
    by_remainder = np.argsort(-(exact - counts), kind="stable")
    counts[by_remainder[: n_images - counts.sum()]] += 1
    counts = np.maximum(counts, 1)  # every class must exist, even for tiny n
    counts[np.argmax(counts)] -= counts.sum() - n_images
    return counts


def _render_chunk(
    face: dict, pose: dict, size: int, photo: bool, rng: np.random.Generator, extra_parts=()
) -> np.ndarray:
    """Images of the sampled faces, posed, lit and noised; extra_parts draw over the face's own parts."""
    n = len(face["skin"])
    x, y = _image_grid(size)
    u, v = _face_coords(x, y, pose)
    # Soft edges one pixel wide are an analytic box-filter anti-alias: as smooth as drawing at 2x and
    # averaging down, at a quarter of the cost.
    edge = (2.0 / size / pose["scale"]).astype(np.float32)

    img = _background(n, x, y, photo, rng)
    for draw in (_draw_head, _draw_eyes, _draw_brows, _draw_nose, _draw_mouth, *extra_parts):
        draw(img, u, v, face, edge)
    _draw_occluders(img, x, y, photo, rng)
    _apply_lighting(img, x, y, rng)

    img = _blur(img, rng)
    img += _col(rng.uniform(0.01, 0.04, n)) * rng.standard_normal(img.shape, np.float32)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


# ---- random parameters -------------------------------------------------------------------------------


def _col(values) -> np.ndarray:
    """Per-image values shaped to broadcast against (n, H, W) grids."""
    return np.asarray(values, np.float32)[:, None, None]


def _expression_deltas(labels: np.ndarray) -> dict:
    """Each image's displacement from the neutral face at full intensity: its class's EXPRESSION_DELTAS."""
    return {k: np.asarray(d)[labels] for k, d in EXPRESSION_DELTAS.items()}


def _sample_face(deltas: dict, rng: np.random.Generator) -> dict:
    """Identity (shape, spacing, tones) plus the expression, as per-image broadcastable columns.

    deltas: per-image arrays under every EXPRESSION_DELTAS key, in its order (each key draws its own jitter).
    """
    n = len(deltas["mouth_open"])
    # Weak and varied expressions overlap with neighbouring classes, as real faces do.
    intensity = rng.uniform(0.6, 1.0, n)
    expr = {k: d * intensity * rng.uniform(0.8, 1.2, n) for k, d in deltas.items()}
    skin = rng.uniform(0.4, 0.8, n)
    face = {
        "face_w": rng.uniform(0.66, 0.84, n),
        "face_h": rng.uniform(0.90, 1.06, n),
        "face_y": rng.uniform(0.04, 0.12, n),
        "skin": skin,
        "hair": np.where(rng.random(n) < 0.8, rng.uniform(0.04, 0.3, n), rng.uniform(0.5, 0.9, n)),
        "hairline": rng.uniform(0.45, 0.7, n),
        "eye_y": rng.normal(-0.17, 0.025, n),
        "eye_dx": rng.uniform(0.25, 0.34, n),
        "eye_w": rng.uniform(0.11, 0.145, n),
        "eye_h": rng.uniform(0.045, 0.065, n) * (1 + expr["eye_open"]),
        "iris": rng.uniform(0.05, 0.3, n),
        "gaze": rng.normal(0, 0.02, n),
        "socket": rng.uniform(0.1, 0.3, n),
        "brow_gap": rng.uniform(0.11, 0.17, n),
        "brow_thick": rng.uniform(0.018, 0.04, n),
        "brow_arch": rng.uniform(0.0, 0.04, n),
        "brow_tone": rng.uniform(0.2, 0.8, n),
        "mouth_y": rng.normal(0.47, 0.025, n),
        "mouth_w": rng.uniform(0.21, 0.29, n) * (1 + expr["mouth_width"]),
        "lip_thick": rng.uniform(0.015, 0.03, n) * (1 - 0.5 * expr["lip_press"]),
        "lip_tone": rng.uniform(0.6, 0.85, n) * (1 - 0.25 * expr["lip_press"]),
        "mouth_side": rng.choice([-1.0, 1.0], n),
        "nostril": rng.uniform(0.3, 0.7, n),
    }
    face.update(
        {
            k: expr[k]
            for k in (
                "brow_raise",
                "brow_inner_raise",
                "brow_inner_in",
                "mouth_curve",
                "mouth_open",
                "mouth_round",
                "upper_lip_raise",
                "nose_wrinkle",
                "teeth",
            )
        }
    )
    return {k: _col(val) for k, val in face.items()}


def _attribute_deltas(present: dict) -> dict:
    """_expression_deltas for attribute faces: the sum of the deltas of the attributes each image shows."""
    return {
        k: present["Smiling"] * SMILE_DELTAS[k] + present["Mouth_Slightly_Open"] * MOUTH_OPEN_DELTAS.get(k, 0.0)
        for k in EXPRESSION_DELTAS
    }


def _sample_accessories(present: dict, rng: np.random.Generator) -> dict:
    """Shape and tone of the bangs, glasses and mustache, drawn where `present` (1 or 0 per image) says."""
    n = len(present["Bangs"])
    accessories = {
        "bangs": present["Bangs"],
        "bangs_reach": rng.uniform(0.0, 0.1, n),  # how far the fringe comes down over the brows
        "bangs_tilt": rng.uniform(-0.2, 0.2, n),  # swept to one side
        "bangs_phase": rng.uniform(0, 2 * np.pi, n),  # where the strands of its ragged edge fall
        "glasses": present["Eyeglasses"],
        "rim_w": rng.uniform(0.16, 0.21, n),
        "rim_h": rng.uniform(0.10, 0.14, n),
        "rim_thick": rng.uniform(0.02, 0.035, n),
        "rim_tone": rng.uniform(0.0, 0.3, n),
        "lens_tint": rng.uniform(0.0, 0.3, n),
        "mustache": present["Mustache"],
        "mustache_w": rng.uniform(1.0, 1.4, n),  # a factor on the mouth's half-width
        "mustache_thick": rng.uniform(0.04, 0.06, n),
        "mustache_arch": rng.uniform(0.0, 0.05, n),
        "mustache_tone": rng.uniform(0.0, 0.25, n),
    }
    return {k: _col(val) for k, val in accessories.items()}


def _sample_pose(n: int, photo: bool, rng: np.random.Generator) -> dict:
    if photo:
        # Head (about 1.7 face units wide with hair) spans 30-60% of the image side (2 image units).
        scale = rng.uniform(0.3, 0.6, n) * 2 / 1.7
        margin = 1 - 1.1 * scale
        shift_x, shift_y = (rng.uniform(-margin, margin) for _ in range(2))
        angle = np.deg2rad(rng.uniform(-15, 15, n))
    else:
        # FER2013 crops are roughly aligned already; what remains is a little jitter.
        scale = rng.uniform(0.88, 1.08, n)
        shift_x, shift_y = rng.normal(0, 0.05, (2, n))
        angle = np.deg2rad(rng.normal(0, 6, n))
    return {k: _col(val) for k, val in {"scale": scale, "shift_x": shift_x, "shift_y": shift_y, "angle": angle}.items()}


# ---- geometry helpers --------------------------------------------------------------------------------


def _image_grid(n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    centres = ((np.arange(n_pixels, dtype=np.float32) + 0.5) / n_pixels) * 2 - 1
    return centres[None, None, :], centres[None, :, None]


def _face_coords(x, y, pose) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = x - pose["shift_x"], y - pose["shift_y"]
    cos, sin = np.cos(pose["angle"]), np.sin(pose["angle"])
    return (cos * dx + sin * dy) / pose["scale"], (-sin * dx + cos * dy) / pose["scale"]


def _image_coords(u, v, pose) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of _face_coords."""
    cos, sin = np.cos(pose["angle"]), np.sin(pose["angle"])
    return (
        pose["shift_x"] + pose["scale"] * (cos * u - sin * v),
        pose["shift_y"] + pose["scale"] * (sin * u + cos * v),
    )


def _landmarks(f, pose, size: int) -> np.ndarray:
    """(n, 5, 2) pixel (x, y) of the eye centres, nose tip and mouth corners, left-in-image first."""
    zero = np.zeros_like(f["eye_dx"])
    # The mouth's middle line bends by mouth_curve * t^2, so the corners (t = +-1) sit mouth_curve above mouth_y.
    corner_y = f["mouth_y"] - f["mouth_curve"]
    u = np.concatenate([-f["eye_dx"], f["eye_dx"], zero, -f["mouth_w"], f["mouth_w"]], axis=1)
    v = np.concatenate([f["eye_y"], f["eye_y"], _nose_tip_y(f), corner_y, corner_y], axis=1)
    x, y = _image_coords(u, v, pose)
    return np.stack([x[..., 0], y[..., 0]], axis=-1) * (size / 2) + (size / 2 - 0.5)


def _soft(distance, edge):
    """Coverage of a shape from its signed distance (< 0 inside), with a one-edge-wide ramp."""
    coverage = distance / edge  # a fresh array, so the rest can be done in place
    np.subtract(0.5, coverage, out=coverage)
    return np.clip(coverage, 0, 1, out=coverage)


def _ellipse_distance(u, v, cx, cy, a, b):
    """Approximate signed distance to an ellipse; exact enough for soft edges of near-round shapes."""
    return (np.sqrt(((u - cx) / a) ** 2 + ((v - cy) / b) ** 2) - 1) * np.minimum(a, b)


def _blend(img, coverage, tone):
    change = tone - img
    change *= coverage
    img += change


def _stroke_distance(u, v, x0, x1, y0, y1, arch, half_thickness):
    """Distance to a thick arched stroke from (x0, y0) to (x1, y1), x0 < x1, measured vertically."""
    t = (u - x0) / (x1 - x0)
    centre = y0 + (y1 - y0) * t - arch * 4 * t * (1 - t)
    beyond_ends = (np.abs(t - 0.5) - 0.5) * (x1 - x0)
    return np.maximum(np.abs(v - centre) - half_thickness, beyond_ends)


def _smooth_noise(n, n_pixels, cells, rng):
    """Low-frequency noise: a coarse random grid, bilinearly upsampled."""
    coarse = rng.standard_normal((n, cells, cells)).astype(np.float32)
    return _upsampled(_upsampled(coarse, n_pixels, axis=1), n_pixels, axis=2)


def _upsampled(values: np.ndarray, n_pixels: int, axis: int) -> np.ndarray:
    """values linearly interpolated along axis at n_pixels pixel centres spanning its first to last entry."""
    cells = values.shape[axis]
    position = (np.arange(n_pixels) + 0.5) / n_pixels * (cells - 1)
    below = np.floor(position).astype(np.int64)  # at most cells - 2: the last centre is before the last entry
    weight = np.expand_dims((position - below).astype(np.float32), [a for a in range(values.ndim) if a != axis])
    return np.take(values, below, axis) * (1 - weight) + np.take(values, below + 1, axis) * weight


# ---- drawing -----------------------------------------------------------------------------------------


def _background(n, x, y, photo, rng) -> np.ndarray:
    size = x.shape[-1]
    img = _col(rng.uniform(0.2, 0.8, n)) + 0.08 * _smooth_noise(n, size, 4, rng)
    if photo:
        _draw_clutter(img, x, y, rng)
    return img


def _draw_clutter(img, x, y, rng):
    """Rectangles, blobs and gradients: the furniture and walls a face detector must ignore."""
    n = len(img)
    img += _col(rng.uniform(-0.3, 0.3, n)) * x + _col(rng.uniform(-0.3, 0.3, n)) * y
    img += 0.15 * _smooth_noise(n, x.shape[-1], 8, rng)
    edge = 2.0 / x.shape[-1]
    for _ in range(6):
        cx, cy, half_w, half_h, tone = (
            _col(v) for v in rng.uniform([-1, -1, 0.05, 0.05, 0.0], [1, 1, 0.5, 0.5, 1.0], (n, 5)).T
        )
        distance = np.maximum(np.abs(x - cx) - half_w, np.abs(y - cy) - half_h)
        _blend(img, _soft(distance, edge), tone)
    for _ in range(3):
        cx, cy, a, b, tone = (_col(v) for v in rng.uniform([-1, -1, 0.05, 0.05, 0.0], [1, 1, 0.3, 0.3, 1.0], (n, 5)).T)
        _blend(img, _soft(_ellipse_distance(x, y, cx, cy, a, b), edge), tone)


def _draw_head(img, u, v, f, edge):
    fy = f["face_y"]
    neck = np.maximum(np.abs(u) - 0.5 * f["face_w"], np.abs(v - fy - 1.1) - 0.7)
    _blend(img, _soft(neck, edge), 0.8 * f["skin"])
    # Skin darkens towards the outline, so the head reads as round and the cheeks as the lightest part.
    radius = np.sqrt((u / f["face_w"]) ** 2 + ((v - fy) / f["face_h"]) ** 2)
    shaded_skin = f["skin"] * (1.08 - 0.3 * np.square(np.square(radius)))
    _blend(img, _soft((radius - 1) * f["face_w"], edge), shaded_skin)
    # Hair: a cap over the top of the head, reaching lower at the sides (temples).
    cap = _ellipse_distance(u, v, 0, fy - 0.04, 1.08 * f["face_w"], 1.06 * f["face_h"])
    hairline = fy - f["hairline"] * f["face_h"] + 0.45 * (u / f["face_w"]) ** 2
    _blend(img, _soft(np.maximum(cap, v - hairline), edge), f["hair"])


def _draw_eyes(img, u, v, f, edge):
    du, dv = np.abs(u) - f["eye_dx"], v - f["eye_y"]
    # Shadowed sockets give the dark eye band above lighter cheeks that face detectors look for.
    socket = np.exp(-((du / (1.6 * f["eye_w"])) ** 2) - ((dv + 0.02) / 0.09) ** 2)
    img *= 1 - f["socket"] * socket
    lower_lid = 0.8 * f["eye_h"]
    opening = _ellipse_distance(du, dv, 0, 0, f["eye_w"], np.where(dv < 0, f["eye_h"], lower_lid))
    opening_cover = _soft(opening, edge)
    _blend(img, opening_cover, np.minimum(1.0, f["skin"] + 0.15))
    iris = np.sqrt((du - f["gaze"]) ** 2 + dv**2) - 0.045
    _blend(img, opening_cover * _soft(iris, edge), f["iris"])
    lash_line = np.maximum(np.abs(opening) - 0.012, dv)
    _blend(img, _soft(lash_line, edge), 0.6 * f["iris"])


def _draw_brows(img, u, v, f, edge):
    inner_x = f["eye_dx"] - 0.1 - f["brow_inner_in"]
    outer_x = f["eye_dx"] + 0.16
    base_y = f["eye_y"] - f["brow_gap"] - f["brow_raise"]
    brow = _stroke_distance(
        np.abs(u), v, inner_x, outer_x, base_y - f["brow_inner_raise"], base_y, f["brow_arch"], f["brow_thick"]
    )
    _blend(img, _soft(brow, edge), f["brow_tone"] * f["hair"] + (1 - f["brow_tone"]) * 0.5 * f["skin"])


def _nose_tip_y(f):
    return f["mouth_y"] - 0.25


def _draw_nose(img, u, v, f, edge):
    nose_y = _nose_tip_y(f)
    sides = _stroke_distance(np.abs(u), v, 0.05, 0.07, f["eye_y"] + 0.08, nose_y, 0, 0.01)
    _blend(img, 0.35 * _soft(sides, edge), 0.7 * f["skin"])
    # Disgust pulls the nostrils up along with the wrinkles.
    nostril_y = nose_y + 0.02 - 0.03 * f["nose_wrinkle"]
    nostrils = _ellipse_distance(np.abs(u), v, 0.065, nostril_y, 0.035, 0.018)
    _blend(img, _soft(nostrils, edge), f["nostril"] * f["skin"])
    bridge_y = f["eye_y"] + 0.05
    wrinkles = np.minimum(
        _stroke_distance(u, v, -0.08, 0.08, bridge_y, bridge_y, -0.02, 0.008),
        _stroke_distance(u, v, -0.07, 0.07, bridge_y + 0.045, bridge_y + 0.045, -0.02, 0.008),
    )
    _blend(img, 0.6 * np.minimum(f["nose_wrinkle"], 1) * _soft(wrinkles, edge), 0.6 * f["skin"])


def _draw_mouth(img, u, v, f, edge):
    t = u / f["mouth_w"]
    inside = np.clip(1 - t**2, 0, None)
    middle = f["mouth_y"] - f["mouth_curve"] * t**2
    # Lens-shaped gap for smiles and cries; "O" shaped (square-root profile) for surprise.
    gap = f["mouth_open"] * ((1 - f["mouth_round"]) * inside + f["mouth_round"] * np.sqrt(inside))
    one_side = np.clip(t * f["mouth_side"], 0, 1) * inside
    upper = middle - 0.5 * gap - f["upper_lip_raise"] * one_side
    lower = middle + 0.5 * gap
    lip_thick = f["lip_thick"] * np.sqrt(inside)
    # Every mouth shape ends at the corners; without this its zero-height edge would run on as a line.
    beyond_corners = (np.abs(t) - 1) * f["mouth_w"]
    lips = np.maximum(np.maximum(upper - lip_thick - v, v - lower - lip_thick), beyond_corners)
    _blend(img, _soft(lips, edge), f["lip_tone"] * f["skin"])
    gap_cover = _soft(np.maximum(np.maximum(upper - v, v - lower), beyond_corners), edge)
    _blend(img, gap_cover, 0.1)
    teeth = gap_cover * _soft(v - (upper + 0.4 * (lower - upper)), edge)
    _blend(img, np.minimum(f["teeth"], 1) * teeth, 0.85)


def _draw_bangs(img, u, v, f, edge):
    """A hair fringe from the hairline down over the brows, its lower edge ragged with strands."""
    brow_top = f["eye_y"] - f["brow_gap"] - f["brow_raise"] - f["brow_thick"]
    fringe_end = brow_top + f["bangs_reach"] + f["bangs_tilt"] * u + 0.025 * np.sin(30 * u + f["bangs_phase"])
    cap = _ellipse_distance(u, v, 0, f["face_y"] - 0.04, 1.08 * f["face_w"], 1.06 * f["face_h"])
    _blend(img, f["bangs"] * _soft(np.maximum(cap, v - fringe_end), edge), 0.7 * f["hair"])


def _draw_mustache(img, u, v, f, edge):
    """A dark band above the upper lip, its ends drooping towards the mouth corners."""
    half_w = f["mustache_w"] * f["mouth_w"]
    upper_lip = f["mouth_y"] - 0.5 * f["mouth_open"] - f["lip_thick"]
    centre = upper_lip - f["mustache_thick"] - 0.03
    band = _stroke_distance(u, v, -half_w, half_w, centre, centre, f["mustache_arch"], f["mustache_thick"])
    _blend(img, f["mustache"] * _soft(band, edge), f["mustache_tone"])


def _draw_glasses(img, u, v, f, edge):
    """Two rims around the eyes, joined by a bridge, with arms back to the sides of the head; tinted lenses."""
    rim_y = f["eye_y"] + 0.01
    lens = _ellipse_distance(np.abs(u), v, f["eye_dx"], rim_y, f["rim_w"], f["rim_h"])
    _blend(img, f["glasses"] * f["lens_tint"] * _soft(lens, edge), f["rim_tone"])
    inner, outer = f["eye_dx"] - f["rim_w"], f["eye_dx"] + f["rim_w"]
    bridge = _stroke_distance(u, v, -inner, inner, rim_y - 0.03, rim_y - 0.03, 0.02, 0.6 * f["rim_thick"])
    arms = _stroke_distance(np.abs(u), v, outer, f["face_w"], rim_y - 0.03, rim_y - 0.05, 0, 0.6 * f["rim_thick"])
    frame = np.minimum(np.abs(lens) - f["rim_thick"], np.minimum(bridge, arms))
    _blend(img, f["glasses"] * _soft(frame, edge), f["rim_tone"])


def _draw_occluders(img, x, y, photo, rng):
    """Now and then a hand, strand of hair or microphone hides part of the face, as in FER2013."""
    n = len(img)
    present = rng.random(n) < (0.1 if photo else 0.15)
    cx, cy, a, b, tone = (
        _col(val) for val in rng.uniform([-0.8, -0.8, 0.1, 0.1, 0.0], [0.8, 0.8, 0.35, 0.35, 1.0], (n, 5)).T
    )
    cover = _soft(_ellipse_distance(x, y, cx, cy, a, b), 2.0 / x.shape[-1])
    _blend(img, cover * _col(present), tone)


def _apply_lighting(img, x, y, rng):
    n = len(img)
    direction = _col(rng.uniform(0, 2 * np.pi, n))
    strength = _col(rng.uniform(0, 0.35, n))
    img *= 1 + strength * (np.cos(direction) * x + np.sin(direction) * y)
    img *= _col(rng.uniform(0.75, 1.2, n))


def _blur(img, rng) -> np.ndarray:
    """A per-image Gaussian blur (camera focus, upscaled web images), separable: along y, then along x."""
    sigma = _col(rng.uniform(0.05, 0.8, len(img)))
    return _blurred_along(_blurred_along(img, sigma, axis=1), sigma, axis=2)


def _blurred_along(img: np.ndarray, sigma: np.ndarray, axis: int) -> np.ndarray:
    """img (n, H, W) convolved along axis 1 or 2 with each image's Gaussian of sigma (n, 1, 1), cut at 4 times
    the largest sigma and renormalised at the borders so that they keep their brightness."""
    size, radius = img.shape[axis], np.ceil(4 * sigma.max())
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    source = np.arange(size)[:, None] + offsets.astype(np.int64)[None, :]  # (size, offsets)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2) * ((source >= 0) & (source < size))  # (n, size, offsets)
    weights /= weights.sum(axis=2, keepdims=True)
    source = np.clip(source, 0, size - 1)  # where the weight is 0
    blurred = np.zeros_like(img)
    for k in range(len(offsets)):
        weight = weights[:, :, k, None] if axis == 1 else weights[:, None, :, k]
        blurred += weight * np.take(img, source[:, k], axis)
    return blurred
