"""TaskHead: everything that depends on what a model learns to predict, for one task and its classes.

A label set's head (`LabelSet.head`) is the one object the rest of fer asks: how labels sit in a manifest,
how a model's logits become probabilities and decisions, what it is trained against, how it is scored and how
a prediction is described. Each task is one subclass in its own module, registered in fer.core.tasks.HEADS.

Torch and sklearn are imported inside the methods that need them (they receive tensors, or run only in the
stages that score), so that parsing params and reading label sets stay light.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

DECIMALS = 4  # of every reported metric


def round_metric(value) -> float:
    return round(float(value), DECIMALS)


def optional_metric(value) -> float | None:
    return None if value is None else round_metric(value)


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 from true positive, false positive and false negative counts, elementwise; 0 where all are 0."""
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


@dataclass(frozen=True)
class TaskHead(ABC):
    classes: tuple[str, ...]

    name: ClassVar[str]  # the `task` of params.yaml, label sets and checkpoints
    min_classes: ClassVar[int]  # fewer classes leave nothing to learn
    baselines: ClassVar[tuple[str, ...]] = ()  # test metrics that depend on the split only, not the model
    score_titles: ClassVar[tuple[str, str]] = ("Accuracy", "Macro-F1")  # how the tables title the two scores

    # --- labels and manifests -------------------------------------------------------------------------------
    @abstractmethod
    def label_array(self, labels) -> np.ndarray:
        """`labels` in the one array form the pipeline keeps them in."""

    @abstractmethod
    def column_names(self) -> list[str]:
        """The manifest columns that hold the labels."""

    @abstractmethod
    def columns(self, labels: np.ndarray) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def from_columns(self, manifest) -> np.ndarray:
        """The labels of a manifest (a pandas DataFrame) that has every one of column_names()."""

    @abstractmethod
    def per_class(self, labels: np.ndarray) -> np.ndarray:
        """Images per class, or faces showing each class."""

    @abstractmethod
    def showing(self, labels: np.ndarray) -> np.ndarray:
        """(N, C) bool: which images show each class."""

    @abstractmethod
    def strata(self, labels: np.ndarray) -> np.ndarray | None:
        """What a split stratifies on; None: a random split."""

    @abstractmethod
    def unlearnable(self, labels: np.ndarray) -> list[str]:
        """Classes the data gives a model nothing to learn from."""

    @abstractmethod
    def renaming(self, declared: list[str] | dict[str, str], where: str) -> dict[str, str]:
        """data.classes as {class of the data: class kept}, names spelt as the data spells them."""

    @abstractmethod
    def relabel(
        self, labels: np.ndarray, renamed: dict[str, str], classes: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels in terms of `classes`, which images are kept) after `renaming`."""

    # --- learning (torch tensors) ---------------------------------------------------------------------------
    @abstractmethod
    def activation(self, logits):
        """Probabilities (N, C) of logits (N, C)."""

    @abstractmethod
    def loss(self, train_labels, label_smoothing: float, class_weights: bool):
        """The training loss, logits and targets -> scalar; class_weights weighs rare classes up."""

    @abstractmethod
    def val_loss(self, logits, targets):
        """The plain loss validation reports."""

    @abstractmethod
    def hits(self, logits, labels):
        """Per image, the share of its decisions that are right (its mean is the accuracy early stopping uses)."""

    # --- scoring (numpy) ------------------------------------------------------------------------------------
    @abstractmethod
    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The predicted labels, in label_array's form."""

    @abstractmethod
    def test_metrics(self, labels: np.ndarray, probabilities: np.ndarray, train_labels: np.ndarray) -> dict:
        """Accuracy, macro_f1 (what the leaderboard ranks), per_class, confusion and confusion_normalized, and any
        of `baselines`."""

    @abstractmethod
    def resampled_scores(self, labels: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        """[accuracy, macro_f1] as test_metrics counts them, of labels and decisions resampled along the image
        axis ((..., N) or (..., N, K)), for a batch of resamples at once."""

    @abstractmethod
    def per_image(self, labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
        """One row per test decision (image, actual, predicted, correct, p_true, confidence), as DVC's confusion
        plots read actual/predicted, with what a paired test of two models needs."""

    @abstractmethod
    def calibration(self, probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (M, C), class indices (M,)) of the decisions whose calibration is measured."""

    @abstractmethod
    def confusion_axes(self) -> tuple[list[str], list[str]]:
        """The names of the confusion matrix's rows (actual) and columns (predicted)."""

    # --- describing a prediction ----------------------------------------------------------------------------
    @abstractmethod
    def headline(self, probabilities: dict[str, float]) -> str: ...

    @abstractmethod
    def confidence(self, probabilities: dict[str, float]) -> float:
        """How sure the headline is."""

    @abstractmethod
    def outcome(self, probabilities: dict[str, float]) -> dict:
        """The task's own answer, keyed by what it is (e.g. {"emotion": ...})."""

    @classmethod
    def leaderboard_note(cls, leaderboard: dict) -> str:
        """What a reader of the leaderboard must know about this task's scores ("" if nothing)."""
        return ""
