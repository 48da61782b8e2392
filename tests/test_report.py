"""fer report on real git revisions of a small DVC repository: verdicts from paired tests of real models'
per-image predictions (another seed is noise; shuffled labels are a change), and the fallback to intervals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO_PARAMS, train_params
from PIL import Image

from fer.core.labels import FER2013
from fer.core.params import ModelParams
from fer.data.datasets import save_images
from fer.evaluate.evaluation import Evaluated, evaluate_checkpoint, write_evaluation
from fer.tools.report import build_report, params_section, render_plots, verdicts_section
from fer.train.job import TrainJob
from fer.train.trainer import train_model

ALPHA = REPO_PARAMS.compare.alpha
RUN = "mlp-seed42"
DVC_YAML = {
    "stages": {
        "evaluate": {
            "cmd": "true",
            "params": ["models"],
            "metrics": [{f"metrics/evaluate/{RUN}.json": {"cache": False}}],
            "plots": [
                {
                    "plots/leaderboard.json": {
                        "cache": False,
                        "x": "accuracy",
                        "y": "model",
                        "template": "bar_horizontal",
                    }
                },
                {
                    f"plots/predictions/{RUN}.json": {
                        "cache": False,
                        "template": "confusion",
                        "x": "predicted",
                        "y": "actual",
                    }
                },
            ],
        }
    }
}


def _stripes(n: int, seed: int, shuffled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A task an mlp learns in seconds to ~75%: class k brightens rows 4k..4k+3 of a noisy 32x32 image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(FER2013.classes), n)
    images = rng.normal(100, 60, (n, 32, 32))
    for k in range(len(FER2013.classes)):
        images[labels == k, 4 * k : 4 * k + 4, :] += 25
    return images.clip(0, 255).astype(np.uint8), rng.permutation(labels) if shuffled else labels


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict[str, Evaluated]:
    """The same mlp and params trained with seed 7 and seed 8 (noise), and seed 7 on shuffled labels (a real
    change), each evaluated on the same 400 test images."""
    root = tmp_path_factory.mktemp("report")
    for split, shuffled in (("split", False), ("shuffled", True)):
        for name, n, seed in (("train", 256, 0), ("val", 64, 1)):
            images, labels = _stripes(n, seed, shuffled)
            save_images(root / split / name, images, pd.DataFrame({"label": labels}), FER2013)
    test_images, test_labels = _stripes(400, 2)
    spec = ModelParams(arch="mlp", image_size=32, options={"hidden": [32]})
    runs = {}
    for tag, seed, split in (("seed7", 7, "split"), ("seed8", 8, "split"), ("shuffled", 7, "shuffled")):
        cfg = train_params(epochs=4, batch_size=32, lr=0.01, label_smoothing=0.0)
        train_model(TrainJob("mlp", spec, cfg, seed=seed, split_dir=root / split), root / f"{tag}.pt")
        runs[tag], _ = evaluate_checkpoint(
            root / f"{tag}.pt",
            test_images,
            test_labels,
            FER2013,
            REPO_PARAMS.evaluate,
            predictions_path=f"plots/predictions/{RUN}.json",
        )
    return runs


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True, capture_output=True
    )


def _write_revision(repo: Path, lr: float, run: Evaluated | None, old_format_accuracy: float | None = None):
    """params.yaml with models.mlp.lr, and the run's evaluation files; or, with old_format_accuracy, a metrics
    file as commits before per-image predictions wrote it (no interval, no predictions)."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"models": {"mlp": {"lr": lr}}}))
    if run is None:
        (repo / "metrics" / "evaluate").mkdir(parents=True, exist_ok=True)
        (repo / "metrics" / "evaluate" / f"{RUN}.json").write_text(
            json.dumps(
                {
                    "model": "mlp",
                    "seed": 42,
                    "accuracy": old_format_accuracy,
                    "macro_f1": 0.5,
                    "checkpoint_sha256": "0" * 64,
                }
            )
        )
        return
    write_evaluation(run, repo / "metrics" / "evaluate" / f"{RUN}.json")
    board = [{"model": "mlp", "accuracy": run.record.accuracy}]
    (repo / "plots" / "leaderboard.json").write_text(json.dumps(board))
    (repo / "leaderboard.md").write_text("| Rank | Model |\n|---|---|\n| 1 | mlp (champion) |\n")


@pytest.fixture
def repo(tmp_path, monkeypatch, evaluated):
    """A git + DVC repository with three commits on main: an old-format evaluation, then seed 7's (tag
    `seed7`), then seed 8's with the same params (tag `seed8`); the workspace is at `seed8`."""
    repo = tmp_path / "repo"
    (repo / "plots").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")  # our dvc
    monkeypatch.chdir(repo)  # the records name their per-image predictions relative to the repository
    _git(repo, "init", "-q", "-b", "main")
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    _write_revision(repo, lr=0.01, run=None, old_format_accuracy=0.70)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "before per-image predictions")
    _git(repo, "tag", "old")
    for tag in ("seed7", "seed8"):
        _write_revision(repo, lr=0.01, run=evaluated[tag])
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", tag)
        _git(repo, "tag", tag)
    return repo


def _model_row(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {RUN} |"))


def test_another_seed_with_the_same_params_is_within_noise(repo, evaluated):
    seed7, seed8 = evaluated["seed7"].record.accuracy, evaluated["seed8"].record.accuracy
    assert abs(seed8 - seed7) > 0.02  # it moved, by more than many a leaderboard gap
    report = build_report("seed7", ALPHA, repo)
    summary = report.splitlines()[1]
    assert summary.startswith(
        "**no params, code or data changed; 0 of 1 models changed beyond noise; 1 moved: "
        "the run differs only in where it ran"
    )
    assert "No params changed" in report
    row = _model_row(report)
    assert f"| {seed7:.4g} | {seed8:.4g} | {(seed8 - seed7) * 100:+.1f} | within noise | paired:" in row


def test_a_model_trained_on_shuffled_labels_is_changed(repo, evaluated):
    _write_revision(repo, lr=0.02, run=evaluated["shuffled"])
    report = build_report("seed8", ALPHA, repo, plot_images=["plots/leaderboard.png"])
    change = (evaluated["shuffled"].record.accuracy - evaluated["seed8"].record.accuracy) * 100
    assert change < -30
    assert report.splitlines()[1] == (
        f"**params changed: models.mlp.lr; 1 of 1 models changed beyond noise: {RUN} {change:+.1f} pts**"
    )
    assert "| `models.mlp.lr` | 0.01 | 0.02 |" in report
    assert "| changed | paired:" in _model_row(report)
    assert "mlp (champion)" in report and "![leaderboard](plots/leaderboard.png)" in report

    drawn = render_plots("seed8", repo.parent / "drawn", ["plots/leader*"], repo)
    assert drawn == [repo.parent / "drawn" / "plots_leaderboard.png"]
    with Image.open(drawn[0]) as image:
        assert image.format == "PNG" and image.width > 200
    assert render_plots("seed8", repo.parent / "none", ["plots/confusion/*"], repo) == []


def test_a_base_without_per_image_predictions_falls_back_to_intervals_and_says_so(repo, evaluated):
    report = build_report("old", ALPHA, repo)
    assert report.splitlines()[1].endswith(
        "the base revision has no per-image predictions, so verdicts come from intervals**"
    )
    seed8 = evaluated["seed8"].record
    noise = ((seed8.accuracy_ci_high - seed8.accuracy_ci_low) / 2) * 2**0.5
    verdict = "changed" if abs(seed8.accuracy - 0.70) > noise else "within noise"
    evidence = "unpaired (the base has no per-image predictions): 95% intervals, noise ±"
    assert f"| {verdict} | {evidence}" in _model_row(report)


def test_sections_say_so_when_nothing_changed():
    assert "No params changed" in params_section({})
    assert "No evaluations in the workspace" in verdicts_section([])
