"""Evaluate one checkpoint on the test split: quality, calibration, size and single-image CPU speed.

Both tasks report `accuracy` and `macro_f1`, which the leaderboard ranks: for attributes they are the means
over the attributes of each attribute's accuracy and F1, beside the mean average precision and the majority
baseline (every attribute predicted as its more common value in the train split).
"""

from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from fer.core.errors import FerError
from fer.core.labels import PRESENT_FROM, LabelSet
from fer.core.params import EvaluateParams
from fer.core.storage import file_sha256, write_json
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inference import cpu_latency_ms, predict_probabilities

# Big per-cell lists that the confusion plot already shows; kept out of the metrics file DVC tabulates.
CONFUSION_KEYS = ("confusion", "confusion_normalized")
DECIMALS = 4
ANSWERS = ("yes", "no")  # an attribute's confusion rows and columns, in attribute_metrics' order [1, 0]


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


def attribute_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: list[str],
                      majority: np.ndarray) -> dict:
    """Per attribute and averaged over them: accuracy, precision, recall, F1 and average precision of 0/1 labels
    (N, K) against sigmoid probabilities (N, K) at PRESENT_FROM, and the accuracy of predicting `majority` (K,) 0/1.

    The confusion matrix has a "<attribute>: yes" and a "<attribute>: no" row per attribute, against the
    predicted yes/no.
    """
    predictions = (probabilities >= PRESENT_FROM).astype(np.int8)
    per_class, confusion = {}, []
    for k, name in enumerate(classes):
        truth, guess = labels[:, k], predictions[:, k]
        precision, recall, f1, _ = precision_recall_fscore_support(truth, guess, average="binary", zero_division=0)
        # Average precision needs a face showing the attribute; without one it is undefined, not 0.
        ap = average_precision_score(truth, probabilities[:, k]) if truth.any() else None
        per_class[name] = {"accuracy": _round(accuracy_score(truth, guess)), "precision": _round(precision),
                           "recall": _round(recall), "f1": _round(f1), "average_precision": _optional(ap),
                           "majority_accuracy": _round(np.mean(truth == majority[k])), "support": int(truth.sum())}
        confusion += confusion_matrix(truth, guess, labels=[1, 0]).tolist()
    confusion = np.array(confusion)
    defined_ap = [row["average_precision"] for row in per_class.values() if row["average_precision"] is not None]
    return {
        "accuracy": _round(np.mean([row["accuracy"] for row in per_class.values()])),
        "macro_f1": _round(np.mean([row["f1"] for row in per_class.values()])),
        "mean_average_precision": _optional(np.mean(defined_ap) if defined_ap else None),
        "majority_accuracy": _round(np.mean([row["majority_accuracy"] for row in per_class.values()])),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "confusion_normalized": np.round(confusion / np.maximum(confusion.sum(1, keepdims=True), 1),
                                         DECIMALS).tolist(),
    }


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def evaluate_checkpoint(checkpoint_path: str | Path, images: np.ndarray, labels: np.ndarray, label_set: LabelSet,
                        params: EvaluateParams, device: str | torch.device = "cpu",
                        train_labels: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """(JSON-ready result, predictions) of a checkpoint on uint8 images (N, H, W) and their labels.

    Predictions are class indices (N,), or 0/1 attributes (N, K). train_labels: the attributes task's majority
    baseline comes from them (required there).
    """
    model, record = load_checkpoint(checkpoint_path, device)
    if record.label_set != label_set:
        raise FerError(f"{checkpoint_path}: a model for the {record.task} task ({', '.join(record.classes)}), but the "
                       f"split's "
                       f"{label_set.task} labels are {', '.join(label_set.classes)}; expected a checkpoint trained "
                       "on this split (dvc repro)")
    images_tensor = torch.from_numpy(np.ascontiguousarray(images))
    probabilities = predict_probabilities(model, images_tensor.to(device), record.input_spec, params.tta_flip,
                                          label_set.multi_label)
    if label_set.multi_label:
        predictions = (probabilities >= PRESENT_FROM).astype(np.int8)
        quality = attribute_metrics(labels, probabilities, record.classes, train_labels.mean(0) >= 0.5)
        # Calibration of the N x K yes/no decisions, each a two-way prediction.
        decisions = np.stack([1 - probabilities, probabilities], -1).reshape(-1, 2)
        ece = expected_calibration_error(decisions, labels.reshape(-1), params.calibration_bins)
    else:
        predictions = probabilities.argmax(1)
        quality = classification_metrics(labels, predictions, record.classes)
        ece = expected_calibration_error(probabilities, labels, params.calibration_bins)
    result = {
        "model": record.name,
        "arch": record.arch,
        "task": record.task,
        "seed": record.seed,
        "checkpoint": str(checkpoint_path),
        "checkpoint_sha256": file_sha256(checkpoint_path),
        "classes": record.classes,
        **quality,
        "ece": _round(ece),
        "params": count_parameters(model),
        "size_bytes": Path(checkpoint_path).stat().st_size,
        "latency_ms": _round(cpu_latency_ms(model, images_tensor, record.input_spec, params.latency_images)),
    }
    return result, predictions


def confusion_cells(confusion: list[list[int]], task: str, classes: list[str]) -> list[dict]:
    """One {actual, predicted, count} row per cell of the matrix, zeros included, by class name (attributes:
    "<attribute>: yes|no" against yes|no).

    The plot templates (.dvc/plots/confusion_*.json) sum the counts, so every class is on both axes even
    when a model never predicts it (per-image records would drop that column).
    """
    if task == "attributes":
        rows, columns = [f"{name}: {answer}" for name in classes for answer in ANSWERS], list(ANSWERS)
    else:
        rows = columns = classes
    return [{"actual": rows[actual], "predicted": columns[predicted], "count": count}
            for actual, row in enumerate(confusion) for predicted, count in enumerate(row)]


def write_evaluation(result: dict, metrics_path: str | Path, *confusion_paths: str | Path) -> None:
    """The metrics JSON (without the confusion matrices) and the confusion-plot cells, atomically.

    DVC binds one template to a plot file, so the raw and the row-normalised confusion plots each need
    their own copy of the cells.
    """
    write_json(metrics_path, {key: value for key, value in result.items() if key not in CONFUSION_KEYS})
    cells = confusion_cells(result["confusion"], result["task"], result["classes"])
    for path in confusion_paths:
        write_json(path, cells)


def _round(value) -> float:
    return round(float(value), DECIMALS)


def _optional(value) -> float | None:
    return None if value is None else _round(value)
