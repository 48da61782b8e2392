"""Evaluate one checkpoint on the test split: quality, calibration, size and single-image CPU speed."""

from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from fer.core.errors import FerError
from fer.core.labels import EMOTIONS
from fer.core.params import EvaluateParams
from fer.core.storage import file_sha256, write_json
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inference import cpu_latency_ms, predict_probabilities

# Big per-cell lists that the confusion plot already shows; kept out of the metrics file DVC tabulates.
CONFUSION_KEYS = ("confusion", "confusion_normalized")
DECIMALS = 4


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Top-1 ECE: the gap between confidence and accuracy in equal-width confidence bins, weighted by size."""
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == labels).astype(np.float64)
    # Confidence 1.0 belongs in the last bin, not in an extra one past it.
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    # Per bin, |acc - conf| * n_bin / N equals |sum(correct - confidence)| / N.
    gap_per_bin = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap_per_bin).sum() / len(labels))


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and confusion matrices (raw, row-normalised).

    Every class is listed in per-class metrics and confusion matrices, even when the test split lacks it.
    """
    indices = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=indices, zero_division=0)
    per_class = {
        name: {"precision": _round(precision[i]), "recall": _round(recall[i]), "f1": _round(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    # Macro-F1 over the classes that occur (sklearn's default), so a class absent from a small test split
    # does not count as a zero.
    return {
        "accuracy": _round(accuracy_score(labels, predictions)),
        "macro_f1": _round(f1_score(labels, predictions, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion": confusion_matrix(labels, predictions, labels=indices).tolist(),
        # Rows of absent classes are 0 rather than NaN (sklearn's normalize="true" does that).
        "confusion_normalized": np.round(
            confusion_matrix(labels, predictions, labels=indices, normalize="true"), DECIMALS).tolist(),
    }


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate_checkpoint(checkpoint_path: str | Path, images: np.ndarray, labels: np.ndarray,
                        params: EvaluateParams, device: str | torch.device = "cpu") -> tuple[dict, np.ndarray]:
    """(JSON-ready result, predicted labels (N,)) of a checkpoint on uint8 images (N, H, W) and their labels."""
    model, record = load_checkpoint(checkpoint_path, device)
    if record.classes != list(EMOTIONS):  # the split's labels index EMOTIONS
        raise FerError(f"{checkpoint_path}: classes {', '.join(record.classes)} are not the dataset's "
                       f"{', '.join(EMOTIONS)}; expected a checkpoint trained on this pipeline's split")
    images_tensor = torch.from_numpy(np.ascontiguousarray(images))
    probabilities = predict_probabilities(model, images_tensor.to(device), record.input_spec, params.tta_flip)
    predictions = probabilities.argmax(1)
    result = {
        "model": record.name,
        "arch": record.arch,
        "seed": record.seed,
        "checkpoint": str(checkpoint_path),
        "checkpoint_sha256": file_sha256(checkpoint_path),
        "classes": record.classes,
        **classification_metrics(labels, predictions, record.classes),
        "ece": _round(expected_calibration_error(probabilities, labels, params.calibration_bins)),
        "params": count_parameters(model),
        "size_bytes": Path(checkpoint_path).stat().st_size,
        "latency_ms": _round(cpu_latency_ms(model, images_tensor, record.input_spec, params.latency_images)),
    }
    return result, predictions


def confusion_cells(confusion: list[list[int]], classes: list[str]) -> list[dict]:
    """One {actual, predicted, count} row per cell of the matrix, zeros included, by class name.

    The plot templates (.dvc/plots/confusion_*.json) sum the counts, so every class is on both axes even
    when a model never predicts it (per-image records would drop that column).
    """
    return [{"actual": classes[actual], "predicted": classes[predicted], "count": count}
            for actual, row in enumerate(confusion) for predicted, count in enumerate(row)]


def write_evaluation(result: dict, metrics_path: str | Path, *confusion_paths: str | Path) -> None:
    """The metrics JSON (without the confusion matrices) and the confusion-plot cells, atomically.

    DVC binds one template to a plot file, so the raw and the row-normalised confusion plots each need
    their own copy of the cells.
    """
    write_json(metrics_path, {key: value for key, value in result.items() if key not in CONFUSION_KEYS})
    cells = confusion_cells(result["confusion"], result["classes"])
    for path in confusion_paths:
        write_json(path, cells)


def _round(value) -> float:
    return round(float(value), DECIMALS)
