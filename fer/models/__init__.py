"""Model registry: build_model(arch, ...) -> (module taking (B, 1, S, S) grey images, its input Normalization).

Every model returns plain logits (B, num_classes). Pretrained models get a grey stem (first conv summed over
its RGB input channels, so a grey image gives the activations of that image replicated to RGB) and a fresh
Dropout + Linear head.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fer.errors import FerError

ARCHS = ("mlp", "cnn", "resnet18", "mobilenet", "efficientnet", "efficientnet_lite0", "vit")


@dataclass(frozen=True)
class Normalization:
    """(x - mean) / std, applied to grey input scaled to [0, 1]."""

    mean: float
    std: float


# FER2013 pixels have mean ~0.51 and std ~0.25: models trained from scratch see roughly unit-scale input.
FROM_SCRATCH = Normalization(mean=0.5, std=0.25)

# Builders live in submodules imported on demand: timm and transformers take seconds to import, and a cnn
# run should not pay for them.
_BUILDERS = {
    "mlp": ("baselines", "build_mlp"),
    "cnn": ("baselines", "build_cnn"),
    "resnet18": ("torchvision_models", "build_resnet18"),
    "mobilenet": ("torchvision_models", "build_mobilenet"),
    "efficientnet": ("torchvision_models", "build_efficientnet"),
    "efficientnet_lite0": ("lite0", "build_lite0"),
    "vit": ("vit", "build_vit"),
}


def build_model(
    arch: str,
    num_classes: int,
    image_size: int,
    pretrained: bool | str = False,
    dropout: float = 0.0,
    **options,
) -> tuple[nn.Module, Normalization]:
    """pretrained: False (random init), True (the arch's published weights) or a path to a weights file."""
    if arch not in _BUILDERS:
        raise FerError(f"unknown model arch {arch!r}; expected one of: {', '.join(ARCHS)}")
    module_name, function_name = _BUILDERS[arch]
    builder = getattr(importlib.import_module(f"{__name__}.{module_name}"), function_name)
    return builder(
        num_classes=num_classes, image_size=image_size, pretrained=pretrained, dropout=dropout, **options
    )


def check_options(owner: str, options: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise FerError(
            f"{owner}: unknown option {unknown[0]!r}; allowed: {', '.join(allowed) or '(none)'}"
        )


def fresh_head(model: nn.Module, head: str, num_classes: int, dropout: float) -> None:
    """Replace the Linear at attribute path `head` by Dropout + a new Linear(num_classes)."""
    in_features = model.get_submodule(head).in_features
    model.set_submodule(head, nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes)))


def make_grey(conv: nn.Conv2d) -> None:
    """Turn an RGB conv into a 1-channel one in place (in place keeps subclasses such as timm's same-padding
    conv). By linearity, summing the weights over the input channels makes conv(grey) == rgb_conv(grey x 3)."""
    conv.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True))
    conv.in_channels = 1


def one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def load_weights_file(owner: str, path: str) -> dict[str, torch.Tensor]:
    """A state_dict saved with torch.save; weights_only so a weights file cannot run code."""
    if not Path(path).is_file():
        raise FerError(f"{owner}: pretrained weights file {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises assorted pickle/zip errors for files that are not a state_dict
        raise FerError(f"{owner}: {path} is not a readable torch state_dict file ({one_line(err)})") from None


def load_matching(owner: str, model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        # torch lists every missing/unexpected key over several lines; one line is enough to say what is wrong
        lines = str(err).splitlines()
        first_problem = (lines[1] if len(lines) > 1 else lines[0]).strip()[:200]
        raise FerError(f"{owner}: {source} does not fit this architecture: {first_problem}") from None
