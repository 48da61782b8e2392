"""Evaluate one checkpoint on the test split: quality, calibration, size and single-image CPU speed.

Every task reports `accuracy` and `macro_f1`, which the leaderboard ranks, each with a bootstrap interval over
the test images; its head (fer.core.tasks) says how they and the task's other test metrics are measured, and
what a per-image prediction row holds.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.core.params import EvaluateParams
from fer.core.storage import file_sha256, write_json
from fer.core.tasks.head import round_metric
from fer.evaluate.intervals import interval_fields
from fer.evaluate.records import Evaluation, PredictionRow, write_predictions, write_record
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inference import cpu_latency_ms, predict_probabilities


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Top-1 ECE: the gap between confidence and accuracy in equal-width confidence bins, weighted by size."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == labels).astype(np.float64)
    # Confidence 1.0 belongs in the last bin, not in an extra one past it.
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    # Per bin, |acc - conf| * n_bin / N equals |sum(correct - confidence)| / N.
    gap_per_bin = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap_per_bin).sum() / len(labels))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class Evaluated:
    """An evaluation and what its plots need: the confusion matrix and the per-image test predictions."""

    record: Evaluation
    confusion: list[list[int]]
    per_image: list[PredictionRow]


def evaluate_checkpoint(
    checkpoint_path: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    label_set: LabelSet,
    params: EvaluateParams,
    *,
    predictions_path: str | Path,
    device: str | torch.device = "cpu",
    train_labels: np.ndarray | None = None,
) -> tuple[Evaluated, np.ndarray]:
    """(evaluation, predictions) of a checkpoint on uint8 images (N, H, W) and their labels.

    Predictions are the label set's decisions: class indices (N,), or 0/1 attributes (N, K). predictions_path:
    where the per-image predictions will be written (the record names it). train_labels: a task's baselines come
    from them (the attributes task's majority baseline: required there).
    """
    model, record = load_checkpoint(checkpoint_path, device)
    if record.label_set != label_set:
        raise FerError(
            f"{checkpoint_path}: a model for the {record.task} task ({', '.join(record.classes)}), but the "
            f"split's {label_set.task} labels are {', '.join(label_set.classes)}; expected a checkpoint "
            "trained on this split (dvc repro)"
        )
    images_tensor = torch.from_numpy(np.ascontiguousarray(images))
    head = label_set.head
    probabilities = predict_probabilities(model, images_tensor.to(device), record.input_spec, head, params.tta_flip)
    predictions = head.decide(probabilities)
    quality = head.test_metrics(labels, probabilities, train_labels)
    ece = expected_calibration_error(*head.calibration(probabilities, labels), params.calibration_bins)
    # The per-cell lists go to the confusion plots, not into the metrics file DVC tabulates.
    confusion = quality.pop("confusion")
    quality.pop("confusion_normalized")
    evaluation = Evaluation(
        model=record.name,
        arch=record.arch,
        task=record.task,
        seed=record.seed,
        checkpoint=str(checkpoint_path),
        sha256=file_sha256(checkpoint_path),
        predictions=str(predictions_path),
        classes=record.classes,
        test_images=len(labels),
        **quality,
        **interval_fields(labels, predictions, head, params.interval, params.bootstrap_resamples),
        ece=round_metric(ece),
        params=count_parameters(model),
        size_bytes=Path(checkpoint_path).stat().st_size,
        latency_ms=round_metric(cpu_latency_ms(model, images_tensor, record.input_spec, params.latency_images)),
    )
    per_image = [PredictionRow(**row) for row in head.per_image(labels, probabilities)]
    return Evaluated(evaluation, confusion, per_image), predictions


def confusion_cells(confusion: list[list[int]], label_set: LabelSet) -> list[dict]:
    """One {actual, predicted, count} row per cell of the matrix, zeros included, named by the label set's head
    (attributes: "<attribute>: yes|no" against yes|no).

    The plot templates (.dvc/plots/confusion_*.json) sum the counts, so every class is on both axes even
    when a model never predicts it (per-image records would drop that column).
    """
    rows, columns = label_set.head.confusion_axes()
    return [
        {"actual": rows[actual], "predicted": columns[predicted], "count": count}
        for actual, row in enumerate(confusion)
        for predicted, count in enumerate(row)
    ]


def write_evaluation(evaluated: Evaluated, metrics_path: str | Path, *confusion_paths: str | Path) -> None:
    """The metrics JSON, the per-image predictions (at the path the record names) and the confusion-plot cells,
    each atomically.

    DVC binds one template to a plot file, so the raw and the row-normalised confusion plots each need
    their own copy of the cells.
    """
    record = evaluated.record
    write_predictions(record.predictions, evaluated.per_image)
    write_record(metrics_path, record)
    cells = confusion_cells(evaluated.confusion, LabelSet(record.task, tuple(record.classes)))
    for path in confusion_paths:
        write_json(path, cells)
