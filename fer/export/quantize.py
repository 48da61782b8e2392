"""int8 ONNX with onnxruntime's quantisation: static (activations calibrated on train images) or dynamic."""

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from fer.runtime.onnx_model import INPUT

Int8Method = Literal["static", "dynamic"]
CALIBRATION_BATCH = 32
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")


class TrainCrops(CalibrationDataReader):
    """Batches of train crops, as the exported graph takes them, for the calibration pass."""

    def __init__(self, crops: np.ndarray):
        self.batches = iter(np.array_split(crops, max(1, len(crops) // CALIBRATION_BATCH)))

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT: np.ascontiguousarray(batch, dtype=np.uint8)}


def calibration_sample(train_crops: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n train crops drawn without replacement (all of them when there are fewer)."""
    rng = np.random.default_rng(seed)
    return train_crops[np.sort(rng.permutation(len(train_crops))[:n])]


def first_and_last_weighted(graph: onnx.GraphProto) -> set[str]:
    """The graph's first and last weighted layers: the grey stem and the classifier."""
    weighted = [node.name for node in graph.node if node.op_type in WEIGHTED_OPS]
    return {*weighted[:1], *weighted[-1:]}


def output_producers(graph: onnx.GraphProto) -> set[str]:
    """The nodes that write the graph's outputs: the output activation."""
    outputs = {output.name for output in graph.output}
    return {node.name for node in graph.node if outputs.intersection(node.output)}


def kept_in_float(path: str | Path) -> list[str]:
    """The nodes left unquantised: the first and last weighted layers and the output activation, for a few kB.
    Quantising the probabilities would round them to steps of about 1/255 and tie close classes. Whether keeping
    the two layers float gains agreement changed between two trainings of one model (docs/export.md)."""
    graph = onnx.load(str(path)).graph
    return sorted(first_and_last_weighted(graph) | output_producers(graph))


def quantize_int8(
    onnx_path: str | Path, out_path: str | Path, method: Int8Method, calibration: np.ndarray, per_channel: bool
) -> None:
    """Write the int8 version of onnx_path. The graph is prepared first (shape inference and onnxruntime's
    fusions, as its quantisation tool advises), and its metadata carried over."""
    out_path = Path(out_path)
    prepared = out_path.with_name(out_path.stem + ".prepared.onnx")
    try:
        quant_pre_process(str(onnx_path), str(prepared))
        kept_float = kept_in_float(prepared)
        if method == "static":
            # QDQ with signed int8 activations and weights. uint8 activations run about 2x faster on CPUs with
            # VNNI, but x86 CPUs without it multiply them through 16-bit sums that can saturate, so one file
            # could answer differently on older CPUs (docs/export.md).
            quantize_static(
                str(prepared),
                str(out_path),
                TrainCrops(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=kept_float,
            )
        else:
            quantize_dynamic(
                str(prepared),
                str(out_path),
                per_channel=per_channel,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=kept_float,
            )
    finally:
        prepared.unlink(missing_ok=True)
    source, quantized = onnx.load(str(onnx_path)), onnx.load(str(out_path))
    onnx.helper.set_model_props(quantized, {p.key: p.value for p in source.metadata_props})
    quantized.doc_string = source.doc_string + f" (int8, {method} quantisation)"
    onnx.save(quantized, str(out_path))
