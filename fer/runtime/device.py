"""Which device runs a model, and the per-device settings every loop shares."""

import time

import psutil
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


def data_budget_bytes(device: torch.device, budget_mb: float) -> int:
    """Bytes of training images to hold on `device`: budget_mb, or for 0 half of what is free there (the GPU's
    memory, or the RAM for a CPU run), leaving the rest to the model, its activations and the system."""
    if budget_mb:
        return int(budget_mb * 2**20)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else psutil.virtual_memory().available
    return free // 2
