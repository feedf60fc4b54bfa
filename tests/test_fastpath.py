"""The fused CPU kernels against libtorch's autograd path and torch.nn (same maths, same results).

``kernels="libtorch"`` makes the C++ trainer and inference use libtorch's ops instead of the
fused kernels; both paths start from the same weights and see the same batches, so their
per-step losses agree to float rounding (the fused kernels round their own way: they fix every
sum's order so that they give the same bits on every CPU).
"""

from __future__ import annotations

import threading

import pytest
import torch

import lenet_cpp
from lenet_cpp.reference import LeNet5 as ReferenceLeNet5
from lenet_cpp.synthetic import make_synthetic_mnist

COMBOS = [(a, p) for a in ("relu", "tanh") for p in ("max", "avg")]


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_synthetic_mnist(400, seed=21)


def train(data, kernels: str, **kwargs: object) -> lenet_cpp.TrainResult:
    options: dict[str, object] = {"batch_size": 50, "momentum": 0.9, "seed": 3, "threads": 1}
    options["kernels"] = kernels
    options.update(kwargs)
    return lenet_cpp.train(data[0], data[1], options.pop("epochs", 2), 0.05, **options)


@pytest.mark.parametrize(("activation", "pooling"), COMBOS)
def test_fused_training_matches_libtorch(data, activation, pooling):
    kwargs = {"activation": activation, "pooling": pooling, "weight_decay": 1e-3}
    fused = train(data, "fused", **kwargs)
    libtorch = train(data, "libtorch", **kwargs)
    assert fused.step_losses.shape == libtorch.step_losses.shape == (16,)
    torch.testing.assert_close(fused.step_losses, libtorch.step_losses, atol=2e-5, rtol=0)
    for name, tensor in fused.model.state_dict().items():
        torch.testing.assert_close(tensor, libtorch.model.state_dict()[name], atol=1e-5, rtol=0)
    assert fused.train_accuracy == libtorch.train_accuracy


@pytest.mark.parametrize("batch_size", [1, 31, 33, 64, 96, 400])
def test_shard_boundaries_match_libtorch(data, batch_size):
    """Batches smaller than, equal to and between multiples of the 32-image shard."""
    kwargs = {"batch_size": batch_size, "epochs": 1}
    fused = train(data, "fused", **kwargs)
    libtorch = train(data, "libtorch", **kwargs)
    steps = min(fused.step_losses.numel(), 40)  # rounding differences grow over many steps
    torch.testing.assert_close(
        fused.step_losses[:steps], libtorch.step_losses[:steps], atol=5e-5, rtol=0
    )


def test_momentum_free_sgd_matches_libtorch(data):
    fused = train(data, "fused", momentum=0.0)
    libtorch = train(data, "libtorch", momentum=0.0)
    torch.testing.assert_close(fused.step_losses, libtorch.step_losses, atol=2e-5, rtol=0)


@pytest.mark.parametrize("threads", [2, 3])
def test_results_do_not_depend_on_threads(data, threads):
    """Shards are fixed by the batch, not by the threads, and added in shard order."""
    one = train(data, "fused", batch_size=100, threads=1)
    many = train(data, "fused", batch_size=100, threads=threads)
    assert torch.equal(one.step_losses, many.step_losses)
    for name, tensor in one.model.state_dict().items():
        assert torch.equal(tensor, many.model.state_dict()[name])


@pytest.mark.parametrize(("activation", "pooling"), COMBOS)
@pytest.mark.parametrize("count", [1, 32, 45, 1001])
def test_fused_inference_matches_reference(data, activation, pooling, count):
    """Trained weights give large logits: still within 1e-5 of torch.nn, shards of any size."""
    model = train(data, "fused", activation=activation, pooling=pooling).model
    images = make_synthetic_mnist(count, seed=5)[0]
    x = lenet_cpp.normalize(images)
    reference = ReferenceLeNet5(activation, pooling)
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        expected = reference(x)
    logits = model(x)
    scale = max(1.0, expected.abs().max().item())
    assert (logits - expected).abs().max().item() <= 1e-5 * scale
    assert torch.equal(model.predict(images, batch_size=7), expected.argmax(1))


def test_evaluation_paths_agree(data):
    model = train(data, "fused").model
    fused = model.evaluate(*data, batch_size=64)
    libtorch = model.evaluate(*data, batch_size=64, kernels="libtorch")
    assert torch.equal(fused["predictions"], libtorch["predictions"])
    assert fused["loss"] == pytest.approx(libtorch["loss"], rel=1e-5)


def test_tune_allocator_is_available_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert lenet_cpp.tune_allocator() is True
    with pytest.raises(ValueError, match="mmap_threshold"):
        lenet_cpp.tune_allocator(mmap_threshold=-1)


def test_concurrent_runs_with_two_threads_equal_sequential_runs_with_one(data):
    """Per-thread OpenMP settings that other runs change must not leak into the results."""
    test = make_synthetic_mnist(100, seed=8)

    def run(seed: int, threads: int) -> lenet_cpp.TrainResult:
        return lenet_cpp.train(
            data[0], data[1], 2, 0.05, batch_size=64, momentum=0.9, activation="tanh",
            seed=seed, threads=threads, test_data=test[0], test_targets=test[1],
        )  # fmt: skip

    seeds = [0, 1, 2]
    sequential = {seed: run(seed, 1) for seed in seeds}
    concurrent: dict[int, lenet_cpp.TrainResult] = {}
    workers = [
        threading.Thread(target=lambda s=seed: concurrent.__setitem__(s, run(s, 2)))
        for seed in seeds
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for seed in seeds:
        assert torch.equal(sequential[seed].step_losses, concurrent[seed].step_losses)
        assert sequential[seed].test_accuracy == concurrent[seed].test_accuracy


@pytest.mark.parametrize(("activation", "pooling"), COMBOS)
@pytest.mark.parametrize("batch", [32, 45])
def test_fused_gradients_match_autograd(activation, pooling, batch):
    """extension-cpp's gradient check: one batch's gradient of every parameter, fused vs
    libtorch's autograd, within 1e-4 of the parameter's largest gradient entry (sums of up to
    35,280 terms round differently; 45 images leave a partial shard)."""
    images, labels = make_synthetic_mnist(batch, seed=11)
    model = lenet_cpp.LeNet5(activation, pooling, seed=4)
    fused = model.gradients(images, labels, kernels="fused")
    autograd = model.gradients(images, labels, kernels="libtorch")
    assert list(fused) == list(autograd) == list(model.state_dict())
    for name, expected in autograd.items():
        assert fused[name].shape == expected.shape
        scale = expected.abs().max().item()
        assert scale > 0, name
        assert (fused[name] - expected).abs().max().item() <= 1e-4 * scale, name


def test_kernels_option_is_checked():
    images, labels = make_synthetic_mnist(8, seed=1)
    with pytest.raises(ValueError, match="kernels must be 'fused' or 'libtorch', got 'blas'"):
        lenet_cpp.train(images, labels, 1, 0.1, kernels="blas")
    with pytest.raises(ValueError, match="kernels must be"):
        lenet_cpp.LeNet5().predict(images, kernels="mkl")
