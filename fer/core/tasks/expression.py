"""The expression task: one class per face (an emotion), a softmax over the classes.

Labels are class indices (N,), stored in one manifest column. FER2013 keeps the canonical 7-emotion order; a
folder tree gives its own classes.
"""

import numpy as np

from fer.core.emotions import class_name
from fer.core.tasks.head import DECIMALS, TaskHead, f1_from_counts, round_metric

LABEL_COLUMN = "label"


class Expression(TaskHead):
    name = "expression"
    min_classes = 2

    def label_array(self, labels) -> np.ndarray:
        return np.asarray(labels, np.int64).reshape(len(labels))

    def column_names(self) -> list[str]:
        return [LABEL_COLUMN]

    def columns(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        return {LABEL_COLUMN: np.asarray(labels, np.int64)}

    def from_columns(self, manifest) -> np.ndarray:
        return manifest[LABEL_COLUMN].to_numpy(np.int64)

    def per_class(self, labels: np.ndarray) -> np.ndarray:
        return np.bincount(np.asarray(labels).astype(np.int64), minlength=len(self.classes))

    def showing(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels)[:, None] == np.arange(len(self.classes))

    def strata(self, labels: np.ndarray) -> np.ndarray:
        return labels

    def unlearnable(self, labels: np.ndarray) -> list[str]:
        """A class without images (an empty class folder, usually) cannot be learnt or scored."""
        return [name for name, count in zip(self.classes, self.per_class(labels)) if count == 0]

    def renaming(self, declared: list[str] | dict[str, str], where: str) -> dict[str, str]:
        """Names compared as class folders are named (case and aliases aside); a mapping renames classes, several
        may merge into one."""
        if isinstance(declared, dict):
            return {class_name(source): target.strip() for source, target in declared.items()}
        return {class_name(name): class_name(name) for name in declared}

    def relabel(
        self, labels: np.ndarray, renamed: dict[str, str], classes: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        target_of = np.array([classes.index(renamed[name]) if name in renamed else -1 for name in self.classes])
        labels = target_of[labels]
        return labels, labels >= 0

    def activation(self, logits):
        return logits.softmax(1)

    def loss(self, train_labels, label_smoothing: float, class_weights: bool):
        import torch

        weight = None
        if class_weights:
            # imported here: sklearn adds ~1.2 s to the start-up of every train process, and the option is off
            # by default (measured with python -X importtime stages/train.py --help)
            from sklearn.utils.class_weight import compute_class_weight

            y = train_labels.cpu().numpy()
            present = np.unique(y)
            weight = np.ones(len(self.classes), dtype=np.float32)
            weight[present] = compute_class_weight("balanced", classes=present, y=y)
            weight = torch.from_numpy(weight).to(train_labels.device)
        return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    def val_loss(self, logits, targets):
        import torch

        return torch.nn.functional.cross_entropy(logits, targets)

    def hits(self, logits, labels):
        return (logits.argmax(1) == labels).float()

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities.argmax(1)

    def test_metrics(self, labels: np.ndarray, probabilities: np.ndarray, train_labels: np.ndarray) -> dict:
        """Accuracy, macro-F1, per-class precision/recall/F1/support and confusion matrices (raw, row-normalised).

        Every class is listed in per-class metrics and confusion matrices, even when the test split lacks it.
        """
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

        predictions = self.decide(probabilities)
        indices = list(range(len(self.classes)))
        precision, recall, f1, support = precision_recall_fscore_support(
            labels, predictions, labels=indices, zero_division=0
        )
        per_class = {
            name: {
                "precision": round_metric(precision[i]),
                "recall": round_metric(recall[i]),
                "f1": round_metric(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(self.classes)
        }
        # Macro-F1 over the classes that occur (sklearn's default), so a class absent from a small test split
        # does not count as a zero.
        return {
            "accuracy": round_metric(accuracy_score(labels, predictions)),
            "macro_f1": round_metric(f1_score(labels, predictions, average="macro", zero_division=0)),
            "per_class": per_class,
            "confusion": confusion_matrix(labels, predictions, labels=indices).tolist(),
            # Rows of absent classes are 0 rather than NaN (sklearn's normalize="true" does that).
            "confusion_normalized": np.round(
                confusion_matrix(labels, predictions, labels=indices, normalize="true"), DECIMALS
            ).tolist(),
        }

    def resampled_scores(self, labels: np.ndarray, decisions: np.ndarray) -> np.ndarray:
        """Macro-F1 over the classes that occur in labels or decisions, as sklearn's f1_score(average="macro")."""
        f1s, occurs = [], []
        for k in range(len(self.classes)):
            actual, predicted = labels == k, decisions == k
            tp, fp, fn = (actual & predicted).sum(-1), (~actual & predicted).sum(-1), (actual & ~predicted).sum(-1)
            f1s.append(f1_from_counts(tp, fp, fn))
            occurs.append((tp + fp + fn) > 0)
        macro_f1 = np.sum(f1s, 0) / np.maximum(np.sum(occurs, 0), 1)
        return np.stack([(labels == decisions).mean(-1), macro_f1])

    def per_image(self, labels: np.ndarray, probabilities: np.ndarray) -> list[dict]:
        guesses = self.decide(probabilities)
        return [
            {
                "image": i,
                "actual": self.classes[truth],
                "predicted": self.classes[guess],
                "correct": truth == guess,
                "p_true": round_metric(row[truth]),
                "confidence": round_metric(row[guess]),
            }
            for i, (row, truth, guess) in enumerate(zip(probabilities.tolist(), labels.tolist(), guesses.tolist()))
        ]

    def calibration(self, probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return probabilities, labels

    def confusion_axes(self) -> tuple[list[str], list[str]]:
        return list(self.classes), list(self.classes)

    def headline(self, probabilities: dict[str, float]) -> str:
        """The most probable emotion."""
        return max(probabilities, key=probabilities.get)

    def confidence(self, probabilities: dict[str, float]) -> float:
        return probabilities[self.headline(probabilities)]

    def outcome(self, probabilities: dict[str, float]) -> dict:
        return {"emotion": self.headline(probabilities)}
