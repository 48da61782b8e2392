"""The one contract for a trained model: a state_dict plus a typed record of what it is and how to feed it.

Written by training and tuning; read by evaluation, serving, the benchmark and the model card. Loaded with
torch.load(weights_only=True), so opening a checkpoint never runs code from it, and refused unless its weights
and outputs are finite, its weights still have the digest saved with them (flipped bits in any checkpoint) and,
where a stage recorded its sha256, the file still has that hash: a corrupted file must never answer.
"""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from fer.core.errors import FerError, one_line
from fer.core.storage import atomic_path, file_sha256
from fer.models import build_model
from fer.runtime.inference import predict_logits, predict_probabilities
from fer.runtime.record import ModelRecord

EXPECTED = "a checkpoint written by the train or tune stage"


def tensors_sha256(state_dict: dict) -> str:
    """sha256 over every entry's name, dtype, shape and bytes: a checkpoint's own check of its weights, so that
    flipped bits are caught in any checkpoint, not only in those whose file hash a stage recorded elsewhere."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, state_dict: dict, record: ModelRecord) -> None:
    with atomic_path(path) as tmp:
        torch.save(
            {"state_dict": state_dict, "record": record.model_dump(), "tensors_sha256": tensors_sha256(state_dict)}, tmp
        )


def read_checkpoint(path: str | Path) -> tuple[dict, ModelRecord]:
    """(state_dict, record) of a checkpoint file; anything else is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FerError(f"{path}: checkpoint not found; run the train stage first (dvc repro)")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message suggests weights_only=False, which would run whatever code the file carries
        raise FerError(
            f"{path}: holds bytes or objects a safe (weights-only) load refuses; expected {EXPECTED}"
        ) from None
    except Exception as err:  # whatever an untrusted file makes the parser raise is the same user error
        raise FerError(f"{path}: not a readable torch file ({one_line(err)}); expected {EXPECTED}") from None
    if not isinstance(content, dict) or not {"state_dict", "record"} <= set(content):
        raise FerError(f"{path}: no fer model record in it (a bare state_dict?); expected {EXPECTED}")
    try:
        record = ModelRecord.model_validate(content["record"])
    except ValidationError as err:
        problem = err.errors()[0]
        raise FerError(
            f"{path}: bad model record ({'.'.join(map(str, problem['loc']))}: {problem['msg']}); expected {EXPECTED}"
        ) from None
    if "tensors_sha256" not in content:
        raise FerError(
            f"{path}: carries no digest of its weights (written before checkpoints had one?); "
            f"expected {EXPECTED}: retrain it (dvc repro)"
        )
    state_dict = content["state_dict"]
    if not isinstance(state_dict, dict):
        raise FerError(f"{path}: its state_dict is not a mapping of tensors; expected {EXPECTED}")
    # NaN first: the more telling name for a corruption the digest would catch too
    non_finite = [
        key
        for key, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.isfinite().all()
    ]
    if non_finite:
        raise FerError(f"{path}: weights {non_finite[0]} hold NaN or inf (a corrupted file?); expected {EXPECTED}")
    if tensors_sha256(state_dict) != content["tensors_sha256"]:
        raise FerError(
            f"{path}: its weights differ from the digest they were saved with (flipped bits, a damaged "
            "copy?); rebuild it (dvc repro --force) or pull a good copy"
        )
    return content["state_dict"], record


def verify_sha256(path: str | Path, expected: str) -> None:
    """Refuse a file whose content is not what a stage recorded (bit rot, a corrupted DVC cache object)."""
    actual = file_sha256(path)
    if actual != expected:
        raise FerError(
            f"{path}: sha256 {actual[:12]}... differs from the {expected[:12]}... recorded for it; "
            "the file is corrupted or was replaced: rebuild it (dvc repro --force) or pull a good copy"
        )


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", expected_sha256: str | None = None
) -> tuple[torch.nn.Module, ModelRecord]:
    """The model (eval mode, on `device`) and its record; with expected_sha256, only if the file has that hash."""
    if expected_sha256 is not None and Path(path).is_file():
        verify_sha256(path, expected_sha256)
    state_dict, record = read_checkpoint(path)
    model, _ = build_model(
        record.arch, len(record.classes), record.image_size, pretrained=False, dropout=record.dropout, **record.options
    )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise FerError(
            f"{path}: weights do not fit a {record.arch} with {len(record.classes)} classes "
            f"({one_line(str(err).partition(chr(10))[2] or err)[:200]})"
        ) from None
    model = model.to(device).eval()
    # Finite weights can still overflow to inf; one mid-grey image through the model shows it.
    probe = torch.full((1, record.image_size, record.image_size), 128, dtype=torch.uint8, device=device)
    if not predict_logits(model, probe, record.input_spec).isfinite().all():
        raise FerError(f"{path}: the model's outputs are NaN or inf (corrupted weights?); expected {EXPECTED}")
    return model, record


class CheckpointClassifier:
    """A checkpoint's model behind the interface of fer.runtime.onnx_model.OnnxClassifier: uint8 crops in,
    probabilities out."""

    exported_from = None  # an export's source checkpoint; this is one

    def __init__(self, path: str | Path, expected_sha256: str | None = None):
        self.model, self.record = load_checkpoint(path, expected_sha256=expected_sha256)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return predict_probabilities(
            self.model, torch.from_numpy(crops), self.record.input_spec, self.record.label_set.head
        )
