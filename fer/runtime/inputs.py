"""Whole splits held on the device as uint8; batches are indexed, transformed and resized there. A split too large
for the device stays in its memory-mapped file (HostImages), and each batch is gathered from it and uploaded."""

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from fer.core.arrays import read_ahead
from fer.models.input_spec import InputSpec


def to_device(images: np.ndarray, labels: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Upload a split once: uint8 keeps a FER2013-sized split at ~66 MB, a quarter of float32."""
    images = torch.as_tensor(np.array(images, dtype=np.uint8), device=device)
    return images, torch.as_tensor(np.array(labels), device=device)


class HostImages:
    """uint8 images (N, H, W) left in host memory or a memory-mapped .npy file, indexed like a tensor on `device`:
    images[rows] gathers those rows (a tensor of indices or a slice) and uploads them."""

    def __init__(self, images: np.ndarray, device: torch.device):
        self.images, self.device = images, device

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows: torch.Tensor | slice) -> torch.Tensor:
        block = self.images[rows if isinstance(rows, slice) else rows.cpu().numpy()]
        return torch.from_numpy(np.ascontiguousarray(block)).to(self.device)


def split_for_training(
    images: np.ndarray, labels: np.ndarray, device: torch.device, whole: bool
) -> tuple[torch.Tensor | HostImages, torch.Tensor]:
    """A split as fit reads it: uploaded whole (to_device), or left where it is (HostImages); labels always
    go to the device (a few MB even for CelebA)."""
    if whole:
        return to_device(images, labels, device)
    return HostImages(images, device), torch.as_tensor(np.array(labels), device=device)


def gathered(images: torch.Tensor | HostImages, batches: Sequence[torch.Tensor]) -> Iterator[torch.Tensor]:
    """images[rows] for each batch of rows, in order; from HostImages the next batch is read while this one is
    used."""
    if isinstance(images, HostImages):
        yield from read_ahead(images.__getitem__, batches)
    else:
        yield from (images[rows] for rows in batches)


def model_input(
    images: torch.Tensor, spec: InputSpec, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """uint8 (B, H, W) -> normalised float (B, 1, S, S) in channels_last.

    transform (e.g. training augmentation) sees float (B, 1, H, W) images in [0, 1] before the resize.
    """
    x = images.unsqueeze(1).float().div_(255.0)
    if transform is not None:
        x = transform(x)
    if x.shape[-1] != spec.image_size or x.shape[-2] != spec.image_size:
        x = F.interpolate(x, size=(spec.image_size, spec.image_size), mode="bilinear", align_corners=False)
    x = (x - spec.mean) / spec.std
    return x.contiguous(memory_format=torch.channels_last)


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None, device=None):
    """Index tensors of each batch; shuffled when a generator is given. The last partial batch is kept."""
    if generator is None:
        return torch.arange(n, device=device).split(batch_size)
    order = torch.randperm(n, generator=generator, device=device)
    return order.split(batch_size)
