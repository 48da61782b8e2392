"""data.classes: keep, order, rename or merge the classes a source found, before anything is stored."""

import numpy as np

from fer.core.errors import FerError
from fer.core.labels import LabelSet
from fer.data.rawdata import RawDataset

PARAM = "data.classes"


def select_classes(raw: RawDataset, declared: list[str] | dict[str, str] | None) -> RawDataset:
    """The dataset with only the declared classes, in the declared order.

    A list names the classes to keep (for attributes: the attributes), in order; a mapping renames source
    classes (several may map to one class; the task's head says whether it may) and its values, in
    first-appearance order, are the classes. Images of classes left out are dropped; a declared class the data
    does not have is an error.
    """
    if declared is None:
        return raw
    found = raw.label_set.classes
    renamed = raw.label_set.head.renaming(declared, PARAM)
    unknown = [name for name in renamed if name not in found]
    if unknown:
        raise FerError(f"{PARAM}: {unknown[0]!r} is not a class of the data; found: {', '.join(found)}")
    classes = tuple(dict.fromkeys(renamed.values()))
    labels, keep = raw.label_set.head.relabel(raw.labels, renamed, classes)
    rows = np.flatnonzero(keep)
    _enough_classes(LabelSet(raw.label_set.task, classes), PARAM)
    return raw.subset(rows, labels[rows], LabelSet(raw.label_set.task, classes))


def check_task(dataset: RawDataset, task: str, source: str) -> None:
    """The data must carry the labels `task` learns."""
    label_set = dataset.label_set
    if label_set.task != task:
        raise FerError(
            f"data.source={source}: the data holds {label_set.task} labels "
            f"({', '.join(label_set.classes[:5])}{', ...' if len(label_set.classes) > 5 else ''}) but "
            f"task is {task}; set task: {label_set.task}, or point data.path at {task} data"
        )
    _enough_classes(label_set, f"data.source={source}")


def check_every_class_has_images(dataset: RawDataset, source: str) -> None:
    """A class the task cannot learn for lack of images: an empty class folder, usually."""
    empty = dataset.label_set.head.unlearnable(dataset.labels)
    if empty:
        raise FerError(
            f"data.source={source}: class {empty[0]!r} has no readable image (an empty class folder?); "
            f"add images, remove the folder, or leave it out of {PARAM}"
        )


def _enough_classes(label_set: LabelSet, where: str) -> None:
    least, classes = label_set.head.min_classes, label_set.classes
    if len(classes) < least:
        raise FerError(
            f"{where}: leaves {len(classes)} class(es) ({', '.join(classes) or 'none'}); the "
            f"{label_set.task} task needs at least {least}"
        )
