"""BatchNorm statistics that match the weights ("precise BN").

A BatchNorm layer evaluates with running statistics that trail the weights by an exponential average. With
torchvision's MobileNetV3 (momentum 0.01) and the few hundred optimizer steps of a CPU run, those statistics
still mostly describe the first hundred steps when the model is validated, and eval-mode accuracy sits at the
majority class while train accuracy rises. Re-estimating them for the current weights, as a plain average over
a pass of training images, is what makes validation (early stopping, pruning, the kept checkpoint) judge the
weights.
"""

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from fer.models.input_spec import InputSpec
from fer.runtime.device import autocast
from fer.runtime.inputs import batch_indices, model_input

BATCH_SIZE = 256


def batchnorm_layers(model: torch.nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers (1d/2d and subclasses such as timm's BatchNormAct2d) that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm_statistics(model: torch.nn.Module, images: torch.Tensor, spec: InputSpec) -> int:
    """Replace every BatchNorm's running mean and variance by their average over `images` (uint8 (N, H, W) on
    the model's device, seen without augmentation) under the current weights; returns the layers re-estimated.

    Only the BatchNorm layers run in train mode: dropout and stochastic depth stay off, as at evaluation.
    The weights and the layers' momenta are left as they were; a model without BatchNorm costs nothing.
    """
    layers = batchnorm_layers(model)
    if not layers or len(images) == 0:
        return 0
    was_training = model.training
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the pass instead of an exponential one
        layer.train()
    device = images.device
    try:
        for idx in batch_indices(len(images), BATCH_SIZE, device=device):
            if len(idx) < 2:  # a lone image has no variance to contribute
                continue
            with autocast(device):
                model(model_input(images[idx], spec))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return len(layers)
