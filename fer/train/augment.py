"""Batched, per-image random augmentation on whatever device the batch lives on.

Flip, rotation, zoom and shift are folded into one affine matrix per image and applied with a single
grid_sample call; random erasing is a mask. No per-image Python, so it costs the same on CPU and GPU
whatever the batch size (measured ~3x faster on CPU than chaining kornia's flip, affine and erasing).
"""

import math

import torch
import torch.nn.functional as F

from fer.core.params import AugmentParams


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def random_affine(x: torch.Tensor, p: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    """x: (B, C, H, W) float. Each image gets its own flip, rotation, zoom and shift."""
    n, device = x.shape[0], x.device
    angle = _uniform(n, -math.radians(p.degrees), math.radians(p.degrees), generator, device)
    zoom = _uniform(n, 1 - p.scale, 1 + p.scale, generator, device)
    shift = _uniform(2 * n, -2 * p.translate, 2 * p.translate, generator, device).view(n, 2)  # [-1, 1] grid units
    flip = torch.ones(n, device=device)
    if p.flip:
        flip = torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -flip, flip)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erasing(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Blank one random rectangle (2-15% of the area) in each image with the given probability."""
    n, _, h, w = x.shape
    device = x.device
    area = _uniform(n, 0.02, 0.15, generator, device)
    aspect = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), generator, device))
    eh = (torch.sqrt(area * aspect) * h).clamp(max=h)
    ew = (torch.sqrt(area / aspect) * w).clamp(max=w)
    cy = _uniform(n, 0, 1, generator, device) * (h - eh) + eh / 2
    cx = _uniform(n, 0, 1, generator, device) * (w - ew) + ew / 2
    apply = torch.rand(n, generator=generator, device=device) < probability
    ys = torch.arange(h, device=device).view(1, h, 1) + 0.5
    xs = torch.arange(w, device=device).view(1, 1, w) + 0.5
    inside = (
        ((ys - cy.view(n, 1, 1)).abs() < eh.view(n, 1, 1) / 2)
        & ((xs - cx.view(n, 1, 1)).abs() < ew.view(n, 1, 1) / 2)
        & apply.view(n, 1, 1)
    )
    return x.masked_fill(inside.unsqueeze(1), 0.5)


def augment(x: torch.Tensor, p: AugmentParams, generator: torch.Generator) -> torch.Tensor:
    """x: (B, C, H, W) float in [0, 1]."""
    if p.flip or p.degrees or p.scale or p.translate:
        x = random_affine(x, p, generator)
    if p.erasing:
        x = random_erasing(x, p.erasing, generator)
    return x
