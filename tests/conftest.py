"""Fixtures and params shared by several test modules."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fer.core.params import ModelParams, TrainParams, load_params
from fer.data.datasets import save_images
from fer.data.sources.synthetic import generate
from fer.train.trainer import train_model

REPO = Path(__file__).resolve().parents[1]
# The repository's own params: the one source of every default, which tests override where they need to.
REPO_PARAMS = load_params(REPO / "params.yaml")


def files_and_bytes(root: Path) -> dict[Path, bytes]:
    """Every file below root (relative path -> bytes), to compare a folder before and after."""
    return {file.relative_to(root): file.read_bytes() for file in root.rglob("*") if file.is_file()}


def with_weights(checkpoint: Path, path: Path, replaced: dict[str, torch.Tensor]) -> Path:
    """A copy of checkpoint at path, with the tensors named in replaced (state_dict keys) swapped in."""
    content = torch.load(checkpoint, weights_only=True)
    torch.save({**content, "state_dict": {**content["state_dict"], **replaced}}, path)
    return path


def train_params(**overrides) -> TrainParams:
    """The repository's train: section on the CPU, with `overrides`."""
    return REPO_PARAMS.train.model_copy(update={"device": "cpu", **overrides})


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """Small synthetic train and val splits on disk."""
    root = tmp_path_factory.mktemp("tiny") / "split"
    for name, seed in (("train", 1), ("val", 2)):
        ds = generate(210 if name == "train" else 70, 48, seed)
        save_images(root / name, np.stack(ds.images), pd.DataFrame({"label": ds.labels, "source": ds.source}),
                    ds.label_set)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_split):
    """A tiny mlp trained for one epoch on the tiny split: real, if weak, predictions."""
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    path = tiny_split.parent / "mlp.pt"
    train_model("mlp", spec, train_params(epochs=1, batch_size=32), seed=7, split_dir=tiny_split, checkpoint_path=path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """test_pipeline_e2e's TINY pipeline reproduced once, every stage, for the e2e tests that start from it: each
    copies it (_copy_repo) instead of reproducing it again, and none changes this one."""
    from test_pipeline_e2e import TINY, _make_repo, _repro  # here, as that module imports this one

    repo = _make_repo(tmp_path_factory.mktemp("tiny_pipeline"), **TINY)
    _repro(repo)
    return repo
