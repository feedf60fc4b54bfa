"""Deterministic synthetic MNIST-like data that a small CNN learns quickly.

Each class ``c`` draws a large Gaussian blob at angle ``36 * c`` degrees on a
circle around the image centre, plus a smaller blob at a second
class-dependent position; samples add a small random shift, random
intensity and pixel noise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .idx import write_idx

__all__ = ["make_synthetic_mnist", "write_synthetic_mnist"]

_SIZE = 28
_CHUNK = 4096


def _class_centres() -> torch.Tensor:
    """Return [10, 2, 2] (class, blob, (row, col)) blob centres."""
    centres = torch.empty(10, 2, 2)
    for c in range(10):
        a = 2 * math.pi * c / 10
        b = a + math.pi * (1 + (c % 3)) / 2
        centres[c, 0] = torch.tensor([13.5 + 8 * math.sin(a), 13.5 + 8 * math.cos(a)])
        centres[c, 1] = torch.tensor([13.5 + 4 * math.sin(b), 13.5 + 4 * math.cos(b)])
    return centres


def make_synthetic_mnist(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``n`` synthetic samples: images uint8 [n, 28, 28], labels uint8 [n] (0..9).

    Labels are balanced (counts differ by at most one) and shuffled; the
    output depends only on ``n`` and ``seed``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    gen = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=gen)]
    shift = torch.rand(n, 1, 2, generator=gen) * 3.0 - 1.5
    intensity = 0.7 + 0.3 * torch.rand(n, 1, 1, generator=gen)
    sigma = torch.tensor([2.2, 1.4]).view(1, 2, 1, 1)
    weight = torch.tensor([1.0, 0.8]).view(1, 2, 1, 1)
    centres = _class_centres()[labels] + shift  # [n, 2, 2]
    coords = torch.arange(_SIZE, dtype=torch.float32)
    images = torch.empty(n, _SIZE, _SIZE, dtype=torch.uint8)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        cr = centres[lo:hi, :, 0].unsqueeze(-1).unsqueeze(-1)  # [m, 2, 1, 1]
        cc = centres[lo:hi, :, 1].unsqueeze(-1).unsqueeze(-1)
        d2 = (coords.view(1, 1, -1, 1) - cr) ** 2 + (coords.view(1, 1, 1, -1) - cc) ** 2
        blobs = (weight * torch.exp(-d2 / (2 * sigma**2))).sum(dim=1)  # [m, 28, 28]
        noise = torch.rand(hi - lo, _SIZE, _SIZE, generator=gen) * 40.0
        pix = 255.0 * intensity[lo:hi] * blobs.clamp(max=1.0) + noise
        images[lo:hi] = pix.clamp(0, 255).round().to(torch.uint8)
    return images, labels.to(torch.uint8)


def write_synthetic_mnist(
    data_dir: str | os.PathLike[str], n_train: int = 2048, n_test: int = 512, seed: int = 0
) -> Path:
    """Write synthetic train/test IDX files under the official MNIST names; return the dir.

    The test split uses ``seed + 1`` so it holds different samples.
    """
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        images, labels = make_synthetic_mnist(n, s)
        write_idx(d / f"{prefix}-images-idx3-ubyte", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", labels)
    return d
