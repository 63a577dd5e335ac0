"""The ground floor: canvases as arrays and as tensors, and a differentiable resize.

Canvases travel as uint8 (N, H, W, 3) arrays, what a user uploads; models and attacks work on
float (N, 3, H, W) tensors in [0, 1]. Nothing here knows about faces, models or attacks.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(canvases: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    canvases = np.ascontiguousarray(canvases)
    t = torch.from_numpy(canvases) if canvases.flags.writeable else torch.tensor(canvases)
    return t.to(device).permute(0, 3, 1, 2).float().div_(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3), rounded: what a user would upload."""
    return (x.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def is_grayscale(x: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """Per image (N,), whether all three channels are equal (a grayscale photo on the canvas)."""
    return ((x[:, 0] - x[:, 1]).abs().amax(dim=(1, 2)) <= tol) & ((x[:, 0] - x[:, 2]).abs().amax(dim=(1, 2)) <= tol)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Differentiable bilinear resize of (N, 3, H, W) with antialiasing when shrinking."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < x.shape[-1])
