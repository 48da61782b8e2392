"""Which device runs a model, and the per-device settings every loop shares."""

import time

import torch

from fer.core.errors import FerError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FerError("train.device: cuda was asked for but torch sees no CUDA GPU; use auto or cpu")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU, where bf16 matmuls are slower than fp32 on most cores."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def clock(device: torch.device) -> float:
    """perf_counter once the device has finished its queued work: CUDA kernels run asynchronously, so a
    clock read without synchronising would time the launches, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
