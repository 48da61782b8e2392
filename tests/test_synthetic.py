import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from fer.core.emotions import EMOTIONS
from fer.data.faces import FIVE_POINT_TEMPLATE
from fer.data.sources.synthetic import FER2013_TRAIN_COUNTS, class_counts, generate, generate_with_landmarks

HAPPY, SAD, DISGUST = EMOTIONS.index("happy"), EMOTIONS.index("sad"), EMOTIONS.index("disgust")

# numpy's AVX-512 code paths, by the names of numpy 1.26 to 2.4.
NUMPY_AVX512_PATHS = "AVX512F AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR X86_V4"
# The default data set's hash, and the BLAS kernel that drew it.
DEFAULT_SET_DIGEST = """
import hashlib, json
import numpy as np
from threadpoolctl import threadpool_info
from fer.core.params import load_params
from fer.data.sources import load_source
digest = hashlib.sha256(np.stack(load_source(load_params()).images).tobytes()).hexdigest()
kernels = [pool.get("architecture") for pool in threadpool_info() if pool["internal_api"] == "openblas"]
print(json.dumps({"digest": digest, "kernels": kernels}))
"""


@pytest.fixture(scope="module")
def faces():
    return generate(700, 48, 3, photo=False)


def test_same_seed_gives_identical_images_and_labels(faces):
    again = generate(700, 48, 3, photo=False)
    assert np.array_equal(np.stack(faces.images), np.stack(again.images))
    assert np.array_equal(faces.labels, again.labels)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="names OpenBLAS's x86-64 kernels")
def test_the_default_data_set_is_the_same_bits_whichever_blas_kernel_and_numpy_path_the_cpu_picks():
    # OpenBLAS picks its kernel by CPU; Prescott, its SSE3 one, runs on every x86-64 CPU. Matrix products once
    # moved pixels of the default faces between two kernels (docs/noise.md). numpy picks its own code paths by CPU
    # too: the second run also leaves out its AVX-512 ones, as on an AVX2 CPU.
    switched = {"OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": NUMPY_AVX512_PATHS}
    environment = {name: value for name, value in os.environ.items() if name not in switched}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", DEFAULT_SET_DIGEST],
                cwd=REPO,
                env={**environment, **kernel},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for kernel in ({}, switched)
    ]
    if not runs[0]["kernels"]:
        pytest.skip("numpy does not use OpenBLAS here")
    assert runs[0]["kernels"] != runs[1]["kernels"]  # the variable took effect
    assert runs[0]["digest"] == runs[1]["digest"]


def test_different_seed_gives_different_images():
    a, b = generate(100, 48, 0, photo=False), generate(100, 48, 1, photo=False)
    assert not np.array_equal(np.stack(a.images), np.stack(b.images))


def test_crop_mode_shapes_and_metadata(faces):
    assert len(faces) == 700
    assert all(im.shape == (48, 48) and im.dtype == np.uint8 for im in faces.images)
    assert faces.usage == [""] * 700
    assert faces.source[:2] == ["synthetic:0", "synthetic:1"]
    assert set(faces.labels.tolist()) <= set(range(len(EMOTIONS)))


def test_image_size_is_honoured():
    ds = generate(70, 64, 0, photo=False)
    assert {im.shape for im in ds.images} == {(64, 64)}


def test_photo_mode_returns_photo_size_images():
    ds = generate(70, 96, 0, photo=True)
    assert {im.shape for im in ds.images} == {(96, 96)}
    assert all(im.dtype == np.uint8 for im in ds.images)


def test_registered_crops_have_their_landmarks_on_the_registration_template_on_average():
    # FIVE_POINT_TEMPLATE was placed where these crops draw the eyes, nose tip and mouth corners.
    _, landmarks = generate_with_landmarks(700, 48, 3, photo=False)
    assert landmarks.shape == (700, 5, 2)
    assert np.abs((landmarks.mean(axis=0) + 0.5) / 48 - FIVE_POINT_TEMPLATE).max() < 0.01


def test_all_classes_present_and_disgust_rarest(faces):
    counts = np.bincount(faces.labels, minlength=len(EMOTIONS))
    assert (counts > 0).all()
    assert counts.argmin() == DISGUST


@pytest.mark.parametrize("n", [70, 71, 700, 1234, 6000])
def test_counts_follow_fer2013_proportions(n):
    counts = class_counts(n)
    assert counts.sum() == n and (counts >= 1).all()
    exact = n * FER2013_TRAIN_COUNTS / FER2013_TRAIN_COUNTS.sum()
    assert np.abs(counts - exact).max() < 1


def test_generated_labels_match_class_counts(faces):
    assert np.array_equal(np.bincount(faces.labels, minlength=len(EMOTIONS)), class_counts(700))


def test_happy_and_sad_mouths_differ_on_average(faces):
    images = np.stack(faces.images).astype(np.float64)
    mouth = images[:, 30:42, 14:34]
    happy, sad = mouth[faces.labels == HAPPY].mean(0), mouth[faces.labels == SAD].mean(0)
    forehead = images[:, 4:12, 14:34]
    happy_fh, sad_fh = forehead[faces.labels == HAPPY].mean(0), forehead[faces.labels == SAD].mean(0)
    # The expression shows at the mouth, well beyond the identity noise seen where nothing changes.
    assert np.abs(happy - sad).mean() > 2 * np.abs(happy_fh - sad_fh).mean()
