"""The pure-PyTorch reference: LeNet-5 in ``torch.nn`` and its ``torch.optim`` training loop.

``LeNet5`` has the C++ model's layers and parameter names, so weights move both ways
(``lenet_cpp.LeNet5.state_dict()`` loads into it and back) and the C++ forward pass can be
checked against ``torch.nn``.

``train_loop`` is the fastest loop we know how to write in plain PyTorch for this model, the
one the benchmark (``bench/``) measures the C++ trainer against: in-memory normalised
tensors, one shuffle per epoch into a persistent buffer and contiguous slices of it,
channels-last activations and weights, ``torch.optim.SGD(fused=True)``, the loss kept on the
tensor side (one ``.item()`` per epoch). It draws the initial weights and the per-epoch
permutations exactly as the C++ trainer does (``cpp_like_init``: same generator, same
order), so both start from the same point and see the same batches. ``torch.compile`` is
not used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "Hyper",
    "LeNet5",
    "LoopResult",
    "StopRule",
    "cpp_like_init",
    "epoch_loss",
    "evaluate",
    "train_loop",
]


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


@dataclass
class Hyper:
    """Hyper-parameters shared by every contender."""

    batch_size: int = 64
    learning_rate: float = 0.01
    momentum: float = 0.9
    activation: str = "relu"
    pooling: str = "max"
    seed: int = 0


@dataclass
class LoopResult:
    """What a training loop reports; times in seconds."""

    images_per_second: float
    train_time_s: float  # optimisation steps and shuffling only
    wall_time_s: float  # whole call: set-up, training and the per-epoch evaluations
    train_loss: list[float] = field(default_factory=list)  # per epoch, mean over samples
    test_accuracy: list[float] = field(default_factory=list)  # per epoch, when evaluated


def cpp_like_init(model: LeNet5, seed: int) -> torch.Generator:
    """Draw ``model``'s parameters as ``lenet_cpp.train`` does and return the generator.

    The C++ trainer seeds one CPU generator with ``seed``, fills each layer's weight then bias
    uniformly in +-1/sqrt(fan_in) from the low 24 bits of one 32-bit draw per value (its own
    arithmetic, the same on every CPU), and then draws one ``randperm`` per epoch from it.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.conv1, model.conv2, model.fc1, model.fc2, model.fc3):
            bound = 1.0 / math.sqrt(layer.weight[0].numel())
            for param in layer.parameters(recurse=False):  # weight, then bias
                draws = torch.empty(param.shape, dtype=torch.int64)
                draws.random_(0, 2**24, generator=generator)
                unit = draws.double() * 2.0**-24
                param.copy_((unit * (2.0 * bound)).add(-bound).float())
    return generator


def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of ``model`` on normalised ``images``, in batches of 1000."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, images.shape[0], 1000):
            logits = model(images[start : start + 1000])
            correct += int((logits.argmax(1) == labels[start : start + 1000]).sum())
    model.train()
    return correct / images.shape[0]


def epoch_loss(batch_losses: list[torch.Tensor], n: int, batch_size: int) -> float:
    """Mean loss over the epoch's samples from the per-batch means (one sync per epoch)."""
    sizes = torch.full((len(batch_losses),), float(batch_size), dtype=torch.float64)
    sizes[-1] = n - batch_size * (len(batch_losses) - 1)
    return float((torch.stack(batch_losses).double() * sizes).sum()) / n


StopRule = Callable[[list[float]], bool]


def train_loop(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    hyper: Hyper,
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    stop: StopRule | None = None,
    channels_last: bool = True,
) -> LoopResult:
    """Train a fresh ``LeNet5`` on normalised float ``images`` [N,1,28,28] with ``torch.optim``.

    With ``test`` the model is evaluated after every epoch (not counted as training time);
    ``stop(test_accuracies)`` returning True ends training early.
    """
    call_start = time.perf_counter()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = LeNet5(hyper.activation, hyper.pooling)
    generator = cpp_like_init(model, hyper.seed)
    model = model.to(memory_format=layout)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=hyper.learning_rate, momentum=hyper.momentum, fused=True
    )
    targets = labels.long()
    test_set = (test[0].contiguous(memory_format=layout), test[1].long()) if test else None
    shuffled_images = torch.empty_like(images, memory_format=layout)
    shuffled_labels = torch.empty_like(targets)
    n = images.shape[0]
    result = LoopResult(0.0, 0.0, 0.0)
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        torch.index_select(images, 0, order, out=shuffled_images)
        torch.index_select(targets, 0, order, out=shuffled_labels)
        losses = []
        for first in range(0, n, hyper.batch_size):
            x = shuffled_images[first : first + hyper.batch_size]
            y = shuffled_labels[first : first + hyper.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            torch.autograd.backward(loss)
            optimizer.step()
            losses.append(loss.detach())
        result.train_loss.append(epoch_loss(losses, n, hyper.batch_size))
        result.train_time_s += time.perf_counter() - start
        if test_set is not None:
            result.test_accuracy.append(evaluate(model, *test_set))
            if stop is not None and stop(result.test_accuracy):
                break
    epochs_done = len(result.train_loss)
    result.images_per_second = epochs_done * n / result.train_time_s
    result.wall_time_s = time.perf_counter() - call_start
    return result
