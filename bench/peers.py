"""The Python contenders of the benchmark: two pure-PyTorch training loops of the same LeNet-5.

``strong_loop`` is the fastest loop we know how to write in Python for this model: in-memory
normalised tensors, one shuffle per epoch into a persistent buffer and contiguous slices of it,
channels-last activations and weights, ``torch.optim.SGD(fused=True)``, the loss kept on the tensor
side (one ``.item()`` per epoch). It draws the initial weights and the per-epoch permutations
exactly as the C++ trainer does (same generator, same order), so both start from the same point
and see the same batches. ``torch.compile`` is not used.

``dataloader_loop`` is the loop of pytorch/examples' ``mnist/main.py``:
``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize``, a shuffling ``DataLoader``,
default memory format and the default (foreach) SGD. Same model, optimiser and hyper-parameters.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

import lenet_cpp
from lenet_cpp.reference import LeNet5

MNIST_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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
    uniformly in +-1/sqrt(fan_in), and then draws one ``randperm`` per epoch from it.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.conv1, model.conv2, model.fc1, model.fc2, model.fc3):
            bound = 1.0 / math.sqrt(layer.weight[0].numel())
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
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


def strong_loop(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    hyper: Hyper,
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    stop: StopRule | None = None,
    channels_last: bool = True,
) -> LoopResult:
    """Train a fresh ``reference.LeNet5`` on normalised float ``images`` [N,1,28,28].

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
    test_images = test[0].contiguous(memory_format=layout) if test else None
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
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        result.train_loss.append(epoch_loss(losses, n, hyper.batch_size))
        result.train_time_s += time.perf_counter() - start
        if test is not None:
            result.test_accuracy.append(evaluate(model, test_images, test[1].long()))
            if stop is not None and stop(result.test_accuracy):
                break
    epochs_done = len(result.train_loss)
    result.images_per_second = epochs_done * n / result.train_time_s
    result.wall_time_s = time.perf_counter() - call_start
    return result


def link_mnist_root(data_dir: Path, scratch: Path) -> Path:
    """A torchvision ``MNIST`` root (``MNIST/raw/<files>``) made of links to ``data_dir``."""
    raw = scratch / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_RAW_FILES:
        link = raw / name
        if not link.exists():
            os.symlink((data_dir / name).resolve(), link)
    return scratch


def dataloader_loop(
    data_dir: Path,
    epochs: int,
    hyper: Hyper,
    *,
    limit: int | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LoopResult:
    """pytorch/examples' MNIST loop: torchvision dataset + transforms + DataLoader.

    ``limit`` keeps the first ``limit`` training images (for quick runs).
    """
    from torchvision import datasets, transforms

    call_start = time.perf_counter()
    transform = transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize((lenet_cpp.MNIST_MEAN,), (lenet_cpp.MNIST_STD,)),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as scratch:
        root = link_mnist_root(data_dir, Path(scratch))
        dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
        if limit is not None and limit < len(dataset):
            dataset = torch.utils.data.Subset(dataset, range(limit))
        generator = torch.Generator().manual_seed(hyper.seed)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=hyper.batch_size, shuffle=True, generator=generator
        )
        model = LeNet5(hyper.activation, hyper.pooling)
        cpp_like_init(model, hyper.seed)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=hyper.learning_rate, momentum=hyper.momentum
        )
        result = LoopResult(0.0, 0.0, 0.0)
        for _ in range(epochs):
            start = time.perf_counter()
            losses = []
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            result.train_loss.append(epoch_loss(losses, len(dataset), hyper.batch_size))
            result.train_time_s += time.perf_counter() - start
            if test is not None:
                result.test_accuracy.append(evaluate(model, test[0], test[1].long()))
    result.images_per_second = epochs * len(dataset) / result.train_time_s
    result.wall_time_s = time.perf_counter() - call_start
    return result


def cpp_run(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    hyper: Hyper,
    *,
    threads: int,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LoopResult:
    """One ``lenet_cpp.train`` call, reported like the Python loops."""
    start = time.perf_counter()
    run = lenet_cpp.train(
        images,
        labels,
        epochs,
        hyper.learning_rate,
        batch_size=hyper.batch_size,
        momentum=hyper.momentum,
        activation=hyper.activation,
        pooling=hyper.pooling,
        seed=hyper.seed,
        threads=threads,
        test_data=test[0] if test else None,
        test_targets=test[1] if test else None,
    )
    wall = time.perf_counter() - start
    return LoopResult(
        images_per_second=run.images_per_second,
        train_time_s=run.train_time_s,
        wall_time_s=wall,
        train_loss=list(run.train_loss),
        test_accuracy=list(run.test_accuracy),
    )
