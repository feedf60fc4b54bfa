"""lenet_cpp.plotting: figure content, size and byte-reproducibility."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from lenet_cpp.plotting import (
    PIXELS,
    LossCurves,
    confusion_figure,
    grid_loss_figure,
    loss_figure,
    predictions_figure,
    save_figure,
    smooth,
)

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 10, 500)
PREDICTIONS = np.where(RNG.random(500) < 0.9, LABELS, (LABELS + 1) % 10)


def _curves(label: str = "s", seeds: int = 3, steps: int = 120, epochs: int = 3) -> LossCurves:
    rng = np.random.default_rng(1)
    base = 2.3 * np.exp(-np.linspace(0, 3, steps))
    return LossCurves(
        label=label,
        step_losses={s: base + 0.1 * rng.random(steps) for s in range(seeds)},
        test_losses={s: list(np.linspace(1.0, 0.2, epochs) + 0.01 * s) for s in range(seeds)},
        epochs=epochs,
    )


def _figures() -> dict[str, object]:
    return {
        "predictions": predictions_figure(LABELS, PREDICTIONS, title="t", jitter_seed=3),
        "loss": loss_figure(_curves(), title="t"),
        "grid": grid_loss_figure([_curves("a"), _curves("b", seeds=1)], title="t"),
        "confusion": confusion_figure(np.eye(10, dtype=np.int64) * 7 + 1, title="t"),
    }


def _title(fig: object) -> str:
    return fig.axes[0].get_title()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["predictions", "loss", "grid", "confusion"])
def test_figures_are_byte_reproducible_png_and_pdf(tmp_path: Path, name: str) -> None:
    for run in ("a", "b"):
        fig = _figures()[name]
        save_figure(fig, tmp_path / f"{run}.png", tmp_path / f"{run}.pdf")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    image = matplotlib.image.imread(tmp_path / "a.png")
    assert image.shape[:2] == (PIXELS[1], PIXELS[0])
    assert image[..., :3].std() > 0.01
    pdf = (tmp_path / "a.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png", "b.pdf", "b.png"]


def test_predictions_title_gives_accuracy_and_errors() -> None:
    wrong = int((LABELS != PREDICTIONS).sum())
    title = _title(predictions_figure(LABELS, PREDICTIONS, title="run"))
    assert f"{(LABELS == PREDICTIONS).mean():.2%}" in title
    assert f"{wrong} of 500 misclassified" in title


def test_predictions_highlight_misclassified_points() -> None:
    fig = predictions_figure(LABELS, PREDICTIONS, title="run")
    correct, wrong = fig.axes[0].collections[:2]
    assert len(wrong.get_offsets()) == int((LABELS != PREDICTIONS).sum())
    assert len(correct.get_offsets()) == int((LABELS == PREDICTIONS).sum())
    offsets = np.asarray(wrong.get_offsets())
    assert np.all(np.abs(offsets - np.round(offsets)) <= 0.38 + 1e-9)  # jitter stays in its cell


def test_jitter_depends_only_on_its_seed() -> None:
    def offsets(seed: int) -> np.ndarray:
        fig = predictions_figure(LABELS, PREDICTIONS, title="t", jitter_seed=seed)
        return np.asarray(fig.axes[0].collections[0].get_offsets())

    assert np.array_equal(offsets(1), offsets(1))
    assert not np.array_equal(offsets(1), offsets(2))


def test_loss_figure_has_band_and_test_points() -> None:
    fig = loss_figure(_curves(seeds=3, epochs=3), title="run")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.collections) >= 1  # the min-max band (fill_between)
    assert "3 seed(s)" in _title(fig)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("test loss" in t for t in labels) and any("smoothed" in t for t in labels)


def test_loss_figure_shows_a_schedules_learning_rate_only() -> None:
    assert len(loss_figure(_curves(), title="run").axes) == 1
    constant = LossCurves("s", _curves().step_losses, {}, 3, learning_rates=np.full(120, 0.1))
    assert len(loss_figure(constant, title="run").axes) == 1
    rates = 0.1 * np.cos(np.linspace(0, np.pi / 2, 120))
    scheduled = LossCurves("s", _curves().step_losses, {}, 3, learning_rates=rates)
    fig = loss_figure(scheduled, title="run")
    assert len(fig.axes) == 2 and "learning rate" in fig.axes[1].get_ylabel()
    (line,) = fig.axes[1].get_lines()
    assert np.array_equal(line.get_ydata(), rates)


def test_grid_figure_has_one_entry_per_setting() -> None:
    fig = grid_loss_figure([_curves("a"), _curves("b"), _curves("c")], title="grid")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b", "c"]


def test_confusion_figure_shows_counts() -> None:
    matrix = np.arange(100).reshape(10, 10)
    texts = {t.get_text() for t in confusion_figure(matrix, title="c").axes[0].texts}
    assert {"0", "55", "99"} <= texts


def test_smooth_is_a_trailing_mean() -> None:
    assert np.allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    assert np.array_equal(smooth(np.array([2.0, 4.0]), 1), [2.0, 4.0])
    with pytest.raises(ValueError):
        smooth(np.ones(3), 0)


def test_save_figure_rejects_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.pdf or \.png or \.svg or \.pgf, got '\.jpg'"):
        save_figure(_figures()["loss"], tmp_path / "x.jpg")
    assert not list(tmp_path.iterdir())
