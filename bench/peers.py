"""The Python contenders of the benchmark besides ``lenet_cpp.reference.train_loop``.

``dataloader_loop`` is the loop of pytorch/examples' ``mnist/main.py``:
``torchvision.datasets.MNIST`` with ``ToTensor`` + ``Normalize``, a shuffling ``DataLoader``,
default memory format and the default (foreach) SGD. Same model, optimiser and hyper-parameters.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

import lenet_cpp
from lenet_cpp.layout import MNIST_FILES
from lenet_cpp.reference import Hyper, LeNet5, LoopResult, cpp_like_init, epoch_loss, evaluate


def link_mnist_root(data_dir: Path, scratch: Path) -> Path:
    """A torchvision ``MNIST`` root (``MNIST/raw/<files>``) made of links to ``data_dir``."""
    raw = scratch / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
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
                torch.autograd.backward(loss)
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
    augment: bool = False,
) -> LoopResult:
    """One ``lenet_cpp.train`` call, reported like the Python loops (``augment``: with the
    default distortions)."""
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
        augment=augment,
    )
    wall = time.perf_counter() - start
    return LoopResult(
        images_per_second=run.images_per_second,
        train_time_s=run.train_time_s,
        wall_time_s=wall,
        train_loss=list(run.train_loss),
        test_accuracy=list(run.test_accuracy),
    )
