"""The one contract for a trained model: a state_dict plus a typed record of what it is and how to feed it.

Written by training and tuning; read by evaluation, serving, the benchmark and the model card. Loaded with
torch.load(weights_only=True), so opening a checkpoint never runs code from it.
"""

import pickle
import zipfile
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from fer.core.errors import FerError, one_line
from fer.core.storage import atomic_path
from fer.models import build_model
from fer.models.input_spec import InputSpec

EXPECTED = "a checkpoint written by the train or tune stage"


class ModelRecord(BaseModel):
    """What a checkpoint holds besides its weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str                       # its identity: the leaderboard row, the served model's name
    arch: str
    classes: list[str]              # output i is classes[i]
    image_size: int
    mean: float
    std: float
    options: dict
    dropout: float
    pretrained: bool | str
    train: dict                     # the training params it was trained with
    tuned_from: str | None = None   # for the tune stage's model: the `models` entry whose settings were tuned
    trained_on: dict | None = None  # fer.data.datasets.training_data of its split; None in older checkpoints
    best_epoch: int
    val_acc: float

    @property
    def input_spec(self) -> InputSpec:
        return InputSpec(self.image_size, self.mean, self.std)


def save_checkpoint(path: str | Path, state_dict: dict, record: ModelRecord) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state_dict, "record": record.model_dump()}, tmp)


def read_checkpoint(path: str | Path) -> tuple[dict, ModelRecord]:
    """(state_dict, record) of a checkpoint file; anything else is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: checkpoint not found; run the train stage first (dvc repro)")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False, which would run whatever code the file carries
        raise FerError(f"{path}: holds objects a safe load refuses; expected {EXPECTED}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise FerError(f"{path}: not a readable torch file ({one_line(err)}); expected {EXPECTED}") from None
    if not isinstance(content, dict) or not {"state_dict", "record"} <= set(content):
        raise FerError(f"{path}: no fer model record in it (a bare state_dict?); expected {EXPECTED}")
    try:
        record = ModelRecord.model_validate(content["record"])
    except ValidationError as err:
        problem = err.errors()[0]
        raise FerError(f"{path}: bad model record ({'.'.join(map(str, problem['loc']))}: {problem['msg']}); "
                       f"expected {EXPECTED}") from None
    return content["state_dict"], record


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ModelRecord]:
    """The model (eval mode, on `device`) and its record."""
    state_dict, record = read_checkpoint(path)
    model, _ = build_model(record.arch, len(record.classes), record.image_size, pretrained=False,
                           dropout=record.dropout, **record.options)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise FerError(f"{path}: weights do not fit a {record.arch} with {len(record.classes)} classes "
                       f"({one_line(str(err).partition(chr(10))[2] or err)[:200]})") from None
    return model.to(device).eval(), record
