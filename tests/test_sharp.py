"""Tests aimed at specific plausible bugs (issue 16), each checked against an independent reference.

Every test here was written to fail on a named mutation of the code under test (given in its
docstring): a held GIL, ignored weight decay, a mis-weighted partial batch, one colour for all
points, a reused shuffle order. (Seeds that run one after another: tests/test_seeds.py.)
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ticking import ticker_during
from torch.nn import functional as F

import lenet_cpp
from lenet_cpp.plotting import predictions_figure
from lenet_cpp.reference import LeNet5 as ReferenceLeNet5
from lenet_cpp.reference import cpp_like_init
from lenet_cpp.synthetic import make_synthetic_mnist

KERNELS = ["fused", "libtorch"]
# Small enough that w - LR_ZERO * grad == w in float32 for every weight: training leaves the
# model as it was initialised, so every step's loss is a function of the batch alone.
LR_ZERO = 1e-30


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_synthetic_mnist(200, seed=31)


def reference_model(activation: str, pooling: str, seed: int) -> ReferenceLeNet5:
    """torch.nn LeNet-5 holding the weights that ``train(..., seed=seed)`` starts from."""
    reference = ReferenceLeNet5(activation, pooling)
    reference.load_state_dict(lenet_cpp.LeNet5(activation, pooling, seed=seed).state_dict())
    return reference


def per_sample_losses(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor):
    with torch.no_grad():
        logits = model(lenet_cpp.normalize(images))
    return F.cross_entropy(logits, labels.long(), reduction="none").double(), logits.argmax(1)


def shuffle_orders(n: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """The documented draw order of ``train``: one CPU generator seeded with ``seed`` initialises
    the model (``reference.cpp_like_init``), then draws one ``randperm(n)`` per epoch."""
    model = ReferenceLeNet5()
    generator = cpp_like_init(model, seed)
    initial = lenet_cpp.LeNet5(seed=seed).state_dict()
    assert all(torch.equal(t, initial[k]) for k, t in model.state_dict().items()), "init changed"
    return [torch.randperm(n, generator=generator) for _ in range(epochs)]


def batch_means(losses: torch.Tensor, order: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.stack([losses[idx].mean() for idx in order.split(batch_size)])


# ---------------------------------------------------------------- GIL


@pytest.fixture(scope="module")
def large_input() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = make_synthetic_mnist(1000, seed=32)
    return images.repeat(30, 1, 1), labels.repeat(30)  # 30 000 images: a few tenths of a second


@pytest.mark.parametrize("method", ["predict", "evaluate"])
def test_python_thread_runs_during_inference(large_input, method):
    """Mutation: drop ``py::gil_scoped_release`` around lenet::predict / lenet::evaluate in
    cpp/bindings.cpp. The ticker then stalls for the whole C++ loop (its longest pause is the
    call's duration) instead of ticking every few milliseconds."""
    model = lenet_cpp.LeNet5(seed=1)
    images, labels = large_input
    run = getattr(model, method)
    call = (lambda: run(images)) if method == "predict" else (lambda: run(images, labels))
    duration, ticks, longest_pause = ticker_during(call)
    assert duration > 0.1, "input too small to observe the ticker"
    assert ticks >= 20, f"{ticks} ticks in {duration:.3f} s"
    assert longest_pause < 0.5 * duration, f"ticker paused {longest_pause:.3f} of {duration:.3f} s"


def test_ticker_detects_a_call_that_holds_the_gil():
    """The detector itself: a C call that keeps the GIL (builtin sum) stalls the ticker."""
    duration, _, longest_pause = ticker_during(lambda: sum(range(3_000_000)))
    assert longest_pause >= 0.5 * duration


# ---------------------------------------------------------------- SGD


def torch_sgd(
    reference: ReferenceLeNet5, images, labels, steps: int, lr: float, momentum: float, wd: float
) -> list[float]:
    """Full-batch steps of torch.optim.SGD (batch = whole set, so the shuffle does not matter)."""
    optimizer = torch.optim.SGD(reference.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    x, y = lenet_cpp.normalize(images), labels.long()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(reference(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize(("activation", "pooling"), [("relu", "max"), ("tanh", "avg")])
def test_sgd_with_weight_decay_matches_torch_optim(data, kernels, momentum, activation, pooling):
    """Mutations: weight decay ignored (with or without momentum), applied with the wrong sign,
    applied after the momentum buffer (decoupled), momentum without weight decay in the buffer.
    After 12 steps, ignoring or flipping weight decay moves some weight by >= 2e-3, decoupling it
    by >= 8e-6 (without momentum); both paths agree with torch to <= 2e-7 (tolerance 2e-6).
    (lr 0.05: at 0.1 the relu/max run with momentum is chaotic enough to amplify rounding.)"""
    images, labels = data
    n, steps, lr, wd, seed = images.shape[0], 12, 0.05, 0.02, 5
    result = lenet_cpp.train(
        images, labels, steps, lr, batch_size=n, momentum=momentum, weight_decay=wd,
        activation=activation, pooling=pooling, seed=seed, threads=1, kernels=kernels,
    )  # fmt: skip
    reference = reference_model(activation, pooling, seed)
    expected_losses = torch_sgd(reference, images, labels, steps, lr, momentum, wd)
    torch.testing.assert_close(result.step_losses, torch.tensor(expected_losses), atol=1e-5, rtol=0)
    expected = reference.state_dict()
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], atol=2e-6, rtol=0, msg=name)


# ---------------------------------------------------------------- epoch statistics


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("batch_size", [32, 64, 199])
def test_epoch_loss_is_the_mean_over_samples_with_a_partial_last_batch(data, kernels, batch_size):
    """With a learning rate too small to move any weight, an epoch's train_loss is the mean of
    the per-sample losses of the initial model, whatever the batches (200 samples: the last
    batch has 8, 8 or 1 of them). Mutations: the partial batch weighted as a full one, the epoch
    loss taken as the mean of the step losses, dividing by steps * batch_size."""
    images, labels = data
    n, seed = images.shape[0], 9
    result = lenet_cpp.train(
        images, labels, 2, LR_ZERO, batch_size=batch_size, seed=seed, threads=1, kernels=kernels
    )
    initial = lenet_cpp.LeNet5(seed=seed).state_dict()
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, initial[name]), f"{name} moved: the closed form does not apply"

    losses, predictions = per_sample_losses(reference_model("relu", "max", seed), images, labels)
    expected_loss = losses.mean().item()
    expected_accuracy = (predictions == labels.long()).double().mean().item()
    assert result.train_loss == pytest.approx([expected_loss] * 2, rel=1e-5)
    assert result.train_accuracy == pytest.approx([expected_accuracy] * 2, abs=1e-12)

    # The data tell the wrong weightings apart from the right one by far more than 1e-5.
    steps = result.step_losses.double()
    full = steps.numel() * [batch_size]
    assert steps.numel() == 2 * -(-n // batch_size)
    per_epoch = steps.view(2, -1)
    as_full = (per_epoch * torch.tensor(full[: per_epoch.shape[1]])).sum(1) / n
    assert all(abs(v - expected_loss) > 1e-3 * expected_loss for v in as_full.tolist())
    assert all(abs(v - expected_loss) > 1e-4 * expected_loss for v in per_epoch.mean(1).tolist())


# ---------------------------------------------------------------- shuffling


def frozen_run(data, epochs: int, batch_size: int, seed: int, kernels: str):
    """A run whose weights never change (LR_ZERO): its step losses show only the batches."""
    images, labels = data
    return lenet_cpp.train(
        images, labels, epochs, LR_ZERO, batch_size=batch_size, seed=seed, threads=1,
        kernels=kernels,
    )  # fmt: skip


@pytest.mark.parametrize("kernels", KERNELS)
def test_every_epoch_draws_a_new_order(data, kernels):
    """With the model frozen (LR_ZERO), step losses depend only on which samples form each batch:
    a reused order gives bit-identical epochs, no shuffle gives the data order's batch means.
    Mutations: randperm drawn once before the epoch loop, the generator reseeded every epoch,
    no shuffle at all."""
    images, labels = data
    n, batch_size, epochs, seed = images.shape[0], 20, 3, 4
    result = frozen_run(data, epochs, batch_size, seed, kernels)
    per_epoch = result.step_losses.view(epochs, -1)
    for first, second in itertools.combinations(range(epochs), 2):
        assert not torch.equal(per_epoch[first], per_epoch[second]), (first, second)
    losses, _ = per_sample_losses(reference_model("relu", "max", seed), images, labels)
    in_data_order = batch_means(losses, torch.arange(n), batch_size).float()
    assert not torch.allclose(per_epoch[0], in_data_order, atol=1e-4)


@pytest.mark.parametrize("kernels", KERNELS)
def test_epoch_orders_match_the_reference_generator(data, kernels):
    """Each epoch's batches are exactly ``randperm(n)`` drawn after the initialisation from the
    run's generator (see ``shuffle_orders``): epoch e's step losses are the per-sample losses
    averaged over those batches, and epoch 1's order does not explain epoch 2's losses."""
    images, labels = data
    n, batch_size, epochs, seed = images.shape[0], 32, 3, 12
    result = frozen_run(data, epochs, batch_size, seed, kernels)
    losses, _ = per_sample_losses(reference_model("relu", "max", seed), images, labels)
    orders = shuffle_orders(n, epochs, seed)
    per_epoch = result.step_losses.double().split(-(-n // batch_size))
    for epoch, order in enumerate(orders):
        expected = batch_means(losses, order, batch_size)
        torch.testing.assert_close(per_epoch[epoch], expected, atol=1e-5, rtol=0)
    reused = batch_means(losses, orders[0], batch_size)
    assert not torch.allclose(per_epoch[1], reused, atol=1e-4)


# ---------------------------------------------------------------- figures


def point_colours(fig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(offsets [k, 2], RGBA face colours [k, 4]) of every scatter collection in the figure."""
    out = []
    for collection in fig.axes[0].collections:
        offsets = np.asarray(collection.get_offsets())
        if offsets.size == 0:
            continue
        colours = np.asarray(collection.get_facecolors())
        out.append((offsets, np.broadcast_to(colours, (offsets.shape[0], 4))))
    return out


def test_misclassified_points_have_their_own_colour():
    """Mutations: misclassified points drawn in the correct points' colour, the two masks
    swapped (colours follow the wrong points), one scatter for all points."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 400)
    predictions = np.where(rng.random(400) < 0.8, labels, (labels + 3) % 10)
    fig = predictions_figure(labels, predictions, title="t", jitter_seed=2)
    points = point_colours(fig)
    offsets = np.concatenate([o for o, _ in points])
    colours = np.concatenate([c for _, c in points])
    assert offsets.shape[0] == labels.size
    wrong = np.round(offsets[:, 0]) != np.round(offsets[:, 1])  # jitter stays in its cell
    assert int(wrong.sum()) == int((labels != predictions).sum())
    correct_rgb = {tuple(c) for c in colours[~wrong, :3].round(3)}
    wrong_rgb = {tuple(c) for c in colours[wrong, :3].round(3)}
    assert len(correct_rgb) == 1 and len(wrong_rgb) == 1, (correct_rgb, wrong_rgb)
    assert correct_rgb.isdisjoint(wrong_rgb)
    ((red, green, blue),) = wrong_rgb
    assert red > max(green, blue) + 0.3, "misclassified points are drawn in red"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("misclassified") for t in legend)
