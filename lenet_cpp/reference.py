"""The pure-PyTorch reference LeNet-5: same layers and parameter names as the C++ model.

It exists so weights move both ways (``LeNet5.state_dict()`` loads into it and back) and so
the C++ forward pass can be checked against ``torch.nn``. It is not a second trainer.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LeNet5(nn.Module):
    """conv5x5(pad 2) -> act -> pool -> conv5x5 -> act -> pool -> FC120 -> FC84 -> FC10."""

    def __init__(self, activation: str = "relu", pooling: str = "max") -> None:
        super().__init__()
        if activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.activation = activation
        self.pooling = pooling
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if self.activation == "relu" else torch.tanh(x)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, 10] for normalised images [N, 1, 28, 28] (see ``lenet_cpp.normalize``)."""
        x = self._pool(self._act(self.conv1(x)))
        x = self._pool(self._act(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self._act(self.fc1(x))
        x = self._act(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits
