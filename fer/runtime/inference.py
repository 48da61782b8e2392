"""Batched and single-image inference on uint8 images, for evaluation, serving and the benchmark."""

import statistics
import time

import numpy as np
import torch

from fer.core.tasks.head import TaskHead
from fer.models.input_spec import InputSpec
from fer.runtime.device import autocast
from fer.runtime.inputs import batch_indices, model_input

WARMUP_PASSES = 2


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, images: torch.Tensor, spec: InputSpec, batch_size: int = 512
) -> torch.Tensor:
    """Logits (N, C) in float32 for uint8 images already on the model's device."""
    model.eval()
    device = images.device
    outputs = []
    for idx in batch_indices(len(images), batch_size, device=device):
        with autocast(device):
            outputs.append(model(model_input(images[idx], spec)).float())
    return torch.cat(outputs)


def predict_probabilities(
    model: torch.nn.Module, images: torch.Tensor, spec: InputSpec, head: TaskHead, tta_flip: bool = False
) -> np.ndarray:
    """Probabilities (N, C) of uint8 images by the task head's activation (a softmax over the classes, a sigmoid
    per attribute); with tta_flip, averaged with those of the mirrors."""
    activation = head.activation
    probabilities = activation(predict_logits(model, images, spec))
    if tta_flip:
        probabilities = (probabilities + activation(predict_logits(model, images.flip(-1), spec))) / 2
    return probabilities.cpu().numpy()


@torch.inference_mode()
def cpu_latency_ms(model: torch.nn.Module, images: torch.Tensor, spec: InputSpec, n_images: int) -> float:
    """Median ms to classify one uint8 image (preprocessing included) on the CPU, at torch's thread count.

    Single images, as a deployed model sees them; the median ignores the odd scheduler hiccup.
    """
    model = model.to("cpu").eval()
    images = images.cpu()
    timings = []
    for i in range(WARMUP_PASSES + n_images):
        image = images[i % len(images)].unsqueeze(0)
        start = time.perf_counter()
        model(model_input(image, spec))
        timings.append(time.perf_counter() - start)
    return statistics.median(timings[WARMUP_PASSES:]) * 1000
