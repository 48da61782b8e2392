"""Whole splits held on the device as uint8; batches are indexed, augmented and resized there."""

import numpy as np
import torch
import torch.nn.functional as F

from fer.augment import augment
from fer.errors import FerError
from fer.models import Normalization
from fer.params import AugmentParams


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FerError("train.device: cuda was asked for but torch sees no CUDA GPU; use auto or cpu")
    return torch.device(name)


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Upload a split once: uint8 keeps a FER2013-sized split at ~66 MB, a quarter of float32."""
    images = torch.as_tensor(np.array(images, dtype=np.uint8), device=device)
    return images, torch.as_tensor(np.array(labels), device=device)


def model_input(images: torch.Tensor, image_size: int, norm: Normalization, augment_params: AugmentParams | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (B, H, W) -> normalised float (B, 1, S, S) in channels_last, augmented when params are given."""
    x = images.unsqueeze(1).float().div_(255.0)
    if augment_params is not None:
        x = augment(x, augment_params, generator)
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x - norm.mean) / norm.std
    return x.contiguous(memory_format=torch.channels_last)


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None, device=None):
    """Index tensors of each batch; shuffled when a generator is given. The last partial batch is kept."""
    if generator is None:
        return torch.arange(n, device=device).split(batch_size)
    order = torch.randperm(n, generator=generator, device=device)
    return order.split(batch_size)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU, where bf16 matmuls are slower than fp32 on most cores."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, image_size: int, norm: Normalization,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits (N, C) in float32 for uint8 images already on the model's device."""
    model.eval()
    device = images.device
    outputs = []
    for idx in batch_indices(len(images), batch_size, device=device):
        with autocast(device):
            outputs.append(model(model_input(images[idx], image_size, norm)).float())
    return torch.cat(outputs)
