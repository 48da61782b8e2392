"""A checkpoint's model as ONNX: uint8 crops in, probabilities out, its record in the metadata."""

import json
import warnings
from pathlib import Path

import onnx
import torch

from fer.runtime.inputs import model_input
from fer.runtime.onnx_model import CLASSES_KEY, CROP_KEY, INPUT, INPUT_SPEC_KEY, OUTPUT, RECORD_KEY, SOURCE_KEY
from fer.runtime.record import ModelRecord


class CropsToProbabilities(torch.nn.Module):
    """The model with its input spec and output activation around it, so that a runtime needs neither."""

    def __init__(self, model: torch.nn.Module, record: ModelRecord):
        super().__init__()
        self.model, self.spec, self.head = model.eval(), record.input_spec, record.label_set.head

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head.activation(self.model(model_input(crops, self.spec)).float())


def export_onnx(
    model: torch.nn.Module, record: ModelRecord, crop_size: int, path: str | Path, opset: int, checkpoint_sha256: str
) -> None:
    """Write the model taking uint8 crops (batch, crop_size, crop_size), any batch size, to path."""
    example = torch.full((2, crop_size, crop_size), 128, dtype=torch.uint8)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo=True, which needs onnxscript (not a
        # dependency); it exports every architecture of the registry as it is.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            CropsToProbabilities(model, record).cpu(),
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=opset,
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
        )
    exported = onnx.load(str(path))
    metadata = {
        RECORD_KEY: record.model_dump_json(),
        CLASSES_KEY: json.dumps(record.classes),
        INPUT_SPEC_KEY: json.dumps(record.input_spec.as_dict()),
        CROP_KEY: str(crop_size),
        SOURCE_KEY: checkpoint_sha256,
    }
    onnx.helper.set_model_props(exported, metadata)
    exported.doc_string = f"fer {record.name} ({record.arch}): uint8 face crops in, {record.task} probabilities out"
    onnx.checker.check_model(exported)
    onnx.save(exported, str(path))
