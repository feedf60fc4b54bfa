"""lenet_cpp.reference: the torch.nn LeNet-5 and the torch.optim loop the benchmark measures."""

from __future__ import annotations

import pytest
import torch

import lenet_cpp
from lenet_cpp.reference import Hyper, LeNet5, cpp_like_init, evaluate, train_loop
from lenet_cpp.synthetic import make_synthetic_mnist


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels = make_synthetic_mnist(256, seed=2)
    test_images, test_labels = make_synthetic_mnist(128, seed=3)
    return (
        lenet_cpp.normalize(images),
        labels.long(),
        lenet_cpp.normalize(test_images),
        test_labels.long(),
    )


def test_initial_weights_are_the_cpp_trainers() -> None:
    model = LeNet5()
    cpp_like_init(model, seed=9)
    expected = lenet_cpp.LeNet5(seed=9).state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name])


def test_first_epoch_sees_the_cpp_trainers_batches(data) -> None:
    # the draw after the weights is the first epoch's permutation: equal first-epoch losses
    x, y, _, _ = data
    hyper = Hyper(batch_size=32, seed=9)
    python = train_loop(x, y, 1, hyper)
    cpp = lenet_cpp.train(
        x, y, 1, hyper.learning_rate, batch_size=32, momentum=hyper.momentum, seed=9
    )
    assert python.train_loss[0] == pytest.approx(cpp.train_loss[0], abs=1e-5)
    assert python.images_per_second > 0 and python.wall_time_s >= python.train_time_s > 0


def test_loop_learns_and_reports_test_accuracy_every_epoch(data) -> None:
    x, y, tx, ty = data
    result = train_loop(x, y, 3, Hyper(batch_size=32, learning_rate=0.05), test=(tx, ty))
    assert len(result.train_loss) == len(result.test_accuracy) == 3
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.test_accuracy[-1] > 0.5  # 10 balanced classes: chance is 0.1


def test_stop_rule_ends_training_early(data) -> None:
    x, y, tx, ty = data
    seen: list[list[float]] = []

    def stop(accuracies: list[float]) -> bool:
        seen.append(list(accuracies))
        return len(accuracies) == 2

    result = train_loop(x, y, 10, Hyper(batch_size=64), test=(tx, ty), stop=stop)
    assert len(result.train_loss) == 2 and [len(a) for a in seen] == [1, 2]


def test_evaluate_agrees_with_the_cpp_model(data) -> None:
    _, _, tx, ty = data
    cpp = lenet_cpp.LeNet5("tanh", "avg", seed=4)
    model = LeNet5("tanh", "avg")
    model.load_state_dict(cpp.state_dict())
    assert evaluate(model, tx, ty) == pytest.approx(cpp.evaluate(tx, ty)["accuracy"])
    assert model.training  # evaluate() puts the model back into training mode


def test_reference_rejects_unknown_choices() -> None:
    with pytest.raises(ValueError, match="activation"):
        LeNet5("sigmoid")
    with pytest.raises(ValueError, match="pooling"):
        LeNet5(pooling="min")
