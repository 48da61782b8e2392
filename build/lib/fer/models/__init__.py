"""Model registry: build_model(arch, ...) -> (module taking (B, 1, S, S) grey images, its InputSpec).

Every model returns plain logits (B, num_classes). Pretrained models get a grey stem (first conv summed over
its RGB input channels, so a grey image gives the activations of that image replicated to RGB) and a fresh
Dropout + Linear head (fer.models.adapt). The architectures and their builders are listed in
fer.core.archs; a builder's module is imported only when it is built, because timm and transformers take
seconds to import and a cnn run should not pay for them.
"""

import importlib

from torch import nn

from fer.core.archs import ARCH_BUILDERS, ARCHS
from fer.core.errors import FerError
from fer.models.input_spec import InputSpec


def build_model(
    arch: str,
    num_classes: int,
    image_size: int,
    pretrained: bool | str = False,
    dropout: float = 0.0,
    **options,
) -> tuple[nn.Module, InputSpec]:
    """pretrained: False (random init), True (the arch's published weights) or a path to a weights file."""
    if arch not in ARCH_BUILDERS:
        raise FerError(f"unknown model arch {arch!r}; expected one of: {', '.join(ARCHS)}")
    module_name, function_name = ARCH_BUILDERS[arch].split(":")
    builder = getattr(importlib.import_module(f"{__name__}.{module_name}"), function_name)
    model, norm = builder(
        num_classes=num_classes, image_size=image_size, pretrained=pretrained, dropout=dropout, **options
    )
    return model, InputSpec.of(image_size, norm)
