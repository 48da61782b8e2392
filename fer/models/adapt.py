"""Shared by the builders: option checks, grey stems, fresh heads and loading weights files safely."""

from pathlib import Path

import torch
from torch import nn

from fer.core.errors import FerError, one_line


def required_option(owner: str, options: dict, name: str):
    """An option the builder has no default for: params.yaml's model entry is the one place its value lives."""
    if name not in options:
        raise FerError(f"{owner}: option {name} is required (set it in the model's options in params.yaml)")
    return options[name]


def fresh_head(model: nn.Module, head: str, num_classes: int, dropout: float) -> None:
    """Replace the Linear at attribute path `head` by Dropout + a new Linear(num_classes)."""
    in_features = model.get_submodule(head).in_features
    model.set_submodule(head, nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes)))


def make_grey(conv: nn.Conv2d) -> None:
    """Turn an RGB conv into a 1-channel one in place (in place keeps subclasses such as timm's same-padding
    conv). By linearity, summing the weights over the input channels makes conv(grey) == rgb_conv(grey x 3)."""
    conv.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True))
    conv.in_channels = 1


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
        # torch lists every missing/unexpected key over several lines after a heading; the first is enough
        first_problem = one_line(str(err).partition("\n")[2] or err)[:200]
        raise FerError(f"{owner}: {source} does not fit this architecture: {first_problem}") from None
