"""What a dataset's labels mean: the task, its classes, and how labels sit in a manifest.

expression: one class per image, stored as its index in `classes` (FER2013 keeps the canonical 7-emotion
order; a folder tree gives its own classes). attributes: several binary attributes per image (CelebA), stored
as one 0/1 column per attribute.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fer.core.errors import FerError
from fer.core.storage import read_json, write_json

Task = Literal["expression", "attributes"]

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder names seen in public FER datasets (msambare/fer2013, Human Face Emotions, ...) that are not
# already canonical. Matching is by name, never by a folder's alphabetical position.
_ALIASES = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "suprise": "surprise",
    "calm": "neutral",
}

LABEL_COLUMN = "label"
# An attribute is predicted present when its sigmoid probability reaches this (its logit is 0 or more).
PRESENT_FROM = 0.5
ATTRIBUTE_PREFIX = "attr:"
LABEL_SET_FILE = "labels.json"


def class_name(name: str) -> str:
    """A folder's class name as the pipeline writes it: lower case, and an emotion's canonical spelling."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def default_order(names) -> list[str]:
    """Classes found in the data, in the canonical emotion order first, then the others by name."""
    names = set(names)
    return [e for e in EMOTIONS if e in names] + sorted(names - set(EMOTIONS))


@dataclass(frozen=True)
class LabelSet:
    task: Task
    classes: tuple[str, ...]

    @property
    def multi_label(self) -> bool:
        """Several classes may hold at once (attributes: a sigmoid each) rather than exactly one (a softmax)."""
        return self.task == "attributes"

    def column_names(self) -> list[str]:
        if not self.multi_label:
            return [LABEL_COLUMN]
        return [ATTRIBUTE_PREFIX + name for name in self.classes]

    def columns(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Manifest columns holding `labels` ((N,) indices, or (N, K) 0/1 for attributes)."""
        if not self.multi_label:
            return {LABEL_COLUMN: np.asarray(labels, np.int64)}
        labels = np.asarray(labels, np.int8).reshape(len(labels), len(self.classes))
        return {column: labels[:, k] for k, column in enumerate(self.column_names())}

    def from_columns(self, manifest, where: str) -> np.ndarray:
        """The labels a manifest (a pandas DataFrame) holds for this label set."""
        names = self.column_names()
        missing = [n for n in names if n not in manifest]
        if missing:
            raise FerError(f"{where}: manifest lacks column {missing[0]!r}; rebuild it (dvc repro)")
        if not self.multi_label:
            return manifest[LABEL_COLUMN].to_numpy(np.int64)
        return manifest[names].to_numpy(np.int8)

    def counts(self, labels: np.ndarray) -> dict[str, int]:
        """Images per class (expression) or images showing each attribute, every class listed."""
        labels = np.asarray(labels)
        if not self.multi_label:
            per_class = np.bincount(labels.astype(np.int64), minlength=len(self.classes))
        else:
            per_class = labels.reshape(len(labels), len(self.classes)).sum(0)
        return {name: int(c) for name, c in zip(self.classes, per_class)}

    def save(self, folder: Path) -> None:
        write_json(folder / LABEL_SET_FILE, {"task": self.task, "classes": list(self.classes)})

    @classmethod
    def load(cls, folder: str | Path) -> "LabelSet":
        path = Path(folder) / LABEL_SET_FILE
        content = read_json(path, "the label set of a dataset folder")
        if not isinstance(content, dict) or not {"task", "classes"} <= content.keys():
            raise FerError(f"{path}: expected a JSON object with 'task' and 'classes' (re-run the stage that wrote it)")
        return cls(content["task"], tuple(content["classes"]))


FER2013 = LabelSet("expression", EMOTIONS)
