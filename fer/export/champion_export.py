"""The export stage's work: the champion as ONNX and int8 ONNX, each checked against the PyTorch champion on
the whole test split and timed on the CPU beside it; the metrics say what each format costs and keeps."""

import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from fer.core.errors import FerError
from fer.core.params import ExportParams
from fer.core.storage import atomic_path, file_sha256, write_json
from fer.data.datasets import load_split, split_label_set
from fer.data.rawdata import TEST, TRAIN
from fer.evaluate.records import read_champion
from fer.export.checks import accuracy_against, agreement, batching_changes, quality, require_agreement
from fer.export.latency import time_ms
from fer.export.onnx_export import CropsToProbabilities, export_onnx
from fer.export.quantize import calibration_sample, quantize_int8
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.onnx_model import OnnxClassifier

INT8_METHODS = ("static", "dynamic")


def export_champion(
    checkpoint: str | Path,
    champion_record: str | Path,
    split_dir: str | Path,
    onnx_path: str | Path,
    int8_path: str | Path,
    metrics_path: str | Path,
    params: ExportParams,
    seed: int,
    interval: float,
    resamples: int,
    alpha: float,
) -> dict:
    """Write both exports and metrics_path; an export answering unlike the champion beyond the params' limits
    fails before either file is replaced. Scores carry bootstrap intervals (confidence `interval`, `resamples`
    resamples), and each export's accuracy is tested against the champion's at significance level alpha.
    Returns the metrics."""
    model, record = load_checkpoint(checkpoint, expected_sha256=read_champion(champion_record).sha256)
    if record.label_set != split_label_set(split_dir):
        raise FerError(f"{checkpoint}: trained for other labels than {split_dir}'s; re-run the pipeline (dvc repro)")
    test_images, test_labels = load_split(split_dir, TEST)
    train_images, _ = load_split(split_dir, TRAIN)
    reference = CropsToProbabilities(model, record)
    with torch.inference_mode():
        expected = reference(torch.from_numpy(np.ascontiguousarray(test_images))).numpy()
    threads = params.latency_threads
    timing_sample = test_images[: params.latency_batch]

    def measured(path: Path) -> dict:
        exported = OnnxClassifier(path, threads)
        # Checked as fer serve asks, one crop at a time: dynamic quantisation's answers depend on the batch.
        alone = exported.probabilities(test_images, batch_size=1)
        return {
            "size_bytes": path.stat().st_size,
            **agreement(expected, alone, record.label_set),
            **quality(alone, test_labels, record.label_set, interval, resamples),
            **accuracy_against(expected, alone, test_labels, record.label_set, alpha),
            **batching_changes(exported.probabilities(test_images), alone, record.label_set),
            **_latencies(exported.probabilities, timing_sample, params.latency_repeats),
        }

    def torch_probabilities(crops: np.ndarray) -> torch.Tensor:  # timed as the exports are: crops in
        return reference(torch.from_numpy(crops))

    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            formats = {
                "torch": {
                    "size_bytes": Path(checkpoint).stat().st_size,
                    **quality(expected, test_labels, record.label_set, interval, resamples),
                    **_latencies(torch_probabilities, timing_sample, params.latency_repeats),
                }
            }
    finally:
        torch.set_num_threads(threads_before)
    calibration = calibration_sample(train_images, params.calibration_images, seed)
    with (
        atomic_path(onnx_path) as onnx_tmp,
        atomic_path(int8_path) as int8_tmp,
        tempfile.TemporaryDirectory(prefix="fer-export-") as scratch,
    ):
        export_onnx(model, record, test_images.shape[1], onnx_tmp, params.opset, file_sha256(checkpoint))
        formats["onnx"] = measured(onnx_tmp)
        for method in INT8_METHODS:  # both measured; params.int8 names the one shipped
            out = int8_tmp if method == params.int8 else Path(scratch) / f"{method}.onnx"
            quantize_int8(onnx_tmp, out, method, calibration, params.per_channel)
            formats[f"int8_{method}"] = measured(out)
        require_agreement(str(onnx_path), formats["onnx"], params.min_agreement, params.max_probability_difference)
        require_agreement(
            str(int8_path), formats[f"int8_{params.int8}"], params.min_int8_agreement, param="export.min_int8_agreement"
        )
    metrics = {
        "model": record.name,
        "checkpoint_sha256": file_sha256(checkpoint),
        "test_images": len(test_images),
        "int8_shipped": params.int8,
        "calibration_images": len(calibration),
        "formats": formats,
        "latency": {
            "threads": threads,  # torch's and onnxruntime's
            "load_average": [round(load, 2) for load in os.getloadavg()],  # other processes show here
            "batch_size": len(timing_sample),
            "repeats": params.latency_repeats,
            **_cpu(),
        },
    }
    write_json(metrics_path, metrics)
    return metrics


# The instruction sets that pick onnxruntime's and torch's CPU kernels: int8 speed (VNNI) and trained weights
# (docs/noise.md) differ with them, and CPUs of one model name can differ in them.
KERNEL_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def _cpu() -> dict:
    """The CPU model as Linux names it (platform.processor() is empty there), else the architecture, and which
    of KERNEL_FEATURES it has (unknown: an empty list)."""
    cpuinfo = Path("/proc/cpuinfo")
    first_processor = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        key, _, value = line.partition(":")
        first_processor.setdefault(key.strip(), value.strip())
    flags = set(first_processor.get("flags", "").split())
    return {
        "cpu": first_processor.get("model name") or platform.machine(),
        "cpu_features": [feature for feature in KERNEL_FEATURES if feature in flags],
    }


def _latencies(run, crops: np.ndarray, repeats: int) -> dict:
    """ms for one crop and for a batch of them (preprocessing and output activation included)."""
    one = np.ascontiguousarray(crops[:1])
    batch = np.ascontiguousarray(crops)
    return {"latency_ms": time_ms(lambda: run(one), repeats), "batch_latency_ms": time_ms(lambda: run(batch), repeats)}
