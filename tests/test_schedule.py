"""Learning-rate schedules (cpp/schedule.h): each step's rate against its closed form and
against torch's schedulers, applied by both kernels, resumed mid-schedule bit for bit, and
checked at the boundary."""

from __future__ import annotations

import math

import pytest
import torch
from stopping import Stop, stop_at

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist

TRAIN = make_synthetic_mnist(96, seed=4)
TEST = make_synthetic_mnist(32, seed=5)
BATCH = 16  # 6 steps per pass
STEPS_PER_PASS = 6
BASE = 0.05


def run(epochs: int, **kwargs: object) -> lenet_cpp.TrainResult:
    options: dict[str, object] = {"batch_size": BATCH, "momentum": 0.9, "seed": 3, "threads": 1}
    return lenet_cpp.train(TRAIN[0], TRAIN[1], epochs, BASE, **{**options, **kwargs})


def rates(epochs: int, **kwargs: object) -> list[float]:
    return run(epochs, **kwargs).step_learning_rates.tolist()


def anneal_cos(start: float, end: float, t: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * t) + 1.0)


def torch_rates(make_scheduler, steps: int, *, per_pass: bool = False) -> list[float]:
    """The rates a torch.optim scheduler gives, one per step (stepped per pass or per step)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE)
    scheduler = make_scheduler(optimizer)
    out = []
    for step in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if not per_pass or (step + 1) % STEPS_PER_PASS == 0:
            scheduler.step()
    return out


def test_constant_is_the_learning_rate_and_the_default() -> None:
    assert rates(2) == [BASE] * 2 * STEPS_PER_PASS
    assert torch.equal(run(2).step_losses, run(2, schedule="constant").step_losses)


def test_step_drops_by_gamma_after_each_milestone() -> None:
    got = rates(5, schedule="step", milestones=[2, 4], gamma=0.5)
    expected = [BASE * 0.5 ** sum(m < p for m in (2, 4)) for p in range(1, 6)]
    assert got == [r for r in expected for _ in range(STEPS_PER_PASS)]
    multistep = torch_rates(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 4], gamma=0.5),
        5 * STEPS_PER_PASS,
        per_pass=True,
    )
    assert got == pytest.approx(multistep, rel=1e-15)


def test_lecun1998_has_the_papers_shape() -> None:
    got = rates(14, schedule="lecun1998")
    factor = {1: 1, 2: 1, 3: 0.4, 5: 0.4, 6: 0.2, 8: 0.2, 9: 0.1, 12: 0.1, 13: 0.02, 14: 0.02}
    for p, f in factor.items():
        assert got[(p - 1) * STEPS_PER_PASS : p * STEPS_PER_PASS] == [BASE * f] * STEPS_PER_PASS


@pytest.mark.parametrize("warmup", [None, 0.25])
def test_cosine_has_its_closed_form(warmup: float | None) -> None:
    total = 4 * STEPS_PER_PASS
    got = rates(4, schedule="cosine", warmup=warmup, final_learning_rate=0.001)
    warm = int((warmup or 0.0) * total)
    expected = [BASE * (t + 1) / warm for t in range(warm)]
    expected += [anneal_cos(BASE, 0.001, (t - warm) / (total - warm)) for t in range(warm, total)]
    assert got == pytest.approx(expected, rel=1e-14, abs=0)
    if warmup is None:  # torch's CosineAnnealingLR, stepped per batch
        annealing = torch_rates(
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=0.001),
            total,
        )
        assert got == pytest.approx(annealing, rel=1e-12)


@pytest.mark.parametrize(("warmup", "final"), [(None, None), (0.4, 1e-4)])
def test_onecycle_is_torchs_onecycle(warmup: float | None, final: float | None) -> None:
    total = 5 * STEPS_PER_PASS
    got = rates(5, schedule="onecycle", warmup=warmup, final_learning_rate=final)
    pct = 0.3 if warmup is None else warmup
    final_div = 1e4 if final is None else BASE / 25 / final
    onecycle = torch_rates(
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=BASE,
            total_steps=total,
            pct_start=pct,
            final_div_factor=final_div,
            cycle_momentum=False,
        ),
        total,
    )
    assert got == pytest.approx(onecycle, rel=1e-12)
    assert max(got) == pytest.approx(BASE, rel=1e-12) and got[0] == pytest.approx(BASE / 25)


def test_exact_cosine_values_at_the_quarter_points() -> None:
    """cos(pi t) from +, -, * only (no libm) is exact where it must be."""
    got = rates(4, schedule="cosine", final_learning_rate=0.0)
    assert got[0] == BASE  # cos(0) = 1
    assert got[12] == pytest.approx(BASE / 2, rel=1e-15)  # cos(pi/2) = 0


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_both_kernels_apply_the_rate(kernels: str) -> None:
    """A drop after pass 1 leaves pass 1 as the constant run's and changes pass 2."""
    constant = run(2, kernels=kernels)
    stepped = run(2, kernels=kernels, schedule="step", milestones=[1], gamma=0.1)
    n = STEPS_PER_PASS + 1  # the first step of pass 2 still has pass 1's parameters
    assert torch.equal(constant.step_losses[:n], stepped.step_losses[:n])
    assert not torch.equal(constant.step_losses[n:], stepped.step_losses[n:])
    assert stepped.step_learning_rates.tolist() == [BASE] * 6 + [BASE * 0.1] * 6


def test_both_kernels_follow_the_same_schedule() -> None:
    fused = run(3, kernels="fused", schedule="onecycle")
    reference = run(3, kernels="libtorch", schedule="onecycle")
    assert torch.equal(fused.step_learning_rates, reference.step_learning_rates)
    assert torch.allclose(fused.step_losses, reference.step_losses, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step"])
def test_a_resumed_run_continues_its_schedule(tmp_path, kernels: str, schedule: str) -> None:
    options = {"kernels": kernels, "schedule": schedule, "milestones": [1, 2], "warmup": 0.2}
    options |= {"test_data": TEST[0], "test_targets": TEST[1], "augment": True}
    uninterrupted = run(3, **options)
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Stop):  # stopped in pass 2, after pass 1's checkpoint
        run(3, **options, checkpoint=checkpoint, progress=stop_at(8), progress_every=1)
    resumed = run(3, **options, checkpoint=checkpoint)
    assert resumed.resumed_from_epoch == 1
    assert torch.equal(resumed.step_learning_rates, uninterrupted.step_learning_rates)
    assert torch.equal(resumed.step_losses, uninterrupted.step_losses)
    assert resumed.test_accuracy == uninterrupted.test_accuracy
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_a_checkpoint_of_another_schedule_is_refused(tmp_path) -> None:
    checkpoint = tmp_path / "run.ckpt"
    run(1, schedule="cosine", checkpoint=checkpoint)
    with pytest.raises(ValueError, match="belongs to another run"):
        run(1, schedule="onecycle", checkpoint=checkpoint)
    with pytest.raises(ValueError, match="belongs to another run"):
        run(1, schedule="cosine", augment=True, checkpoint=checkpoint)
    with pytest.raises(ValueError, match="belongs to another run"):
        run(1, schedule="cosine", final_learning_rate=0.01, checkpoint=checkpoint)
    assert run(1, schedule="cosine", checkpoint=checkpoint).resumed_from_epoch == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "linear"}, "schedule must be 'constant', 'step', .* got 'linear'"),
        ({"milestones": [3, 2]}, "milestones must be increasing pass numbers >= 1, got 2 after 3"),
        ({"milestones": [0]}, "milestones must be increasing pass numbers >= 1, got 0"),
        ({"gamma": 0.0}, "gamma must be a finite number > 0, got 0"),
        ({"gamma": math.inf}, "gamma must be a finite number > 0, got inf"),
        ({"warmup": 1.0}, r"warmup must be a fraction of the run's steps in \[0, 1\), got 1"),
        ({"warmup": -0.1}, r"warmup must be .* got -0.1"),
        ({"final_learning_rate": -1.0}, "final_learning_rate must be a finite number >= 0, got -1"),
    ],
)
def test_bad_schedule_options_are_value_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(1, **options)


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_divergence_reports_the_scheduled_rate(kernels: str) -> None:
    with pytest.raises(lenet_cpp.TrainingDiverged) as caught:
        lenet_cpp.train(
            TRAIN[0], TRAIN[1], 2, 1e9, batch_size=BATCH, kernels=kernels, schedule="onecycle"
        )
    step = caught.value.step
    rates = run(2, schedule="onecycle").step_learning_rates  # the same schedule at BASE
    assert caught.value.learning_rate == pytest.approx(float(rates[step - 1]) * 1e9 / BASE)
    assert caught.value.learning_rate != 1e9


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_the_1998_network_resumes_its_schedule_and_distortions(tmp_path, kernels: str) -> None:
    options = {"kernels": kernels, "architecture": "lenet5-1998", "schedule": "lecun1998"}
    options |= {"augment": True}
    uninterrupted = run(3, **options)
    assert uninterrupted.step_learning_rates.tolist() == [BASE] * 12 + [BASE * 0.4] * 6
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        run(3, **options, checkpoint=checkpoint, progress=stop_at(14), progress_every=1)
    resumed = run(3, **options, checkpoint=checkpoint)
    assert resumed.resumed_from_epoch == 2
    assert torch.equal(resumed.step_learning_rates, uninterrupted.step_learning_rates)
    assert torch.equal(resumed.step_losses, uninterrupted.step_losses)
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
