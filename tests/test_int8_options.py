"""scripts/int8_options.py's quantisation-aware fine-tuning fake-quantises what the int8 graph quantises: torch's FX
drops what its backend does not support without a word, and once left the activations out unnoticed."""

import importlib.util
from pathlib import Path

import pytest
import torch
from torch.ao.nn.intrinsic.qat import ConvReLU2d
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, QConfig
from torch.fx.experimental.optimization import fuse
from torchvision.ops import Conv2dNormActivation

SCRIPT = Path(__file__).parents[1] / "scripts" / "int8_options.py"


@pytest.fixture(scope="module")
def int8_options():
    spec = importlib.util.spec_from_file_location("int8_options", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def folded_model() -> torch.fx.GraphModule:
    """A stem, one quantised convolution block (Conv-BN-ReLU6, as in mobilenet_v2) and a classifier."""
    blocks = [Conv2dNormActivation(1, 4, activation_layer=torch.nn.ReLU6)]
    blocks += [Conv2dNormActivation(4, 8, activation_layer=torch.nn.ReLU6), torch.nn.Conv2d(8, 2, 1)]
    return fuse(torch.nn.Sequential(*blocks).eval())


def test_activations_are_fake_quantised_with_a_range_capped_at_6_per_relu6(int8_options):
    torch.manual_seed(0)
    folded = folded_model()
    student = int8_options.fake_quantised(folded, torch.zeros(2, 1, 8, 8))
    capped = [m for m in student.modules() if isinstance(m, int8_options.ReLU6CappedObserver)]
    assert len(capped) == 2
    assert sum(isinstance(m, ConvReLU2d) for m in student.modules()) == 1, "the block rounds once, after activation"
    student(torch.randn(4, 1, 8, 8) * 50)  # the stem's outputs far beyond 6
    assert all(0 < observer.max_val <= int8_options.RELU6_MAX for observer in capped)
    assert sum(isinstance(m, torch.nn.ReLU6) for m in folded.modules()) == 2, "the folded model keeps its ReLU6s"


def test_signed_int8_activations_which_fx_leaves_out_stop_the_fine_tuning(int8_options):
    # Pins torch's FX as it is: a backend that fake-quantises signed activations would fail here, on purpose.
    signed = QConfig(
        activation=FakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8
        ),
        weight=int8_options.WEIGHT_FAKE_QUANT,
    )
    with pytest.raises(RuntimeError, match="FX placed 0 activation fake quantisations, 0 of them capped"):
        int8_options.fake_quantised(folded_model(), torch.zeros(2, 1, 8, 8), signed, signed)


def test_relu6s_without_a_capped_range_stop_the_fine_tuning(int8_options):
    uncapped = int8_options.QAT_CONFIG
    with pytest.raises(RuntimeError, match="0 of them capped for the model's 2 ReLU6s"):
        int8_options.fake_quantised(folded_model(), torch.zeros(2, 1, 8, 8), relu6_config=uncapped)
