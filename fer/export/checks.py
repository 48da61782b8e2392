"""How closely an export follows the PyTorch model on the test split, and the stage's threshold on it."""

import numpy as np

from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.evaluate.intervals import interval_fields
from fer.evaluate.significance import mcnemar

DECIMALS = 6


def quality(
    probabilities: np.ndarray, labels: np.ndarray, label_set: LabelSet, interval: float, resamples: int
) -> dict:
    """Accuracy and macro-F1 as the evaluate stage defines them for the task, with its bootstrap intervals over
    the test images (confidence `interval`, `resamples` resamples)."""
    head = label_set.head
    # No baseline is reported here, so the test labels stand in for the train labels the baselines come from.
    scores = head.test_metrics(labels, probabilities, train_labels=labels)
    return {
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        **interval_fields(labels, head.decide(probabilities), head, interval, resamples),
    }


def accuracy_against(
    reference: np.ndarray, exported: np.ndarray, labels: np.ndarray, label_set: LabelSet, alpha: float
) -> dict:
    """Is the export's accuracy the PyTorch model's, up to chance? The exact McNemar test on the same test images
    (attributes: each image's attribute one trial), as the leaderboard ties models: only the images one of the
    two gets right count."""
    decide = label_set.head.decide
    paired = mcnemar((decide(reference) == labels).ravel(), (decide(exported) == labels).ravel())
    return {
        "right_only_in_torch": paired.only_first_right,
        "right_only_here": paired.only_second_right,
        "vs_torch_p": paired.reported_p,
        "tied_with_torch": not paired.beyond_noise(alpha),
    }


def agreement(reference: np.ndarray, exported: np.ndarray, label_set: LabelSet) -> dict:
    """The share of images answered alike (attributes: every attribute alike) and the largest probability
    difference over all images and classes."""
    head = label_set.head
    same = (head.decide(reference) == head.decide(exported)).reshape(len(reference), -1).all(1)
    return {
        "agreement": round(float(same.mean()), DECIMALS),
        "disagreeing_images": int((~same).sum()),
        "max_probability_difference": round(float(np.abs(reference - exported).max()), DECIMALS),
    }


def batching_changes(batched: np.ndarray, alone: np.ndarray, label_set: LabelSet) -> dict:
    """How many images get another label when each is run alone than in a batch: dynamic quantisation measures
    its activation ranges over the whole batch, so an image's answer can depend on the others in it."""
    decide = label_set.head.decide
    changed = (decide(batched) != decide(alone)).reshape(len(batched), -1).any(1)
    return {"labels_changed_by_batching": int(changed.sum())}


def require_agreement(
    name: str,
    check: dict,
    min_agreement: float,
    max_difference: float | None = None,
    param: str = "export.min_agreement",
) -> None:
    """Fail in one line when the export `name` answers unlike the PyTorch model beyond the params' limits (`param`
    names the agreement's)."""
    if check["agreement"] < min_agreement:
        raise FerError(
            f"{name}: agrees with the PyTorch champion on {check['agreement']:.2%} of the test images "
            f"({check['disagreeing_images']} differ), under {param} {min_agreement:.2%}"
        )
    if max_difference is not None and check["max_probability_difference"] > max_difference:
        raise FerError(
            f"{name}: a probability differs from the PyTorch champion's by "
            f"{check['max_probability_difference']:.2g}, over export.max_probability_difference "
            f"{max_difference:g}"
        )
