"""Fixtures and params shared by several test modules."""

import os
import shutil
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The tests start hundreds of dvc commands, none of which should spawn a daemon to send usage analytics.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # xdist already runs a worker per core: one thread each (and in the stages they start), not a core's share of
    # threads competing with the other workers'.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # after OMP_NUM_THREADS, which it reads once
from filelock import FileLock

from fer.core.labels import LabelSet
from fer.core.params import ModelParams, TrainParams, load_params
from fer.data.datasets import save_images
from fer.data.sources.synthetic import generate
from fer.evaluate.records import Evaluation
from fer.runtime.checkpoint import tensors_sha256
from fer.serve.predict import FacePrediction
from fer.serve.prediction_log import PredictionLog
from fer.train.job import TrainJob
from fer.train.trainer import train_model

REPO = Path(__file__).resolve().parents[1]
# A leaderboard row's keys when each model has one seed (the champion's row; the others add TIE_KEYS), spelled
# out here rather than read from fer.evaluate.leaderboard, so that a column lost there fails the tests.
PLAIN_ROW = {
    "rank",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1",
    "macro_f1_ci_low",
    "macro_f1_ci_high",
    "ece",
    "latency_ms",
    "params",
}
TIE_KEYS = {"vs_champion_p", "tied_with_champion"}
# The repository's own params: the one source of every default, which tests override where they need to.
REPO_PARAMS = load_params(REPO / "params.yaml")


def files_and_bytes(root: Path) -> dict[Path, bytes]:
    """Every file below root (relative path -> bytes), to compare a folder before and after."""
    return {file.relative_to(root): file.read_bytes() for file in root.rglob("*") if file.is_file()}


def with_weights(checkpoint: Path, path: Path, replaced: dict[str, torch.Tensor]) -> Path:
    """A copy of checkpoint at path, with the tensors named in replaced (state_dict keys) swapped in, as if it
    had been saved with them (its digest matches them)."""
    content = torch.load(checkpoint, weights_only=True)
    state_dict = {**content["state_dict"], **replaced}
    torch.save({**content, "state_dict": state_dict, "tensors_sha256": tensors_sha256(state_dict)}, path)
    return path


def train_params(**overrides) -> TrainParams:
    """The repository's train: section on the CPU, with `overrides`."""
    return REPO_PARAMS.train.model_copy(update={"device": "cpu", **overrides})


def evaluation_record(
    model: str, accuracy: float, macro_f1: float, params: int = 1_000_000, seed: int = 42, **fields
) -> Evaluation:
    """An evaluation with the given scores (intervals +-0.05 around them) and plausible everything else."""
    values = {
        "model": model,
        "arch": "cnn",
        "task": "expression",
        "seed": seed,
        "checkpoint": f"{model}.pt",
        "sha256": "0" * 64,
        "predictions": f"{model}-seed{seed}.json",
        "classes": ["a", "b"],
        "test_images": 400,
        "accuracy": accuracy,
        "accuracy_ci_low": accuracy - 0.05,
        "accuracy_ci_high": accuracy + 0.05,
        "macro_f1": macro_f1,
        "macro_f1_ci_low": macro_f1 - 0.05,
        "macro_f1_ci_high": macro_f1 + 0.05,
        "per_class": {},
        "ece": 0.05,
        "params": params,
        "size_bytes": 4 * params,
        "latency_ms": 1.5,
    }
    values = {key: round(value, 4) if isinstance(value, float) else value for key, value in values.items()}
    return Evaluation(**{**values, **fields})


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """Small synthetic train and val splits on disk."""
    root = tmp_path_factory.mktemp("tiny") / "split"
    for name, seed in (("train", 1), ("val", 2)):
        ds = generate(210 if name == "train" else 70, 48, seed, photo=False)
        save_images(
            root / name, np.stack(ds.images), pd.DataFrame({"label": ds.labels, "source": ds.source}), ds.label_set
        )
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_split):
    """A tiny mlp trained for one epoch on the tiny split: real, if weak, predictions."""
    spec = ModelParams(arch="mlp", image_size=48, options={"hidden": [32]})
    path = tiny_split.parent / "mlp.pt"
    train_model(TrainJob("mlp", spec, train_params(epochs=1, batch_size=32), seed=7, split_dir=tiny_split), path)
    return path


def pytest_collection_modifyitems(items):
    # pytest-xdist hands tests to its workers in collection order: the long end-to-end ones go first, so that
    # the short ones fill in around them instead of one worker finishing with a long test alone. It starts each
    # worker with two consecutive tests, then sends one at a time: the first worker gets two that start from the
    # tiny pipeline (and builds it), the second two that build their own repository instead of waiting for the
    # first to finish building, and after those the two kinds alternate.
    end_to_end = [item for item in items if item.get_closest_marker("e2e")]
    from_tiny = [item for item in end_to_end if "tiny_pipeline" in item.fixturenames]
    own_repo = [item for item in end_to_end if "tiny_pipeline" not in item.fixturenames]
    alternated = [item for pair in zip_longest(from_tiny[2:], own_repo[2:]) for item in pair if item is not None]
    first = from_tiny[:2] + own_repo[:2]
    items[:] = first + alternated + [item for item in items if not item.get_closest_marker("e2e")]


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """What build(folder) returns, built once per test run and shared by pytest-xdist's workers: the first worker
    to ask builds it while the others wait on a file lock, then all read the same folder."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:  # each worker has its own basetemp below the run's
        root = root.parent
    folder, built = root / name, root / f"{name}.built"
    with FileLock(root / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            built.write_text(str(build(folder)))
    return Path(built.read_text())


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    """test_pipeline_e2e's TINY pipeline reproduced once, every stage, for the e2e tests that start from it: each
    copies it (_copy_repo) instead of reproducing it again, and none changes this one."""
    from test_pipeline_e2e import TINY, _make_repo, _repro  # here, as that module imports this one

    def build(folder: Path) -> Path:
        repo = _make_repo(folder, **TINY)
        _repro(repo)
        return repo

    return built_once(tmp_path_factory, "tiny_pipeline", build)


def write_prediction_log(path: Path, faces: int = 5) -> Path:
    """A prediction log at path holding `faces` happy faces whose brightness and sharpness differ."""
    log = PredictionLog(path)
    head = LabelSet("expression", ("happy",)).head
    stats = [{"brightness": 0.5 + i / 100, "contrast": 0.2, "sharpness": 3.0 + i} for i in range(faces)]
    log.record("mlp", [FacePrediction((0, 0, 48, 48), 1.0, {"happy": 1.0}, head, row).log_row() for row in stats])
    return path
