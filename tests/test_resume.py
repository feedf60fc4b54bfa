"""Faults of the C++ API: killed runs resume bit-identically, divergence is reported, files are
written completely or not at all, and awkward but valid inputs are accepted."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from stopping import Stop, stop_at

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist

TRAIN = make_synthetic_mnist(256, seed=2)
TEST = make_synthetic_mnist(64, seed=3)
OPTIONS = {"batch_size": 32, "momentum": 0.9, "seed": 5, "threads": 1}


def run(epochs: int = 3, **kwargs: object) -> lenet_cpp.TrainResult:
    options = {**OPTIONS, "test_data": TEST[0], "test_targets": TEST[1], **kwargs}
    return lenet_cpp.train(TRAIN[0], TRAIN[1], epochs, 0.05, **options)


def assert_same_run(a: lenet_cpp.TrainResult, b: lenet_cpp.TrainResult) -> None:
    assert torch.equal(a.step_losses, b.step_losses)
    assert a.train_loss == b.train_loss
    assert a.train_accuracy == b.train_accuracy
    assert a.test_loss == b.test_loss
    assert a.test_accuracy == b.test_accuracy
    if a.test_predictions is None:
        assert b.test_predictions is None
    else:
        assert torch.equal(a.test_predictions, b.test_predictions)
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, kernels):
    checkpoint = tmp_path / "run.ckpt"
    uninterrupted = run(kernels=kernels)
    with pytest.raises(Stop):  # stopped in epoch 2 (8 steps per epoch)
        run(kernels=kernels, checkpoint=checkpoint, progress=stop_at(11), progress_every=1)
    assert checkpoint.exists()
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 1
    resumed = run(kernels=kernels, checkpoint=checkpoint)
    assert resumed.resumed_from_epoch == 1
    assert_same_run(uninterrupted, resumed)


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    run(epochs=1, checkpoint=checkpoint)
    with pytest.raises(ValueError, match=r"(?s)another run.*rate=0\.05 .*seed=5.*seed=6"):
        run(epochs=1, checkpoint=checkpoint, seed=6)
    other_data = make_synthetic_mnist(256, seed=9)
    with pytest.raises(ValueError, match="belongs to another run"):
        lenet_cpp.train(*other_data, 1, 0.05, **OPTIONS, checkpoint=checkpoint)


def test_corrupt_checkpoint_is_refused(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"not a readable checkpoint.*delete it"):
        run(epochs=1, checkpoint=checkpoint)


KILLED_RUN = textwrap.dedent(
    """
    import sys, lenet_cpp
    from lenet_cpp.synthetic import make_synthetic_mnist
    train, test = make_synthetic_mnist(256, seed=2), make_synthetic_mnist(64, seed=3)
    def progress(p):
        print(p.step, flush=True)
    lenet_cpp.train(*train, 3, 0.05, batch_size=32, momentum=0.9, seed=5, threads=1,
                    test_data=test[0], test_targets=test[1], checkpoint=sys.argv[1],
                    progress=progress, progress_every=1)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_process_resumes_bit_identically(tmp_path, how):
    """A real process killed (kill -9, Ctrl-C) after its first checkpoint; SIGINT's handler is
    reset in the child, so the test also holds when pytest was started with SIGINT ignored."""
    checkpoint = tmp_path / "run.ckpt"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(checkpoint)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert child.stdout is not None
    for line in child.stdout:
        if int(line) >= 12 and checkpoint.exists():  # in epoch 2, after epoch 1's checkpoint
            break
    child.send_signal(how)
    output = child.communicate(timeout=60)[0]
    assert child.returncode != 0
    assert "finished" not in output
    resumed = run(checkpoint=checkpoint)
    assert resumed.resumed_from_epoch in (1, 2)
    assert_same_run(run(), resumed)


def test_divergence_raises_a_floating_point_error():
    with pytest.raises(FloatingPointError) as caught:
        lenet_cpp.train(TRAIN[0], TRAIN[1], 2, 1e4, **OPTIONS)
    error = caught.value
    assert isinstance(error, lenet_cpp.TrainingDiverged)
    assert error.epoch == 1
    assert 1 <= error.step <= 8
    assert error.learning_rate == 1e4
    assert f"step {error.step} (epoch 1)" in str(error)
    assert "learning_rate=10000" in str(error)


def test_divergence_can_be_trained_through():
    result = lenet_cpp.train(TRAIN[0], TRAIN[1], 2, 1e4, **OPTIONS, on_divergence="continue")
    assert result.diverged_at_step >= 1
    assert not torch.isfinite(result.step_losses[result.diverged_at_step - 1])
    assert torch.isfinite(result.step_losses[: result.diverged_at_step - 1]).all()
    assert run(epochs=1).diverged_at_step == 0


def test_save_into_missing_directory_is_an_os_error(tmp_path):
    target = tmp_path / "missing" / "model.pt"
    with pytest.raises(FileNotFoundError) as caught:
        lenet_cpp.LeNet5().save(target)
    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == str(target)
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_is_an_os_error_and_leaves_no_partial_file(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        with pytest.raises(OSError) as caught:
            lenet_cpp.LeNet5().save(mount / "model.pt")  # ~250 kB
        assert caught.value.errno == errno.ENOSPC
        checkpoint = mount / "run.ckpt"
        with pytest.raises(OSError, match="No space left"):
            run(epochs=1, checkpoint=checkpoint)
        assert sorted(p.name for p in mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_float_images_that_require_grad_are_accepted():
    images = lenet_cpp.normalize(TRAIN[0]).requires_grad_()
    result = lenet_cpp.train(images, TRAIN[1], 1, 0.05, **OPTIONS)
    assert_same_run(result, lenet_cpp.train(TRAIN[0], TRAIN[1], 1, 0.05, **OPTIONS))


def test_numpy_arrays_are_accepted():
    result = lenet_cpp.train(
        TRAIN[0].numpy(), TRAIN[1].numpy().astype(np.int32), 1, 0.05, **OPTIONS
    )
    assert_same_run(result, lenet_cpp.train(TRAIN[0], TRAIN[1], 1, 0.05, **OPTIONS))
    model = result.model
    assert torch.equal(model.predict(TEST[0].numpy()), model.predict(TEST[0]))
