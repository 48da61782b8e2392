"""BatchNorm statistics that match the weights ("precise BN").

A BatchNorm layer evaluates with running statistics that trail the weights by an exponential average. With
torchvision's MobileNetV3 and EfficientNet (momentum 0.01) and the few hundred optimizer steps of a CPU run,
those statistics are still close to their initial values, and eval-mode accuracy sits at the majority class
while train accuracy rises. Recomputing them for the current weights, as a plain average over a pass of
training images, is what makes validation (early stopping, pruning, the kept checkpoint) judge the weights.
"""

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from fer.models.input_spec import InputSpec
from fer.runtime.device import autocast
from fer.runtime.inputs import batch_indices, model_input

# A few thousand images estimate the statistics of every layer well (Wu & Johnson, "Rethinking 'Batch' in
# BatchNorm", 2021); more only adds forward passes.
STATISTICS_IMAGES = 2048


@torch.no_grad()
def recompute_batchnorm_statistics(model: torch.nn.Module, images: torch.Tensor, spec: InputSpec,
                                   batch_size: int, max_images: int = STATISTICS_IMAGES) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them on up to max_images uint8 images
    (no augmentation), leaving the weights and the layers' momenta as they were. A model without
    BatchNorm is left untouched at no cost."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the pass instead of an exponential one
    model.train()
    device = images.device
    for idx in batch_indices(min(len(images), max_images), batch_size, device=device):
        with autocast(device):
            model(model_input(images[idx], spec))
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    model.train(was_training)
