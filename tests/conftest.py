"""Fixtures and params shared by several test modules."""

from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pandas as pd
import pytest
from skimage import data as skdata

from fer.core.params import ModelParams, TrainParams, load_params
from fer.data.datasets import save_images
from fer.data.sources.synthetic import generate
from fer.train.trainer import train_model

REPO = Path(__file__).resolve().parents[1]
# The repository's own params: the one source of every default, which tests override where they need to.
REPO_PARAMS = load_params(REPO / "params.yaml")


def train_params(**overrides) -> TrainParams:
    """The repository's train: section on the CPU, with `overrides`."""
    return REPO_PARAMS.train.model_copy(update={"device": "cpu", **overrides})


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """Small synthetic train and val splits on disk."""
    root = tmp_path_factory.mktemp("tiny") / "split"
    for name, seed in (("train", 1), ("val", 2)):
        ds = generate(210 if name == "train" else 70, 48, seed)
        save_images(root / name, np.stack(ds.images), pd.DataFrame({"label": ds.labels, "source": ds.source}))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_split):
    """A tiny mlp trained for one epoch on the tiny split: real, if weak, predictions."""
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    path = tiny_split.parent / "mlp.pt"
    train_model("mlp", spec, train_params(epochs=1, batch_size=32), seed=7, split_dir=tiny_split, checkpoint_path=path)
    return path


# ---- real photos that ship inside packages (never committed here) -----------------------------------

def grace_hopper() -> np.ndarray:
    """matplotlib's 600x512 black-and-white portrait of Grace Hopper, grey."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_GRAYSCALE)


def astronaut() -> np.ndarray:
    """skimage's 512x512 colour portrait of Eileen Collins, grey."""
    return cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY)


def group_photo() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 720x480 grey group photo composed from five real faces on grass, and each face's (x, y, side).

    The faces are ~40%, ~30%, ~20%, ~12% and ~7% of the shorter side: the astronaut's and Grace Hopper's
    faces with some head and shoulders around them, then three tight 25x25 lfw_subset crops upscaled.
    """
    grass = skdata.grass()
    canvas = (cv2.resize(grass, (720, 480)) * 0.6 + 60).astype(np.uint8)
    lfw = [np.round(img * 255).astype(np.uint8) for img in skdata.lfw_subset()[:3]]
    placed = [(astronaut()[16:216, 124:324], 340, 10, 70), (grace_hopper()[44:404, 87:447], 248, 360, 10),
              (lfw[0], 100, 380, 300), (lfw[1], 60, 520, 320), (lfw[2], 36, 620, 330)]
    for source, side, x, y in placed:
        shrink = source.shape[0] > side
        canvas[y : y + side, x : x + side] = cv2.resize(
            source, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return canvas, [(x, y, side) for _, side, x, y in placed]
