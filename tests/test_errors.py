"""Every bad argument becomes a Python ValueError/TypeError naming it; never a crash."""

from __future__ import annotations

import math

import pytest
import torch

import lenet_cpp

N = 16


def good_args() -> dict[str, object]:
    return {
        "data": torch.zeros(N, 28, 28, dtype=torch.uint8),
        "targets": torch.arange(N) % 10,
        "epochs": 1,
        "learning_rate": 0.1,
    }


def call_train(**changes: object) -> None:
    args = good_args()
    args.update(changes)
    lenet_cpp.train(
        args.pop("data"), args.pop("targets"), args.pop("epochs"), args.pop("learning_rate"), **args
    )


BAD = [
    # (changes, exception, text that must appear in the message)
    ({"data": torch.zeros(N, 28, 27, dtype=torch.uint8)}, ValueError, r"data.*\[N, 28, 28\].*27"),
    ({"data": torch.zeros(N, 784, dtype=torch.uint8)}, ValueError, r"data must have shape.*784"),
    ({"data": torch.zeros(N, 3, 28, 28, dtype=torch.uint8)}, ValueError, r"data must have shape"),
    ({"data": torch.zeros(N, 28, 28, dtype=torch.float64)}, TypeError, r"data.*dtype.*Double"),
    (
        {
            "data": torch.zeros(0, 28, 28, dtype=torch.uint8),
            "targets": torch.zeros(0, dtype=torch.long),
        },
        ValueError,
        r"data is empty",
    ),
    ({"data": torch.full((N, 28, 28), math.nan)}, ValueError, r"data contains NaN or infinite"),
    ({"data": torch.full((N, 28, 28), math.inf)}, ValueError, r"data contains NaN or infinite"),
    (
        {"data": [[0] * 28] * 28},
        TypeError,
        r"data must be a torch.Tensor or a numpy.ndarray, got li",
    ),
    ({"targets": torch.arange(N - 1) % 10}, ValueError, r"targets must have shape \[16\].*15"),
    ({"targets": torch.full((N,), 10)}, ValueError, r"targets.*0\.\.9.*10"),
    ({"targets": torch.full((N,), -1)}, ValueError, r"targets.*0\.\.9.*-1"),
    ({"targets": torch.zeros(N)}, TypeError, r"targets must have an integer dtype.*Float"),
    ({"epochs": -1}, ValueError, r"epochs must be >= 0, got -1"),
    ({"learning_rate": 0.0}, ValueError, r"learning_rate must be a finite number > 0, got 0"),
    ({"learning_rate": -0.1}, ValueError, r"learning_rate must be a finite number > 0, got -0.1"),
    (
        {"learning_rate": math.nan},
        ValueError,
        r"learning_rate must be a finite number > 0, got na",
    ),
    (
        {"learning_rate": math.inf},
        ValueError,
        r"learning_rate must be a finite number > 0, got in",
    ),
    ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
    ({"momentum": -0.5}, ValueError, r"momentum must be a finite number >= 0, got -0.5"),
    ({"weight_decay": math.nan}, ValueError, r"weight_decay must be a finite number"),
    ({"activation": "gelu"}, ValueError, r"activation must be 'relu' or 'tanh', got 'gelu'"),
    ({"pooling": "min"}, ValueError, r"pooling must be 'max' or 'avg', got 'min'"),
    ({"device": "tpu"}, ValueError, r"device must be 'cpu' or 'cuda'.*'tpu'"),
    ({"device": "mps"}, ValueError, r"device must be 'cpu' or 'cuda'.*'mps'"),
    ({"threads": -2}, ValueError, r"threads must be in 0\.\.\d+ .*got -2"),
    ({"threads": 100_000}, ValueError, r"threads must be in 0\.\.\d+ \(4 per CPU.*got 100000"),
    ({"seed": -1}, ValueError, r"seed must be an integer in 0\.\.2\*\*64-1, got -1"),
    (
        {"seed": 2**64},
        ValueError,
        r"seed must be an integer in 0\.\.2\*\*64-1, got 1844674407370955",
    ),
    ({"seed": 1.5}, ValueError, r"seed must be an integer.*got 1\.5"),
    ({"kernels": "blas"}, ValueError, r"kernels must be 'fused' or 'libtorch', got 'blas'"),
    ({"on_divergence": "ignore"}, ValueError, r"on_divergence must be 'raise' or 'continue'"),
    ({"checkpoint": 3}, TypeError, r"checkpoint must be a str or os.PathLike, got int"),
    (
        {"data": torch.zeros(N, 28, 28, dtype=torch.uint8, device="meta")},
        ValueError,
        r"data must be on the CPU .*got a tensor on meta",
    ),
    ({"progress": 42}, TypeError, r"progress must be a callable or None, got int"),
    ({"progress_every": 0}, ValueError, r"progress_every must be >= 1, got 0"),
    (
        {"test_data": torch.zeros(4, 28, 28, dtype=torch.uint8)},
        ValueError,
        r"test_data and test_targets must be given together",
    ),
    (
        {
            "test_data": torch.zeros(4, 28, 28, dtype=torch.uint8),
            "test_targets": torch.zeros(5, dtype=torch.long),
        },
        ValueError,
        r"test_targets must have shape \[4\]",
    ),
]


@pytest.mark.parametrize(("changes", "error", "message"), BAD)
def test_bad_train_argument(changes, error, message):
    with pytest.raises(error, match=message):
        call_train(**changes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match=r"device='cuda' was asked for, but no CUDA GPU"):
        call_train(device="cuda")


def test_model_methods_check_their_input():
    model = lenet_cpp.LeNet5()
    with pytest.raises(ValueError, match=r"images must have shape"):
        model.predict(torch.zeros(2, 28, 29, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"batch_size must be >= 1"):
        model.predict(torch.zeros(2, 28, 28, dtype=torch.uint8), batch_size=0)
    with pytest.raises(ValueError, match=r"targets must have shape \[2\]"):
        model.evaluate(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"activation must be"):
        lenet_cpp.LeNet5(activation="sigmoid")
    with pytest.raises(TypeError, match=r"state_dict\['conv1.weight'\] must be a torch.Tensor"):
        model.load_state_dict({**model.state_dict(), "conv1.weight": [1, 2]})
