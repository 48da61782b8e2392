"""Fixtures shared by several test modules."""

import numpy as np
import pandas as pd
import pytest

from fer.datasets import save_images
from fer.params import ModelParams, TrainParams
from fer.sources.synthetic import generate
from fer.training import train_model


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """Small synthetic train and val splits on disk."""
    root = tmp_path_factory.mktemp("tiny") / "split"
    for name, seed in (("train", 1), ("val", 2)):
        ds = generate(140 if name == "train" else 70, 48, seed)
        save_images(root / name, np.stack(ds.images), pd.DataFrame({"label": ds.labels}))
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_split):
    """A tiny mlp trained for one epoch on the tiny split: real, if weak, predictions."""
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    cfg = TrainParams(epochs=1, batch_size=32, device="cpu")
    path = tiny_split.parent / "mlp.pt"
    train_model("mlp", spec, cfg, seed=7, split_dir=tiny_split, checkpoint_path=path)
    return path
