"""What a dataset's labels mean: the task and its classes, saved beside every dataset folder.

How labels of a task sit in a manifest, train a model and are scored is its head's (fer.core.tasks).
"""

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from fer.core.emotions import EMOTIONS
from fer.core.errors import FerError
from fer.core.storage import read_json, write_json
from fer.core.tasks import HEADS, Task
from fer.core.tasks.head import TaskHead

LABEL_SET_FILE = "labels.json"
# Class and attribute names come from folder names and csv headers, and are shown on the upload page and in
# reports: plain words only (any script's letters and digits, space and _ . , ( ) + ' -), never markup or
# control characters, at most 64 characters.
PLAIN_NAME = re.compile(r"[^\W_][\w .,()+'-]{0,63}")


@dataclass(frozen=True)
class LabelSet:
    task: Task
    classes: tuple[str, ...]

    def __post_init__(self):
        for name in self.classes:
            if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
                raise FerError(
                    f"class or attribute name {str(name)[:80]!r}: expected plain printable text (letters, "
                    "digits, space and _ . , ( ) + ' -; at most 64 characters); rename the folder or csv "
                    "column that holds it"
                )

    @cached_property
    def head(self) -> TaskHead:
        """Everything that depends on the task, for these classes."""
        return HEADS[self.task](self.classes)

    def column_names(self) -> list[str]:
        return self.head.column_names()

    def columns(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Manifest columns holding `labels` (the head's label_array form)."""
        return self.head.columns(labels)

    def from_columns(self, manifest, where: str) -> np.ndarray:
        """The labels a manifest (a pandas DataFrame) holds for this label set."""
        missing = [n for n in self.column_names() if n not in manifest]
        if missing:
            raise FerError(f"{where}: manifest lacks column {missing[0]!r}; rebuild it (dvc repro)")
        return self.head.from_columns(manifest)

    def counts(self, labels: np.ndarray) -> dict[str, int]:
        """Images per class (expression) or images showing each attribute, every class listed."""
        return {name: int(c) for name, c in zip(self.classes, self.head.per_class(labels))}

    def save(self, folder: Path) -> None:
        write_json(folder / LABEL_SET_FILE, {"task": self.task, "classes": list(self.classes)})

    @classmethod
    def load(cls, folder: str | Path) -> "LabelSet":
        path = Path(folder) / LABEL_SET_FILE
        content = read_json(path, "the label set of a dataset folder")
        if not isinstance(content, dict) or not {"task", "classes"} <= content.keys():
            raise FerError(f"{path}: expected a JSON object with 'task' and 'classes' (re-run the stage that wrote it)")
        if content["task"] not in HEADS:
            raise FerError(
                f"{path}: task {content['task']!r} is not one of {', '.join(HEADS)} (re-run the stage that wrote it)"
            )
        return cls(content["task"], tuple(content["classes"]))


FER2013 = LabelSet("expression", EMOTIONS)
