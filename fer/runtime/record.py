"""What a trained model is besides its weights: written into every checkpoint and every ONNX export.

Apart from torch (fer.runtime.checkpoint reads and writes it with the weights), so that a server running an
ONNX export without torch reads the same record.
"""

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from fer.core.labels import LabelSet
from fer.core.tasks import RegisteredTask

if TYPE_CHECKING:
    from fer.models.input_spec import InputSpec


class ModelRecord(BaseModel):
    """What a checkpoint (or an export) holds besides its weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str  # its identity: the leaderboard row, the served model's name
    arch: str
    task: RegisteredTask  # what the outputs mean
    classes: list[str]  # output i is classes[i]
    image_size: int
    mean: float
    std: float
    options: dict
    dropout: float
    pretrained: bool | str
    train: dict  # the training params it was trained with
    seed: int  # the seed of its initial weights and batch order
    tuned_from: str | None = None  # for the tune stage's model: the `models` entry whose settings were tuned
    trained_on: dict  # fer.data.datasets.training_data of its split
    best_epoch: int
    val_acc: float

    @property
    def label_set(self) -> LabelSet:
        return LabelSet(self.task, tuple(self.classes))

    @property
    def input_spec(self) -> "InputSpec":
        from fer.models.input_spec import InputSpec  # here: fer.models imports torch, which ONNX servers lack

        return InputSpec(self.image_size, self.mean, self.std)
