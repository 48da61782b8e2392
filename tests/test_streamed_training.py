"""A split too large for the device budget is trained on from its memory-mapped file, a batch read ahead: the
model sees the same batches, labels and augmentations as with the split held whole on the device."""

import numpy as np
import pytest
import torch
from conftest import train_params

from fer.core.params import ModelParams
from fer.data.datasets import load_split, split_label_set
from fer.models import build_model
from fer.runtime.checkpoint import read_checkpoint
from fer.runtime.device import data_budget_bytes
from fer.runtime.inputs import HostImages, split_for_training
from fer.train.job import TrainJob
from fer.train.loop import TrainingData, fit
from fer.train.trainer import train_model

CPU = torch.device("cpu")


def _fit(split_dir, whole: bool, **overrides):
    label_set = split_label_set(split_dir)
    train, val = (load_split(split_dir, name, mmap_mode="r") for name in ("train", "val"))
    data = TrainingData(label_set, split_for_training(*train, CPU, whole), split_for_training(*val, CPU, whole))
    cfg = train_params(epochs=2, batch_size=32, **overrides)
    torch.manual_seed(0)
    model, spec = build_model("cnn", len(label_set.classes), 48, False, cfg.dropout, widths=[8, 16])
    return data, fit(model, spec, data, cfg, seed=3)


@pytest.mark.parametrize("max_train_images", [0, 150])  # 150: a fresh random subset of the split each epoch
def test_fit_from_the_memory_mapped_split_sees_what_it_sees_on_the_device(tiny_split, max_train_images):
    on_device, whole = _fit(tiny_split, True, max_train_images=max_train_images)
    streamed_data, streamed = _fit(tiny_split, False, max_train_images=max_train_images)
    assert isinstance(streamed_data.train[0], HostImages) and isinstance(on_device.train[0], torch.Tensor)
    assert isinstance(streamed_data.train[0].images, np.memmap)  # read from the file, not loaded
    assert [(h.train_loss, h.train_acc, h.val_acc) for h in streamed.history] == [
        (h.train_loss, h.train_acc, h.val_acc) for h in whole.history
    ]
    assert whole.best_state.keys() == streamed.best_state.keys()
    assert all(torch.equal(whole.best_state[k], streamed.best_state[k]) for k in whole.best_state)


def test_a_split_over_the_budget_trains_to_the_same_checkpoint(tiny_split, tmp_path):
    split_bytes = sum(load_split(tiny_split, name, mmap_mode="r")[0].nbytes for name in ("train", "val"))
    assert data_budget_bytes(CPU, 0.1) < split_bytes < data_budget_bytes(CPU, 0)  # 0: half the available RAM
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    weights = {}
    for budget_mb in (0, 0.1):
        job = TrainJob("mlp", spec, train_params(epochs=1, batch_size=32, device_budget_mb=budget_mb), 7, tiny_split)
        train_model(job, tmp_path / f"{budget_mb}.pt")
        weights[budget_mb] = read_checkpoint(tmp_path / f"{budget_mb}.pt")[0]
    assert all(torch.equal(weights[0][k], weights[0.1][k]) for k in weights[0])
