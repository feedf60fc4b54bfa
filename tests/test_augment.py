"""Distortions (cpp/augment.h): deterministic per seed, identity when every range is 0,
label-preserving on a synthetic glyph, applied in training by both kernels, checked at the
boundary."""

from __future__ import annotations

import pytest
import torch

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist

IDENTITY = {"translate": 0, "scale": 0, "squeeze": 0, "shear": 0, "rotate": 0}
TRAIN = make_synthetic_mnist(96, seed=6)


def blob(n: int = 64) -> torch.Tensor:
    """n copies of a centred 10x6 bar (a '1'-like glyph), uint8 [n,28,28]."""
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 9:19, 11:17] = 255
    return images


def ink(images: torch.Tensor) -> torch.Tensor:
    """The foreground of normalised images: 0 on the background, about 1 on full ink."""
    background = float(lenet_cpp.normalize(torch.zeros(1, 28, 28, dtype=torch.uint8)).flatten()[0])
    full = float(lenet_cpp.normalize(torch.full((1, 28, 28), 255, dtype=torch.uint8)).flatten()[0])
    return (images[:, 0] - background) / (full - background)


def test_distortions_are_deterministic_per_seed() -> None:
    x = TRAIN[0][:16]
    a = lenet_cpp.distort(x, seed=7)
    assert torch.equal(a, lenet_cpp.distort(x, seed=7))
    assert not torch.equal(a, lenet_cpp.distort(x, seed=8))
    assert a.shape == (16, 1, 28, 28) and a.dtype == torch.float32
    assert not torch.equal(a, lenet_cpp.normalize(x))


def test_identity_ranges_give_identical_images() -> None:
    x = TRAIN[0][:16]
    assert torch.equal(lenet_cpp.distort(x, seed=1, augment=IDENTITY), lenet_cpp.normalize(x))
    assert torch.equal(lenet_cpp.distort(x, seed=1, augment=False), lenet_cpp.normalize(x))


def test_a_centred_glyph_stays_centred_and_whole() -> None:
    before = ink(lenet_cpp.normalize(blob()))
    after = ink(lenet_cpp.distort(blob(), seed=3))
    rows = torch.arange(28, dtype=torch.float32).view(1, 28, 1)
    columns = torch.arange(28, dtype=torch.float32).view(1, 1, 28)
    mass = after.sum((1, 2))
    centre_y = (after * rows).sum((1, 2)) / mass
    centre_x = (after * columns).sum((1, 2)) / mass
    assert ((centre_y - 13.5).abs() <= 3.0).all() and ((centre_x - 13.5).abs() <= 3.0).all()
    ratio = mass / before.sum((1, 2))
    assert ((ratio > 0.6) & (ratio < 1.6)).all()
    assert (after[:, :3].abs().amax((1, 2)) < 1e-6).all()  # the top rows stay blank
    # every image is distorted differently
    assert len({tuple(img.flatten().tolist()[::7]) for img in after}) == len(after)


def test_each_range_moves_the_glyph_its_own_way() -> None:
    x = blob(32)
    only = lambda **r: lenet_cpp.distort(x, seed=2, augment={**IDENTITY, **r})  # noqa: E731
    for kind, value in [
        ("translate", 2),
        ("scale", 0.2),
        ("squeeze", 0.2),
        ("shear", 0.3),
        ("rotate", 15),
    ]:
        distorted = only(**{kind: value})
        assert not torch.equal(distorted, lenet_cpp.normalize(x)), kind
    # a translation of at most 2 pixels moves the bar's centre by at most 2 pixels
    shifted = ink(only(translate=2))
    columns = torch.arange(28, dtype=torch.float32).view(1, 1, 28)
    centre_x = (shifted * columns).sum((1, 2)) / shifted.sum((1, 2))
    assert ((centre_x - 13.5).abs() <= 2.0 + 1e-4).all()


def run(epochs: int, **kwargs: object) -> lenet_cpp.TrainResult:
    options: dict[str, object] = {"batch_size": 16, "seed": 1, "threads": 1}
    return lenet_cpp.train(TRAIN[0], TRAIN[1], epochs, 0.05, **{**options, **kwargs})


@pytest.mark.parametrize("kernels", ["fused", "libtorch"])
def test_training_with_distortions_is_reproducible(kernels: str) -> None:
    plain = run(2, kernels=kernels)
    a = run(2, kernels=kernels, augment=True)
    assert torch.equal(a.step_losses, run(2, kernels=kernels, augment=True).step_losses)
    assert not torch.equal(a.step_losses, plain.step_losses)
    assert not torch.equal(a.step_losses, run(2, kernels=kernels, augment=True, seed=2).step_losses)
    # identity ranges: the first pass sees the same images as without distortions
    identity = run(1, kernels=kernels, augment=IDENTITY)
    assert torch.equal(identity.step_losses, run(1, kernels=kernels).step_losses)


def test_both_kernels_train_on_the_same_distorted_images() -> None:
    fused = run(1, kernels="fused", augment={"rotate": 20})
    reference = run(1, kernels="libtorch", augment={"rotate": 20})
    assert torch.allclose(fused.step_losses, reference.step_losses, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("augment", "error", "message"),
    [
        (
            {"rotate": 90},
            ValueError,
            r"augment range 'rotate' must be a number in \[0, 45\] "
            "degrees, got 90",
        ),
        ({"translate": -1}, ValueError, r"augment range 'translate' .* got -1"),
        ({"scale": float("nan")}, ValueError, r"augment range 'scale' .* got nan"),
        ({"spin": 1}, ValueError, "augment has no range 'spin'; expected translate, scale"),
        ({"shear": "big"}, TypeError, "augment ranges map names to numbers, got 'shear': 'big'"),
        ("yes", TypeError, "augment must be a bool or a dict of ranges, got str"),
    ],
)
def test_bad_augment_options_are_errors(augment: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        run(1, augment=augment)
    with pytest.raises(error, match=message):
        lenet_cpp.distort(TRAIN[0][:2], augment=augment)  # type: ignore[arg-type]
