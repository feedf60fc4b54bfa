"""The C++ model and trainer: correctness against torch.nn, determinism, GIL, model API."""

from __future__ import annotations

import _thread
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from ticking import ticker_during

import lenet_cpp
from lenet_cpp.reference import LeNet5 as ReferenceLeNet5
from lenet_cpp.synthetic import make_synthetic_mnist

COMBOS = [(a, p) for a in ("relu", "tanh") for p in ("max", "avg")]


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_synthetic_mnist(768, seed=3)


@pytest.fixture(scope="module")
def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_synthetic_mnist(256, seed=4)


def quick_train(data: tuple[torch.Tensor, torch.Tensor], **kwargs: object) -> lenet_cpp.TrainResult:
    images, labels = data
    options: dict[object, object] = {"batch_size": 32, "momentum": 0.9, "seed": 7, "threads": 1}
    options.update(kwargs)
    return lenet_cpp.train(
        images, labels, options.pop("epochs", 1), options.pop("lr", 0.02), **options
    )


@pytest.mark.parametrize(("activation", "pooling"), COMBOS)
def test_forward_matches_reference(data, activation, pooling):
    model = lenet_cpp.LeNet5(activation, pooling, seed=11)
    reference = ReferenceLeNet5(activation, pooling)
    reference.load_state_dict(model.state_dict())
    x = lenet_cpp.normalize(data[0][:200])
    with torch.no_grad():
        expected = reference(x)
    assert (model(x) - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize(("activation", "pooling"), COMBOS)
def test_trained_weights_match_reference(data, activation, pooling):
    result = quick_train(data, activation=activation, pooling=pooling)
    reference = ReferenceLeNet5(activation, pooling)
    reference.load_state_dict(result.model.state_dict())
    x = lenet_cpp.normalize(data[0][:200])
    with torch.no_grad():
        assert (result.model(x) - reference(x)).abs().max().item() <= 1e-5
        assert torch.equal(result.model.predict(x), reference(x).argmax(1))


def test_state_dict_names_match_reference():
    assert list(lenet_cpp.LeNet5().state_dict()) == list(ReferenceLeNet5().state_dict())


def test_reference_weights_load_into_cpp(data):
    torch.manual_seed(5)
    reference = ReferenceLeNet5("tanh", "avg")
    model = lenet_cpp.LeNet5("tanh", "avg")
    model.load_state_dict(reference.state_dict())
    x = lenet_cpp.normalize(data[0][:64])
    with torch.no_grad():
        assert torch.equal(model.predict(x), reference(x).argmax(1))


def test_training_lowers_the_loss_and_learns(data, test_data):
    result = quick_train(data, epochs=3, test_data=test_data[0], test_targets=test_data[1])
    assert len(result.train_loss) == 3
    assert result.train_loss[-1] < 0.5 * result.train_loss[0]
    assert result.step_losses[-10:].mean() < result.step_losses[:10].mean()
    assert result.test_accuracy[-1] > 0.9
    assert result.test_predictions.shape == (256,)
    accuracy = (result.test_predictions == test_data[1].long()).double().mean().item()
    assert accuracy == pytest.approx(result.test_accuracy[-1])


def test_result_shapes_and_timings(data):
    result = quick_train(data, epochs=2, batch_size=100)
    steps_per_epoch = 8  # ceil(768 / 100): the last batch is partial, not dropped
    assert result.step_losses.shape == (2 * steps_per_epoch,)
    assert result.step_losses.dtype == torch.float32
    assert result.test_loss == [] and result.test_accuracy == []
    assert result.test_predictions is None
    assert 0 < result.train_time_s <= result.wall_time_s
    assert result.images_per_second == pytest.approx(2 * 768 / result.train_time_s)
    assert all(0.0 <= a <= 1.0 for a in result.train_accuracy)


def test_zero_epochs_returns_the_initial_model(data, test_data):
    result = quick_train(data, epochs=0, test_data=test_data[0], test_targets=test_data[1])
    assert result.step_losses.numel() == 0
    initial = lenet_cpp.LeNet5(seed=7).state_dict()
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, initial[name])
    assert result.test_predictions.shape == (256,)


def test_same_seed_gives_identical_losses(data):
    first = quick_train(data, epochs=2)
    second = quick_train(data, epochs=2)
    assert torch.equal(first.step_losses, second.step_losses)
    other = quick_train(data, epochs=2, seed=8)
    assert not torch.equal(first.step_losses, other.step_losses)


def test_seed_does_not_touch_global_rng(data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    quick_train(data)
    assert torch.equal(torch.rand(3), expected)


def test_input_layouts_are_equivalent(data):
    images, labels = data
    plain = quick_train((images, labels))
    with_channel = quick_train((images.unsqueeze(1), labels.to(torch.int32)))
    normalised = quick_train((lenet_cpp.normalize(images), labels.long()))
    assert torch.equal(plain.step_losses, with_channel.step_losses)
    assert torch.equal(plain.step_losses, normalised.step_losses)


def test_normalize_uses_mnist_statistics():
    pixels = torch.zeros(1, 28, 28, dtype=torch.uint8)
    pixels[0, 0, 0] = 255
    x = lenet_cpp.normalize(pixels)
    assert x.shape == (1, 1, 28, 28)
    low = (0 - lenet_cpp.MNIST_MEAN) / lenet_cpp.MNIST_STD
    high = (1 - lenet_cpp.MNIST_MEAN) / lenet_cpp.MNIST_STD
    assert x.min().item() == pytest.approx(low) and x.max().item() == pytest.approx(high)


def test_concurrent_runs_equal_sequential_runs(data):
    seeds = [1, 2, 3]
    sequential = {seed: quick_train(data, epochs=2, seed=seed).step_losses for seed in seeds}
    concurrent: dict[int, torch.Tensor] = {}

    def run(seed: int) -> None:
        concurrent[seed] = quick_train(data, epochs=2, seed=seed).step_losses

    threads = [threading.Thread(target=run, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in seeds:
        assert torch.equal(sequential[seed], concurrent[seed]), f"seed {seed} differs"


def test_python_thread_runs_while_training(data):
    """With the GIL released, a ticking Python thread keeps going during train()."""
    duration, ticks, longest_pause = ticker_during(
        lambda: quick_train(data, epochs=40, progress_every=1000)
    )
    assert duration > 0.2, "training too short to observe the ticker"
    assert ticks >= 20
    # Holding the GIL would stall the ticker for the whole call.
    assert longest_pause < 0.5 * duration


def test_progress_callback_sees_every_interval(data):
    seen: list[lenet_cpp.Progress] = []
    quick_train(data, epochs=2, batch_size=64, progress=seen.append, progress_every=5)
    total = 2 * 12
    assert [p.step for p in seen] == [*range(5, total + 1, 5), total]
    assert all(p.total_steps == total and p.epochs == 2 for p in seen)
    assert seen[0].epoch == 1 and seen[-1].epoch == 2
    assert all(p.loss > 0 for p in seen)


def test_callback_exception_propagates(data):
    class Stop(Exception):
        pass

    calls = []

    def progress(p: lenet_cpp.Progress) -> None:
        calls.append(p.step)
        if p.step >= 4:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        quick_train(data, epochs=5, progress=progress, progress_every=2)
    assert calls == [2, 4]


def test_ctrl_c_stops_training_promptly(data):
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            quick_train(data, epochs=200, progress_every=5)
    finally:
        timer.cancel()
    assert time.perf_counter() - started < 5.0


def test_threads_setting_is_restored(data):
    before = torch.get_num_threads()
    quick_train(data, threads=1)
    assert torch.get_num_threads() == before


def test_threads_apply_per_run_while_runs_overlap(data):
    """The callback runs on the training thread, so it sees that run's intra-op setting."""
    main_before = torch.get_num_threads()
    seen: dict[int, set[int]] = {1: set(), 2: set()}
    barrier = threading.Barrier(2)

    def run(threads: int) -> None:
        def progress(p: lenet_cpp.Progress) -> None:
            if p.step == 2:
                barrier.wait(timeout=30)  # both runs are inside train() here
            seen[threads].add(torch.get_num_threads())

        quick_train(data, threads=threads, progress=progress, progress_every=2)

    workers = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert seen == {1: {1}, 2: {2}}
    assert torch.get_num_threads() == main_before


def test_evaluate_and_predict_agree(data, test_data):
    model = quick_train(data, epochs=2).model
    evaluation = model.evaluate(*test_data, batch_size=100)
    predictions = model.predict(test_data[0], batch_size=37)
    assert torch.equal(evaluation["predictions"], predictions)
    confusion = evaluation["confusion"]
    assert confusion.shape == (10, 10) and confusion.sum().item() == 256
    labels = test_data[1].long()
    assert torch.equal(confusion.sum(1), torch.bincount(labels, minlength=10))
    assert evaluation["accuracy"] == pytest.approx(confusion.diag().sum().item() / 256)
    logits = model(test_data[0])
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert evaluation["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_save_load_round_trip(tmp_path: Path, data):
    model = quick_train(data, activation="tanh", pooling="avg").model
    path = tmp_path / "model.pt"
    model.save(str(path))
    assert not (tmp_path / "model.pt.partial").exists()
    loaded = lenet_cpp.LeNet5.load(str(path))
    assert (loaded.activation, loaded.pooling) == ("tanh", "avg")
    assert torch.equal(loaded.predict(data[0]), model.predict(data[0]))
    payload = torch.load(path, weights_only=True)  # a standard torch.save file
    reference = ReferenceLeNet5(payload["activation"], payload["pooling"])
    reference.load_state_dict(payload["state_dict"])
    with torch.no_grad():
        assert torch.equal(
            reference(lenet_cpp.normalize(data[0])).argmax(1), model.predict(data[0])
        )


def test_load_rejects_foreign_files(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        lenet_cpp.LeNet5.load(str(tmp_path / "missing.pt"))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a LeNet5 file"):
        lenet_cpp.LeNet5.load(str(other))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a LeNet5 file"):
        lenet_cpp.LeNet5.load(str(garbage))


def test_load_state_dict_rejects_mismatches():
    model = lenet_cpp.LeNet5()
    state = model.state_dict()
    with pytest.raises(ValueError, match=r"missing 'fc3\.bias'"):
        model.load_state_dict({k: v for k, v in state.items() if k != "fc3.bias"})
    with pytest.raises(ValueError, match="unexpected 'extra'"):
        model.load_state_dict({**state, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"fc3.bias.*shape"):
        model.load_state_dict({**state, "fc3.bias": torch.zeros(11)})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu_closely(data):
    cpu = quick_train(data, epochs=1)
    gpu = quick_train(data, epochs=1, device="cuda")
    assert gpu.model.device.startswith("cuda")
    assert torch.allclose(cpu.step_losses, gpu.step_losses, atol=1e-3)


def resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux /proc")
def test_repeated_training_does_not_grow_memory(data, test_data):
    def run() -> None:
        quick_train(data, test_data=test_data[0], test_targets=test_data[1])

    for _ in range(3):  # warm up allocator caches
        run()
    before = resident_mib()
    for _ in range(20):
        run()
    growth = resident_mib() - before
    # A leak of the training data alone (768 x 784 floats) per call would add ~45 MiB.
    assert growth < 20.0, f"resident memory grew by {growth:.1f} MiB over 20 calls"
