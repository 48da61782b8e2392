"""What each onnxruntime quantisation option does to the champion: label agreement with the PyTorch model on the
whole test split, largest probability difference, accuracy, size and CPU latency, as a markdown table
(docs/export.md). The export stage ships the `stage:` row's settings (fer.export.quantize). The reference
rows and the QAT rows assume export.per_channel: true, the shipped setting.

    python scripts/int8_options.py --champion outputs/champion.pt --champion-record metrics/champion.json \
        --split outputs/split

Two reference rows bound what post-training int8 can reach: the float export fed crops with +-1 grey level of
random noise (the model's own sensitivity), and the float export with its weights rounded to int8 per channel
(float activations: the error of the weights alone).

With --qat-epochs N, three more rows: quantisation-aware fine-tuning as distillation (qat_distilled), its float
weights exported, those quantised as the stage does, and its fake quantisation exported as it is (torch writes
QuantizeLinear/DequantizeLinear pairs with its own ranges, which onnxruntime runs with int8 kernels).
"""

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch.ao.quantization import (
    FakeQuantize,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    QConfig,
    QConfigMapping,
    disable_observer,
)
from torch.ao.quantization.quantize_fx import prepare_qat_fx
from torch.fx.experimental.optimization import fuse

from fer.core.params import ExportParams, load_params
from fer.data.datasets import load_split
from fer.data.rawdata import TEST, TRAIN, VAL
from fer.evaluate.records import read_champion
from fer.export.checks import agreement, quality
from fer.export.latency import time_ms
from fer.export.onnx_export import CropsToProbabilities, export_onnx
from fer.export.quantize import (
    WEIGHTED_OPS,
    TrainCrops,
    calibration_sample,
    first_and_last_weighted,
    kept_in_float,
    quantize_int8,
)
from fer.runtime.checkpoint import load_checkpoint
from fer.runtime.inputs import batch_indices, model_input
from fer.runtime.onnx_model import OnnxClassifier

INT8 = QuantType.QInt8
QAT_BATCH = 64


# What the stage's static int8 does, as fake quantisation: 8-bit activations with one affine scale per tensor,
# symmetric int8 weights with one scale per output channel. The activations are uint8 (the same 256 levels,
# shifted): FX's default backend fake-quantises no int8 activation, only uint8 ones. The weights span [-128, 127]
# (scale: largest |w| / 127.5), the range torch's ONNX exporter can write as QuantizeLinear; the stage's span
# [-127, 127] (scale: largest |w| / 127).
def activation_fake_quant(observer: type) -> Callable[[], FakeQuantize]:
    return FakeQuantize.with_args(observer=observer, quant_min=0, quant_max=255, dtype=torch.quint8)


WEIGHT_FAKE_QUANT = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=torch.qint8,
    qscheme=torch.per_channel_symmetric,
)
RELU6_MAX = 6.0


class ReLU6CappedObserver(MovingAverageMinMaxObserver):
    """A range capped at 6 for a ReLU6's input or its fused convolution's output: the fake quantisation's own clamp
    then clips as ReLU6 does. The minimum is left as observed: clamping it to 0 too, as onnxruntime rounds the
    float stem's output, measured worse (docs/export.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        observed = super().forward(x)
        self.max_val.clamp_(max=RELU6_MAX)
        return observed


QAT_CONFIG = QConfig(activation=activation_fake_quant(MovingAverageMinMaxObserver), weight=WEIGHT_FAKE_QUANT)
RELU6_CONFIG = QConfig(activation=activation_fake_quant(ReLU6CappedObserver), weight=WEIGHT_FAKE_QUANT)


def relu6_into_conv_rounding(model: torch.fx.GraphModule, kept_float: set[str]) -> list[str]:
    """Change the folded model, in place, so that FX rounds each convolution's output once, after its ReLU6, as
    onnxruntime's fused int8 convolution does (FX fuses a convolution with ReLU, not with ReLU6, and rounds before
    and after a ReLU6): a quantised convolution whose one user is a ReLU6 gets a plain ReLU instead, fused into
    it, and ReLU6CappedObserver clips at 6. A ReLU6 after a convolution in kept_float stays. Returns the modules
    to give RELU6_CONFIG: every ReLU6 or its ReLU, and each changed convolution (FX fuses modules only when their
    qconfigs are equal)."""
    modules = dict(model.named_modules())
    names = []
    for node in model.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], torch.nn.ReLU6):
            continue
        names.append(node.target)
        source = node.args[0]
        if (
            source.op == "call_module"
            and isinstance(modules[source.target], torch.nn.Conv2d)
            and source.target not in kept_float
            and len(source.users) == 1
        ):
            parent, _, leaf = node.target.rpartition(".")
            setattr(model.get_submodule(parent), leaf, torch.nn.ReLU())
            names.append(source.target)
    return names


def static_options(prepared: Path, train: np.ndarray, export: ExportParams) -> dict[str, dict]:
    """quantize_static's arguments for each variant of the stage's static int8 (fer.export.quantize.quantize_int8:
    QDQ, int8 activations and weights, export.per_channel), one change each as its name says."""
    base = {
        "per_channel": export.per_channel,
        "activation_type": INT8,
        "nodes_to_exclude": kept_in_float(prepared),
        "calibration": export.calibration_images,
    }
    return {
        "output quantised too (the stage before)": {
            **base,
            "nodes_to_exclude": sorted(first_and_last_weighted(onnx.load(str(prepared)).graph)),
        },
        "every node int8": {**base, "nodes_to_exclude": []},
        "per-tensor weights": {**base, "per_channel": False},
        "uint8 activations": {**base, "activation_type": QuantType.QUInt8},
        "uint8 activations, reduce_range": {**base, "activation_type": QuantType.QUInt8, "reduce_range": True},
        "symmetric activations": {**base, "extra_options": {"ActivationSymmetric": True}},
        "MinMax, moving average": {**base, "extra_options": {"CalibMovingAverage": True}},
        "Percentile calibration (99.999)": {**base, "calibrate_method": CalibrationMethod.Percentile},
        "Entropy calibration": {**base, "calibrate_method": CalibrationMethod.Entropy},
        f"MinMax on all {len(train)} train crops": {**base, "calibration": len(train)},
        "int16 activations, int8 weights": {
            **base,
            "activation_type": QuantType.QInt16,
            "extra_options": {"UseQDQContribOps": True},
        },
    }


def weights_rounded(prepared: Path, out: Path) -> None:
    """The float graph with each weighted layer's weights rounded to symmetric int8, one scale per output channel."""
    model = onnx.load(str(prepared))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in WEIGHTED_OPS and node.input[1] in initializers:
            tensor = initializers[node.input[1]]
            w = numpy_helper.to_array(tensor)
            scale = np.abs(w).max(axis=tuple(range(1, w.ndim)), keepdims=True) / 127
            scale[scale == 0] = 1
            tensor.CopyFrom(numpy_helper.from_array((np.round(w / scale) * scale).astype(np.float32), tensor.name))
    onnx.save(model, str(out))


def qat_distilled(
    model: torch.nn.Module, record, train: np.ndarray, epochs: int, lr: float, seed: int
) -> tuple[torch.nn.Module, torch.fx.GraphModule]:
    """The champion fine-tuned to reproduce its own logits (MSE; train crops, half of each batch mirrored) under
    8-bit fake quantisation placed about as the stage's static export places it (fake_quantised), its BatchNorms
    folded into their convolutions first, as the ONNX exporter does. The observers freeze for the last epoch, and
    stay frozen for the export.
    Returns the folded float model (ReLU6 as it was) carrying the fine-tuned weights, and the
    fake-quantised model itself."""
    torch.manual_seed(seed)
    teacher, spec = model.eval(), record.input_spec
    folded = fuse(copy.deepcopy(model))
    crops = torch.from_numpy(np.ascontiguousarray(train))
    student = fake_quantised(folded, model_input(crops[:2], spec))
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        if epoch and epoch == epochs - 1:  # after at least one epoch of observed ranges
            student.apply(disable_observer)
        for batch in batch_indices(len(crops), QAT_BATCH, generator):
            x = model_input(crops[batch], spec)
            x[: len(batch) // 2] = x[: len(batch) // 2].flip(-1)
            with torch.no_grad():
                target = teacher(x)
            loss = F.mse_loss(student(x), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    student.apply(disable_observer)
    trained = student.state_dict()
    folded.load_state_dict({key: trained[key] for key in folded.state_dict()})
    return folded.eval(), student.eval()


def fake_quantised(
    folded: torch.fx.GraphModule,
    example: torch.Tensor,
    config: QConfig = QAT_CONFIG,
    relu6_config: QConfig = RELU6_CONFIG,
) -> torch.fx.GraphModule:
    """A copy of the folded model prepared for quantisation-aware training: every layer fake-quantised but the
    first and last weighted ones, ReLU6s inside their convolutions' rounding (relu6_into_conv_rounding). Stops
    unless FX placed it as asked (require_activation_fake_quant)."""
    weighted = [name for name, m in folded.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    kept_float = {weighted[0], weighted[-1]}
    trainable = copy.deepcopy(folded)
    mapping = QConfigMapping().set_global(config)
    for name in relu6_into_conv_rounding(trainable, kept_float):
        mapping.set_module_name(name, relu6_config)
    for name in kept_float:
        mapping.set_module_name(name, None)
    student = prepare_qat_fx(trainable.train(), mapping, (example,))
    require_activation_fake_quant(student, sum(isinstance(m, torch.nn.ReLU6) for m in folded.modules()))
    return student


def require_activation_fake_quant(student: torch.fx.GraphModule, relu6s: int) -> None:
    """Stop unless FX fake-quantises activations, with one capped range per ReLU6: it drops what its backend does
    not support without a word (signed int8 activations, a ReLU6 it cannot fuse), and the fine-tuning would then
    simulate something else than the int8 graph."""
    modules = student.named_modules()
    activations = [m for name, m in modules if isinstance(m, FakeQuantize) and not name.endswith("weight_fake_quant")]
    capped = sum(isinstance(m.activation_post_process, ReLU6CappedObserver) for m in activations)
    if not activations or capped != relu6s:
        raise RuntimeError(
            f"FX placed {len(activations)} activation fake quantisations, {capped} of them capped for the model's "
            f"{relu6s} ReLU6s: the fine-tuning would not simulate the int8 graph"
        )


def main():
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--champion", required=True)
    cli.add_argument("--champion-record", required=True)
    cli.add_argument("--split", required=True)
    cli.add_argument("--repeats", type=int, default=20, help="timed runs per row and batch size")
    cli.add_argument("--qat-epochs", type=int, default=0, help="quantisation-aware fine-tuning rows (0: none)")
    cli.add_argument("--qat-lr", type=float, default=5e-5, help="its Adam learning rate")
    args = cli.parse_args()
    params = load_params()
    champion_sha256 = read_champion(args.champion_record).sha256
    model, record = load_checkpoint(args.champion, expected_sha256=champion_sha256)
    test, labels = load_split(args.split, TEST)
    val, _ = load_split(args.split, VAL)
    train, _ = load_split(args.split, TRAIN)
    with torch.inference_mode():
        expected, expected_val = (
            CropsToProbabilities(model, record)(torch.from_numpy(np.ascontiguousarray(crops))).numpy()
            for crops in (test, val)
        )
    rows = []

    rng = np.random.default_rng(params.seed)

    def measure(name: str, path: Path, noise: bool = False) -> None:
        """One row; with noise, every pixel of the test and validation crops moved by -1, 0 or +1 grey level."""
        exported = OnnxClassifier(path, params.export.latency_threads)
        crops, val_crops = (
            np.clip(c + rng.integers(-1, 2, c.shape), 0, 255).astype(np.uint8) if noise else c for c in (test, val)
        )
        probabilities, val_probabilities = exported.probabilities(crops), exported.probabilities(val_crops)
        one, batch = test[:1], test[: params.export.latency_batch]
        rows.append(
            {
                "variant": name,
                "val_agreement": agreement(expected_val, val_probabilities, record.label_set)["agreement"],
                **agreement(expected, probabilities, record.label_set),
                **quality(probabilities, labels, record.label_set),
                "kB": path.stat().st_size // 1000,
                "one": time_ms(lambda: exported.probabilities(one), args.repeats),
                "batch": time_ms(lambda: exported.probabilities(batch), max(1, args.repeats // 2)),
            }
        )
        print(name, rows[-1]["agreement"], flush=True)

    with tempfile.TemporaryDirectory(prefix="fer-int8-") as scratch:
        scratch = Path(scratch)
        float_onnx, prepared = scratch / "float.onnx", scratch / "prepared.onnx"
        export_onnx(model, record, test.shape[1], float_onnx, params.export.opset, champion_sha256)
        quant_pre_process(str(float_onnx), str(prepared))
        measure("float ONNX", float_onnx)
        measure("float ONNX, crops +-1 grey level", float_onnx, noise=True)
        weights_rounded(prepared, scratch / "rounded.onnx")
        measure("float ONNX, weights rounded to int8", scratch / "rounded.onnx")
        calibration = calibration_sample(train, params.export.calibration_images, params.seed)
        quantize_int8(float_onnx, scratch / "stage.onnx", "static", calibration, params.export.per_channel)
        measure("stage: first/last layer and output float, MinMax", scratch / "stage.onnx")
        for name, options in static_options(prepared, train, params.export).items():
            options = dict(options)
            crops = calibration_sample(train, options.pop("calibration"), params.seed)
            out = scratch / "static.onnx"
            quantize_static(str(prepared), str(out), TrainCrops(crops), quant_format=QuantFormat.QDQ, **options)
            measure(name, out)
        quantize_int8(float_onnx, scratch / "dynamic.onnx", "dynamic", train[:0], params.export.per_channel)
        measure("dynamic (export.int8: dynamic)", scratch / "dynamic.onnx")
        if args.qat_epochs:
            start = time.perf_counter()
            tuned, student = qat_distilled(model, record, train, args.qat_epochs, args.qat_lr, params.seed)
            minutes = (time.perf_counter() - start) / 60
            qat_float, qat_int8 = scratch / "qat.onnx", scratch / "qat.int8.onnx"
            export_onnx(tuned, record, test.shape[1], qat_float, params.export.opset, champion_sha256)
            quantize_int8(qat_float, qat_int8, "static", calibration, params.export.per_channel)
            name = f"QAT distillation, {args.qat_epochs} epochs ({minutes:.1f} min)"
            measure(f"{name}: its float weights", qat_float)
            measure(f"{name}: quantised as the stage does", qat_int8)
            qat_qdq = scratch / "qat.qdq.onnx"  # its own fake quantisation, as QuantizeLinear/DequantizeLinear
            export_onnx(student, record, test.shape[1], qat_qdq, params.export.opset, champion_sha256)
            measure(f"{name}: its own fake quantisation exported", qat_qdq)
    print(markdown(rows, os.getloadavg()))


def markdown(rows: list[dict], load: tuple[float, ...]) -> str:
    def ms(t: dict) -> str:
        return f"{t['median']:.2f} ({t['q25']:.2f}-{t['q75']:.2f})"

    lines = [
        "| variant | val agreement | agreement | differ | max prob. diff. | accuracy | macro-F1 | kB | 1 crop ms "
        "| batch ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['val_agreement']:.2%} | {r['agreement']:.2%} | {r['disagreeing_images']} | "
            f"{r['max_probability_difference']:.3f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['kB']} | "
            f"{ms(r['one'])} | {ms(r['batch'])} |"
        )
    return "\n".join(lines) + f"\n\nload average at the end: {' '.join(f'{x:.2f}' for x in load)}"


if __name__ == "__main__":
    main()
