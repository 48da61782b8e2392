"""A champion exported to ONNX (the export stage), run with onnxruntime alone: no torch import here.

The exported graph takes the aligned uint8 crops (B, S, S) as they come from the align stage and returns
probabilities (softmax over the classes, or a sigmoid per attribute): the resize and normalisation of
fer.runtime.inputs.model_input are inside it, so nothing here repeats them. Its metadata_props hold the
checkpoint's model record, so a served export says what it is without the checkpoint.
"""

from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from fer.core.errors import FerError, one_line
from fer.core.storage import file_sha256
from fer.runtime.record import ModelRecord

INPUT = "images"  # uint8 (batch, crop, crop)
OUTPUT = "probabilities"  # float32 (batch, classes)
# metadata_props keys: the model record (JSON), and, spelled out for any ONNX tool, classes and input spec.
RECORD_KEY = "fer.model_record"
CLASSES_KEY = "fer.classes"
INPUT_SPEC_KEY = "fer.input_spec"
CROP_KEY = "fer.crop_size"
SOURCE_KEY = "fer.checkpoint_sha256"
EXPECTED = "an ONNX file written by the export stage"


def session(path: str | Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU session of the file; threads 0 lets onnxruntime choose (one per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # whatever an unreadable file makes onnxruntime raise is the same user error
        raise FerError(f"{path}: not a loadable ONNX model ({one_line(err)[:200]}); expected {EXPECTED}") from None


class OnnxClassifier:
    """The exported model and its record: probabilities of uint8 crops, as the checkpoint would give them."""

    def __init__(self, path: str | Path, threads: int = 0):
        path = Path(path)
        if not path.is_file():
            raise FerError(f"{path}: not found; expected {EXPECTED} (dvc repro export)")
        self.path = path
        self.sha256 = file_sha256(path)
        self.session = session(path, threads)
        metadata = self.session.get_modelmeta().custom_metadata_map
        if RECORD_KEY not in metadata or CROP_KEY not in metadata:
            raise FerError(f"{path}: no fer model record in its metadata; expected {EXPECTED}")
        try:
            self.record = ModelRecord.model_validate_json(metadata[RECORD_KEY])
        except ValidationError as err:
            raise FerError(
                f"{path}: bad model record in its metadata ({one_line(err)[:200]}); expected {EXPECTED}"
            ) from None
        self.crop_size = int(metadata[CROP_KEY])
        self.exported_from = metadata.get(SOURCE_KEY)  # the checkpoint's sha256

    def probabilities(self, crops: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """(N, C) float32 probabilities of uint8 crops (N, crop_size, crop_size)."""
        if crops.ndim != 3 or crops.shape[1:] != (self.crop_size, self.crop_size):
            raise FerError(
                f"{self.path}: takes uint8 crops of {self.crop_size}x{self.crop_size} (align.size when it "
                f"was exported), got an array of shape {crops.shape}; re-run the export stage"
            )
        crops = np.ascontiguousarray(crops, dtype=np.uint8)
        outputs = [
            self.session.run([OUTPUT], {INPUT: crops[i : i + batch_size]})[0] for i in range(0, len(crops), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.record.classes)), np.float32)


def load_classifier(path: str | Path, expected_sha256: str | None = None):
    """An OnnxClassifier for an .onnx export, else a checkpoint's CheckpointClassifier (which imports torch).

    expected_sha256: the hash a stage recorded for a checkpoint (fer.evaluate.provenance); it must match.
    """
    if Path(path).suffix == ".onnx":
        return OnnxClassifier(path)
    from fer.runtime.checkpoint import CheckpointClassifier

    return CheckpointClassifier(path, expected_sha256)
