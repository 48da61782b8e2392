"""The attributes task: several binary attributes per face (CelebA), a sigmoid per attribute.

Labels are 0/1 (N, K), stored as one manifest column per attribute. Accuracy and macro-F1 are the means over
the attributes of each attribute's accuracy and F1, beside the mean average precision and the majority baseline
(every attribute predicted as its more common value in the train split).
"""

import numpy as np

from fer.core.errors import FerError
from fer.core.tasks.head import DECIMALS, TaskHead, f1_from_counts, optional_metric, round_metric

ATTRIBUTE_PREFIX = "attr:"
# An attribute is predicted present when its sigmoid probability reaches this (its logit is 0 or more).
PRESENT_FROM = 0.5
ANSWERS = ("yes", "no")  # an attribute's confusion rows and columns, in test_metrics' order [1, 0]


class Attributes(TaskHead):
    name = "attributes"
    min_classes = 1
    baselines = ("majority_accuracy",)
    score_titles = ("Mean accuracy", "Mean F1")

    def label_array(self, labels) -> np.ndarray:
        return np.asarray(labels, np.int8).reshape(len(labels), len(self.classes))

    def column_names(self) -> list[str]:
        return [ATTRIBUTE_PREFIX + name for name in self.classes]

    def columns(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        labels = self.label_array(labels)
        return {column: labels[:, k] for k, column in enumerate(self.column_names())}

    def from_columns(self, manifest) -> np.ndarray:
        return manifest[self.column_names()].to_numpy(np.int8)

    def per_class(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        return labels.reshape(len(labels), len(self.classes)).sum(0)

    def showing(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels).reshape(len(labels), len(self.classes)) == 1

    def strata(self, labels: np.ndarray) -> None:
        """Several labels per face: a random split rather than a stratified one."""
        return None

    def unlearnable(self, labels: np.ndarray) -> list[str]:
        """None: an attribute no face shows is still learnt (as always absent)."""
        return []

    def renaming(self, declared: list[str] | dict[str, str], where: str) -> dict[str, str]:
        """Attribute names as CelebA spells them; a list only (attributes are not merged)."""
        if isinstance(declared, dict):
            raise FerError(f"{where}: the attributes task takes a list of attributes, not a mapping")
        return {str(name): str(name) for name in declared}

    def relabel(
        self, labels: np.ndarray, renamed: dict[str, str], classes: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        return labels[:, [self.classes.index(name) for name in classes]], np.ones(len(labels), bool)

    def activation(self, logits):
        return logits.sigmoid()

    def loss(self, train_labels, label_smoothing: float, class_weights: bool):
        """Binary cross-entropy per attribute; label smoothing pulls the 0/1 targets towards 1/2, and class_weights
        weighs each attribute's present faces by how rare they are (negatives over positives)."""
        import torch

        pos_weight = None
        if class_weights:
            positives = train_labels.float().sum(0)
            pos_weight = (len(train_labels) - positives) / positives.clamp(min=1)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

        def loss(logits, targets):
            return bce(logits, targets.float() * (1 - label_smoothing) + label_smoothing / 2)

        return loss

    def val_loss(self, logits, targets):
        """Binary cross-entropy averaged over the attributes."""
        import torch

        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.float())

    def hits(self, logits, labels):
        return ((logits.sigmoid() >= PRESENT_FROM) == labels.bool()).float().mean(1)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return (probabilities >= PRESENT_FROM).astype(np.int8)

    def test_metrics(self, labels: np.ndarray, probabilities: np.ndarray, train_labels: np.ndarray) -> dict:
        """Per attribute and averaged over them: accuracy, precision, recall, F1 and average precision, and the
        accuracy of predicting each attribute's more common value in train_labels.

        The confusion matrix has a "<attribute>: yes" and a "<attribute>: no" row per attribute, against the
        predicted yes/no.
        """
        from sklearn.metrics import (
            accuracy_score,
            average_precision_score,
            confusion_matrix,
            precision_recall_fscore_support,
        )

        majority = train_labels.mean(0) >= 0.5
        predictions = self.decide(probabilities)
        per_class, confusion = {}, []
        for k, name in enumerate(self.classes):
            truth, guess = labels[:, k], predictions[:, k]
            precision, recall, f1, _ = precision_recall_fscore_support(truth, guess, average="binary", zero_division=0)
            # Average precision needs a face showing the attribute; without one it is undefined, not 0.
            ap = average_precision_score(truth, probabilities[:, k]) if truth.any() else None
            per_class[name] = {
                "accuracy": round_metric(accuracy_score(truth, guess)),
                "precision": round_metric(precision),
                "recall": round_metric(recall),
                "f1": round_metric(f1),
                "average_precision": optional_metric(ap),
                "majority_accuracy": round_metric(np.mean(truth == majority[k])),
                "support": int(truth.sum()),
            }
            confusion += confusion_matrix(truth, guess, labels=[1, 0]).tolist()
        confusion = np.array(confusion)
        defined_ap = [row["average_precision"] for row in per_class.values() if row["average_precision"] is not None]
        # F1 of an attribute no test face shows is 0 whatever the model does (no true positive can exist), so, as
        # for average precision, the mean leaves it out; its false alarms still count in accuracy.
        present_f1 = [row["f1"] for row in per_class.values() if row["support"]]
        return {
            "accuracy": round_metric(np.mean([row["accuracy"] for row in per_class.values()])),
            "macro_f1": round_metric(np.mean(present_f1) if present_f1 else 0.0),
            "attributes_absent_from_test": len(per_class) - len(present_f1),
            "mean_average_precision": optional_metric(np.mean(defined_ap) if defined_ap else None),
            "majority_accuracy": round_metric(np.mean([row["majority_accuracy"] for row in per_class.values()])),
            "per_class": per_class,
            "confusion": confusion.tolist(),
            "confusion_normalized": np.round(
                confusion / np.maximum(confusion.sum(1, keepdims=True), 1), DECIMALS
            ).tolist(),
        }

    def resampled_scores(self, labels: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        """Mean accuracy and mean F1 over the attributes, F1 over those the resampled labels show (test_metrics)."""
        truth, guess = labels.astype(bool), decisions.astype(bool)
        tp, fp, fn = (truth & guess).sum(-2), (~truth & guess).sum(-2), (truth & ~guess).sum(-2)
        shown = truth.any(-2)
        mean_f1 = (f1_from_counts(tp, fp, fn) * shown).sum(-1) / np.maximum(shown.sum(-1), 1)
        return np.stack([(truth == guess).mean((-2, -1)), mean_f1])

    def per_image(self, labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
        """One row per image and attribute: "<attribute>: yes|no" against yes|no."""
        said_yes = self.decide(probabilities).astype(bool)
        return [
            {
                "image": i,
                "actual": f"{name}: {ANSWERS[1 - truth]}",
                "predicted": ANSWERS[1 - int(yes)],
                "correct": bool(yes) == bool(truth),
                "p_true": round_metric(p if truth else 1 - p),
                "confidence": round_metric(p if yes else 1 - p),
            }
            for i, (row, answers, said) in enumerate(zip(probabilities.tolist(), labels.tolist(), said_yes.tolist()))
            for name, p, truth, yes in zip(self.classes, row, answers, said)
        ]

    def calibration(self, probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The N x K yes/no decisions, each a two-way prediction."""
        return np.stack([1 - probabilities, probabilities], -1).reshape(-1, 2), labels.reshape(-1)

    def confusion_axes(self) -> tuple[list[str], list[str]]:
        return [f"{name}: {answer}" for name in self.classes for answer in ANSWERS], list(ANSWERS)

    def present(self, probabilities: dict[str, float]) -> list[str]:
        """The attributes a face shows (probability at least PRESENT_FROM), most probable first."""
        shown = (k for k, p in probabilities.items() if p >= PRESENT_FROM)
        return sorted(shown, key=lambda k: -probabilities[k])

    def headline(self, probabilities: dict[str, float]) -> str:
        """The attributes shown ("none" if none is)."""
        return ", ".join(self.present(probabilities)) or "none"

    def confidence(self, probabilities: dict[str, float]) -> float:
        """The mean certainty of the yes/no decisions."""
        return float(np.mean([max(p, 1 - p) for p in probabilities.values()]))

    def outcome(self, probabilities: dict[str, float]) -> dict:
        return {"attributes": self.present(probabilities)}

    @classmethod
    def leaderboard_note(cls, leaderboard: dict) -> str:
        return (
            f"Attributes: accuracy and F1 are means over the attributes; the majority baseline (each attribute "
            f"its more common value in the train split) has mean accuracy {leaderboard['majority_accuracy']:.4f}."
        )
