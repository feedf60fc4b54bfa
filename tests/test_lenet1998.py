"""architecture="lenet5-1998": the network of LeCun, Bottou, Bengio and Haffner (1998).

The paper's facts are typed in here again (layer sizes, per-layer parameter counts, the C3
connection table, the squashing function, the RBF loss) and checked against both C++ paths:
a torch.nn.functional reference built from them computes the scores and, in float64, the
gradients that libtorch's autograd path and the fused kernels must reproduce.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist

ARCH = "lenet5-1998"
OUTPUTS = ("softmax", "rbf")
#: The paper's trainable parameters per layer (its Section II.B); the softmax output layer
#: (84 x 10 weights and 10 biases) replaces the parameter-free RBF units.
PAPER_COUNTS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
#: The S2 maps each C3 map reads (the paper's Table I).
C3_TABLE = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5),
]  # fmt: skip
A, S, J = 1.7159, 2.0 / 3.0, 1.0
SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,), "s2.coefficient": (6,), "s2.bias": (6,),
    "c3.weight": (16, 6, 5, 5), "c3.bias": (16,), "s4.coefficient": (16,), "s4.bias": (16,),
    "c5.weight": (120, 16, 5, 5), "c5.bias": (120,), "f6.weight": (84, 120), "f6.bias": (84,),
}  # fmt: skip


def c3_mask() -> torch.Tensor:
    mask = torch.zeros(16, 6, 1, 1)
    for m, maps in enumerate(C3_TABLE):
        mask[m, list(maps)] = 1.0
    return mask.expand(16, 6, 5, 5)


def squash(a: torch.Tensor) -> torch.Tensor:
    return A * torch.tanh(S * a)


def subsample(h: torch.Tensor, p: dict[str, torch.Tensor], layer: str) -> torch.Tensor:
    sums = F.avg_pool2d(h, 2) * 4
    return squash(
        sums * p[f"{layer}.coefficient"].view(1, -1, 1, 1) + p[f"{layer}.bias"].view(1, -1, 1, 1)
    )


def reference_scores(
    p: dict[str, torch.Tensor], codes: torch.Tensor | None, x: torch.Tensor
) -> torch.Tensor:
    h = squash(F.conv2d(F.pad(x, (2, 2, 2, 2)), p["c1.weight"], p["c1.bias"]))  # 32x32 input
    h = subsample(h, p, "s2")
    h = squash(F.conv2d(h, p["c3.weight"] * c3_mask().to(h.dtype), p["c3.bias"]))
    h = subsample(h, p, "s4")
    h = squash(F.conv2d(h, p["c5.weight"], p["c5.bias"])).flatten(1)
    h = squash(F.linear(h, p["f6.weight"], p["f6.bias"]))
    if codes is None:
        return F.linear(h, p["output.weight"], p["output.bias"])
    return -((h[:, None, :] - codes[None]) ** 2).sum(2)  # minus the Euclidean RBF outputs


def reference_loss(scores: torch.Tensor, labels: torch.Tensor, rbf: bool) -> torch.Tensor:
    """Cross-entropy; for rbf the paper's E = y_D + log(exp(-j) + sum_i exp(-y_i))."""
    if not rbf:
        return F.cross_entropy(scores, labels)
    y = -scores
    competitive = torch.logsumexp(torch.cat([torch.full_like(y[:, :1], -J), -y], 1), 1)
    return (y.gather(1, labels[:, None])[:, 0] + competitive).mean()


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_synthetic_mnist(200, seed=21)


def model(output: str = "softmax", seed: int = 4) -> lenet_cpp.LeNet5:
    return lenet_cpp.LeNet5(seed=seed, architecture=ARCH, output=output)


def train(data, kernels: str, **kwargs: object) -> lenet_cpp.TrainResult:
    options: dict[str, object] = {
        "batch_size": 50, "momentum": 0.9, "weight_decay": 1e-3, "seed": 3, "threads": 1,
        "architecture": ARCH, "kernels": kernels,
    }  # fmt: skip
    options.update(kwargs)
    lr = 0.002 if options.get("output") == "rbf" else 0.05
    return lenet_cpp.train(data[0], data[1], options.pop("epochs", 2), lr, **options)


# ---------------------------------------------------------------- the network


@pytest.mark.parametrize("output", OUTPUTS)
def test_parameter_counts_are_the_papers(output):
    counts = model(output).parameter_counts
    assert list(counts) == [*PAPER_COUNTS, "output"]
    assert {k: counts[k] for k in PAPER_COUNTS} == PAPER_COUNTS
    assert counts["output"] == (850 if output == "softmax" else 0)


def test_todays_network_keeps_its_counts():
    counts = lenet_cpp.LeNet5().parameter_counts
    assert list(counts) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert sum(counts.values()) == 61706


@pytest.mark.parametrize("output", OUTPUTS)
def test_parameters_shapes_and_scores(output):
    m = model(output)
    expected = dict(SHAPES)
    if output == "softmax":
        expected |= {"output.weight": (10, 84), "output.bias": (10,)}
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == expected
    assert (m.architecture, m.output) == (ARCH, output)
    images = make_synthetic_mnist(3, seed=1)[0]
    for kernels in ("fused", "libtorch"):
        assert m(images, kernels=kernels).shape == (3, 10)


def test_initialisation_is_uniform_in_2_4_over_fan_in():
    p = model().state_dict()
    fan_in = {"c1": 25, "s2": 4, "c5": 400, "f6": 120, "output": 84, "s4": 4}
    for name, tensor in p.items():
        layer = name.split(".")[0]
        if layer != "c3":
            bound = 2.4 / fan_in[layer]
            assert tensor.abs().max().item() <= bound, name
            assert tensor.abs().max().item() > 0.5 * bound, name  # drawn, not all tiny
    for m, maps in enumerate(C3_TABLE):
        bound = 2.4 / (25 * len(maps))
        assert p["c3.weight"][m].abs().max().item() <= bound
        assert p["c3.bias"][m].abs().item() <= bound
    same = model().state_dict()
    assert all(torch.equal(same[k], p[k]) for k in p)
    assert not torch.equal(model(seed=5).state_dict()["c1.weight"], p["c1.weight"])


def test_rbf_codes_are_fixed_plus_minus_one():
    codes = model("rbf").rbf_codes
    assert codes is not None and codes.shape == (10, 84)
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(codes, model("rbf", seed=9).rbf_codes)
    distances = (codes[:, None, :] != codes[None, :, :]).sum(2)
    assert distances[~torch.eye(10, dtype=torch.bool)].min().item() == 31  # far apart
    assert model("softmax").rbf_codes is None
    assert lenet_cpp.LeNet5().rbf_codes is None


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_scores_match_the_reference(output, kernels):
    m = model(output)
    images = make_synthetic_mnist(45, seed=5)[0]  # a full shard and a partial one
    x = lenet_cpp.normalize(images)
    with torch.no_grad():
        expected = reference_scores(m.state_dict(), m.rbf_codes, x)
    scores = m(x, kernels=kernels)
    scale = max(1.0, expected.abs().max().item())
    assert (scores - expected).abs().max().item() <= 1e-5 * scale
    assert torch.equal(m.predict(images, batch_size=7, kernels=kernels), scores.argmax(1))


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("batch", [32, 45])
def test_gradients_match_float64_autograd(output, batch):
    """One batch's gradient of every parameter, fused and libtorch, against the reference in
    float64, within 1e-4 of the parameter's largest gradient entry; C3's non-connected
    weights get exactly zero."""
    images, labels = make_synthetic_mnist(batch, seed=11)
    m = model(output)
    p = {k: v.double().requires_grad_() for k, v in m.state_dict().items()}
    codes = None if m.rbf_codes is None else m.rbf_codes.double()
    scores = reference_scores(p, codes, lenet_cpp.normalize(images).double())
    reference_loss(scores, labels.long(), output == "rbf").backward()
    for kernels in ("fused", "libtorch"):
        grads = m.gradients(images, labels, kernels=kernels)
        assert list(grads) == list(p)
        for name, grad in grads.items():
            expected = p[name].grad.float()
            scale = expected.abs().max().item()
            assert scale > 0, (kernels, name)
            assert (grad - expected).abs().max().item() <= 1e-4 * scale, (kernels, name)
        assert torch.all(grads["c3.weight"][c3_mask() == 0] == 0), kernels


@pytest.mark.parametrize("output", OUTPUTS)
def test_evaluation_loss_is_the_reference_loss(output):
    images, labels = make_synthetic_mnist(40, seed=6)
    m = model(output)
    with torch.no_grad():
        scores = reference_scores(m.state_dict(), m.rbf_codes, lenet_cpp.normalize(images))
        expected = reference_loss(scores, labels.long(), output == "rbf").item()
    for kernels in ("fused", "libtorch"):
        assert m.evaluate(images, labels, kernels=kernels)["loss"] == pytest.approx(
            expected, rel=1e-5
        )


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("output", OUTPUTS)
def test_fused_training_matches_libtorch(data, output):
    fused = train(data, "fused", output=output)
    libtorch = train(data, "libtorch", output=output)
    assert fused.step_losses.shape == libtorch.step_losses.shape == (8,)
    torch.testing.assert_close(fused.step_losses, libtorch.step_losses, atol=1e-4, rtol=1e-5)
    for name, tensor in fused.model.state_dict().items():
        torch.testing.assert_close(tensor, libtorch.model.state_dict()[name], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("output", "learning_rate"), [("softmax", 0.2), ("rbf", 0.005)])
def test_the_1998_network_learns(output, learning_rate):
    train_set, test_set = make_synthetic_mnist(512, seed=0), make_synthetic_mnist(256, seed=1)
    result = lenet_cpp.train(
        *train_set, 4, learning_rate, batch_size=32, momentum=0.9, threads=1,
        architecture=ARCH, output=output, test_data=test_set[0], test_targets=test_set[1],
    )  # fmt: skip
    assert result.test_accuracy[-1] >= 0.9


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_non_connected_c3_weights_stay_exactly_zero(data, kernels):
    """Momentum and weight decay included: the masked weights never move."""
    before = model(seed=3).state_dict()["c3.weight"]
    after = train(data, kernels).model.state_dict()["c3.weight"]
    connected = c3_mask() == 1
    assert torch.all(after[~connected] == 0)
    assert torch.all(before[~connected] == 0)
    assert not torch.equal(after[connected], before[connected])


@pytest.mark.parametrize("output", OUTPUTS)
def test_fused_results_do_not_depend_on_threads(data, output):
    one = train(data, "fused", output=output, batch_size=100, threads=1)
    many = train(data, "fused", output=output, batch_size=100, threads=3)
    assert torch.equal(one.step_losses, many.step_losses)
    for name, tensor in one.model.state_dict().items():
        assert torch.equal(tensor, many.model.state_dict()[name]), name


def test_save_and_load_keep_the_architecture(tmp_path):
    m = model("rbf")
    m.save(tmp_path / "m.pt")
    loaded = lenet_cpp.LeNet5.load(str(tmp_path / "m.pt"))
    assert (loaded.architecture, loaded.output) == (ARCH, "rbf")
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert "architecture='lenet5-1998', output='rbf'" in repr(loaded)
    assert "architecture" not in repr(lenet_cpp.LeNet5())


# ---------------------------------------------------------------- options


def test_options_are_checked_at_the_boundary():
    images, labels = make_synthetic_mnist(8, seed=1)
    with pytest.raises(ValueError, match="architecture must be 'lenet5' or 'lenet5-1998', got 'x'"):
        lenet_cpp.train(images, labels, 1, 0.1, architecture="x")
    with pytest.raises(ValueError, match="output must be 'softmax' or 'rbf', got 'svm'"):
        lenet_cpp.LeNet5(architecture=ARCH, output="svm")
    message = "output='rbf' needs architecture='lenet5-1998', got architecture='lenet5'"
    with pytest.raises(ValueError, match=message):
        lenet_cpp.train(images, labels, 1, 0.1, output="rbf")
    with pytest.raises(ValueError, match=message):
        lenet_cpp.LeNet5(output="rbf")


# ---------------------------------------------------------------- the pipeline's options


def test_setting_names_keep_the_defaults_and_name_the_architecture():
    from lenet_cpp.setting import Hyperparameters, grid_settings

    assert Hyperparameters().name == "relu_max_lr0.01_bs64_mom0_wd0"
    assert Hyperparameters(architecture=ARCH).name == "relu_max_lr0.01_bs64_mom0_wd0_lenet5-1998"
    paper = Hyperparameters(architecture=ARCH, output="rbf")
    assert paper.name == "relu_max_lr0.01_bs64_mom0_wd0_lenet5-1998_rbf"
    assert paper.train_kwargs()["architecture"] == ARCH and paper.train_kwargs()["output"] == "rbf"
    with pytest.raises(ValueError, match="output='rbf' needs architecture='lenet5-1998'"):
        Hyperparameters(output="rbf")
    grid = {"activation": ["tanh"], "pooling": ["avg"], "learning_rate": [0.1], "batch_size": [8]}
    names = list(grid_settings({**grid, "architecture": ["lenet5", ARCH]}, epochs=1))
    assert names == ["tanh_avg_lr0.1_bs8_mom0_wd0", "tanh_avg_lr0.1_bs8_mom0_wd0_lenet5-1998"]


def test_the_lecun1998_config_passes_the_schema():
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    from lenet_cpp.setting import grid_settings

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config.yaml").read_text())
    config.update(yaml.safe_load((root / "config" / "lecun1998.yaml").read_text()))
    validate(config, str(root / "schemas" / "config.schema.yaml"))
    (hp,) = grid_settings(config["grid"], config["epochs"]).values()
    assert (hp.architecture, hp.output, hp.schedule, hp.epochs, len(config["seeds"])) == (
        ARCH,
        "rbf",
        "lecun1998",
        20,
        3,
    )
    config["grid"]["architecture"] = ["lenet6"]
    with pytest.raises(Exception, match="lenet6"):
        validate(config, str(root / "schemas" / "config.schema.yaml"))
