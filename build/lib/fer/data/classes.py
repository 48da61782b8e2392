"""data.classes: keep, order, rename or merge the classes a source found, before anything is stored."""

import numpy as np

from fer.core.errors import FerError
from fer.core.labels import LabelSet, class_name
from fer.data.rawdata import RawDataset

PARAM = "data.classes"


def select_classes(raw: RawDataset, declared: list[str] | dict[str, str] | None) -> RawDataset:
    """The dataset with only the declared classes, in the declared order.

    A list names the classes to keep (for attributes: the attributes), in order; a mapping renames source
    classes (several may map to one class) and its values, in first-appearance order, are the classes. Images
    of classes left out are dropped; a declared class the data does not have is an error.
    """
    if declared is None:
        return raw
    found = raw.label_set.classes
    expression = not raw.label_set.multi_label
    # Expression classes are compared as class folders are named (case and aliases aside); attribute names as
    # CelebA spells them.
    normal = class_name if expression else str
    if isinstance(declared, dict):
        if not expression:
            raise FerError(f"{PARAM}: the attributes task takes a list of attributes, not a mapping")
        renamed = {normal(source): target.strip() for source, target in declared.items()}
    else:
        renamed = {normal(name): normal(name) for name in declared}
    unknown = [name for name in renamed if name not in found]
    if unknown:
        raise FerError(f"{PARAM}: {unknown[0]!r} is not a class of the data; found: {', '.join(found)}")
    classes = tuple(dict.fromkeys(renamed.values()))
    if expression:
        target_of = np.array([classes.index(renamed[name]) if name in renamed else -1 for name in found])
        labels = target_of[raw.labels]
        keep = labels >= 0
    else:
        labels = raw.labels[:, [found.index(name) for name in classes]]
        keep = np.ones(len(raw), bool)
    rows = np.flatnonzero(keep)
    _two_classes(LabelSet(raw.label_set.task, classes), PARAM)
    return RawDataset([raw.images[i] for i in rows], labels[rows], [raw.usage[i] for i in rows],
                      [raw.source[i] for i in rows], LabelSet(raw.label_set.task, classes), raw.skipped,
                      raw.sixteen_bit)


def check_task(dataset: RawDataset, task: str, source: str) -> None:
    """The data must carry the labels `task` learns."""
    label_set = dataset.label_set
    if label_set.task != task:
        raise FerError(f"data.source={source}: the data holds {label_set.task} labels "
                       f"({', '.join(label_set.classes[:5])}{', ...' if len(label_set.classes) > 5 else ''}) but "
                       f"task is {task}; set task: {label_set.task}, or point data.path at {task} data")
    _two_classes(label_set, f"data.source={source}")


def check_every_class_has_images(dataset: RawDataset, source: str) -> None:
    """An expression class without images cannot be learnt or scored: an empty class folder, usually."""
    if dataset.label_set.multi_label:
        return
    empty = [name for name, count in dataset.label_set.counts(dataset.labels).items() if count == 0]
    if empty:
        raise FerError(f"data.source={source}: class {empty[0]!r} has no readable image (an empty class folder?); "
                       f"add images, remove the folder, or leave it out of {PARAM}")


def _two_classes(label_set: LabelSet, where: str) -> None:
    if not label_set.multi_label and len(label_set.classes) < 2:
        raise FerError(f"{where}: leaves one class ({label_set.classes[0]}); a classifier needs at least two")
