"""The tasks a model can learn, one TaskHead each (fer.core.tasks.head). A new task is a TaskHead subclass in
its own module here and its entry in HEADS; nothing else in fer branches on the task."""

from typing import Annotated, Literal

from pydantic import AfterValidator

from fer.core.tasks.attributes import Attributes
from fer.core.tasks.expression import Expression
from fer.core.tasks.head import TaskHead

HEADS: dict[str, type[TaskHead]] = {head.name: head for head in (Expression, Attributes)}

# The `task` values params.yaml, label sets and checkpoints accept: the registry's names.
Task = Literal[tuple(HEADS)]


def registered_task(task: str) -> str:
    """task, if HEADS has it; read when called, not at import, so that a task registered in HEADS alone counts."""
    if task not in HEADS:
        raise ValueError(f"task {task!r} is not one of {', '.join(HEADS)}")
    return task


# A record field holding a task: checked against the registry when the record is read.
RegisteredTask = Annotated[str, AfterValidator(registered_task)]
