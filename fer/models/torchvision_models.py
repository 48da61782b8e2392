"""ImageNet architectures from torchvision (resnet18, MobileNetV3-small, EfficientNet-B0) adapted to grey input."""

from dataclasses import dataclass, field

import torchvision
from torch import nn

from fer.core.errors import FerError, one_line
from fer.models.adapt import check_options, fresh_head, load_matching, load_weights_file, make_grey
from fer.models.input_spec import FROM_SCRATCH, Normalization

# The ImageNet RGB mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) averaged to one grey channel.
IMAGENET_GREY = Normalization(mean=0.449, std=0.226)


@dataclass(frozen=True)
class TorchvisionArch:
    name: str  # torchvision.models.get_model name
    stem: str  # attribute path of the first (RGB) conv
    head: str  # attribute path of the final Linear
    # mobilenet and efficientnet carry their own dropout before the head: zero it so `dropout` is the one knob
    constructor_kwargs: dict = field(default_factory=dict)


TORCHVISION_ARCHS = {
    "resnet18": TorchvisionArch("resnet18", stem="conv1", head="fc"),
    "mobilenet": TorchvisionArch(
        "mobilenet_v3_small", stem="features.0.0", head="classifier.3", constructor_kwargs={"dropout": 0.0}
    ),
    "efficientnet": TorchvisionArch(
        "efficientnet_b0", stem="features.0.0", head="classifier.1", constructor_kwargs={"dropout": 0.0}
    ),
}


def _builder(arch: str):
    spec = TORCHVISION_ARCHS[arch]

    def build(num_classes, image_size, pretrained, dropout, **options) -> tuple[nn.Module, Normalization]:
        # convolutional and globally pooled: any image_size works, so it needs no adapting here
        check_options(arch, options, allowed=())
        model = _imagenet_model(arch, spec, pretrained)
        make_grey(model.get_submodule(spec.stem))
        fresh_head(model, spec.head, num_classes, dropout)
        return model, IMAGENET_GREY if pretrained else FROM_SCRATCH

    build.__name__ = f"build_{arch}"
    return build


build_resnet18 = _builder("resnet18")
build_mobilenet = _builder("mobilenet")
build_efficientnet = _builder("efficientnet")


def _imagenet_model(arch: str, spec: TorchvisionArch, pretrained: bool | str) -> nn.Module:
    """The original RGB, 1000-class model: random, torchvision's ImageNet weights, or a local state_dict."""
    if pretrained is True:
        return _download_imagenet_model(arch, spec)
    model = torchvision.models.get_model(spec.name, weights=None, **spec.constructor_kwargs)
    if pretrained:
        load_matching(arch, model, load_weights_file(arch, pretrained), source=pretrained)
    return model


def _download_imagenet_model(arch: str, spec: TorchvisionArch) -> nn.Module:
    try:
        return torchvision.models.get_model(spec.name, weights="DEFAULT", **spec.constructor_kwargs)
    # URLError (an OSError) when offline, RuntimeError for a corrupt or hash-mismatched download
    except (OSError, RuntimeError) as err:
        raise FerError(
            f"{arch}: could not download the ImageNet weights of {spec.name} ({one_line(err)}); run once with "
            "internet to fill the torch hub cache (~/.cache/torch or $TORCH_HOME), or set "
            f"models.{arch}.pretrained to a local .pth state_dict, or set pretrained: false"
        ) from None
