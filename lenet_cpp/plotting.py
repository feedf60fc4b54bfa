"""The project's figures, byte-reproducible: same inputs, same bytes in every format.

Figures are built as plain ``matplotlib.figure.Figure`` objects (no pyplot
state, the Agg renderer for PNG) in a ``lenet_cpp.style.FigureStyle`` (by default
``DEFAULT_STYLE``: ``PIXELS`` for PNG; the paper outputs pass config.yaml's ``paper:``
style) and saved by ``save_figure`` with fixed metadata (no software version, no creation
date). Random jitter comes from a seeded numpy Generator.

Per setting (``plot_setting``): predictions vs true labels (jittered scatter,
misclassified points highlighted, accuracy in the title) and the loss curve
(per-step training loss smoothed, band across seeds, per-epoch test loss).
Per grid (``plot_grid``): the loss curves of all settings overlaid, and the
confusion matrix of the best setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.typing import ColorType

from .datasets import dataset_info
from .layout import DEFAULT_DATASET, LOSSES_FILE, PREDICTIONS_FILE, seed_dir
from .results import MetricsRecord, load_metrics, read_learning_rates, read_losses, read_predictions
from .style import DEFAULT_STYLE, FigureStyle, save_figure

__all__ = [
    "DPI",
    "FIGSIZE",
    "PIXELS",
    "LossCurves",
    "confusion_figure",
    "grid_loss_figure",
    "load_loss_curves",
    "loss_figure",
    "plot_grid",
    "plot_setting",
    "predictions_figure",
    "save_figure",
    "smooth",
]

FIGSIZE = (DEFAULT_STYLE.width_in, DEFAULT_STYLE.height_in)
DPI = DEFAULT_STYLE.dpi
#: (width, height) of every PNG of the default style in pixels.
PIXELS = DEFAULT_STYLE.pixels
_JITTER = 0.38
_CURVE_POINTS = 60  # smoothing window: about total_steps / _CURVE_POINTS steps
#: Widths of the thin strokes, as fractions of the style's line width.
_THIN, _REFERENCE = 0.25, 0.5
#: Font size of the confusion matrix's counts, as a fraction of the style's font size.
_SMALL = 0.7


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first ``window - 1`` points average what is there."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return x
    csum = np.cumsum(np.concatenate(([0.0], x)))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(idx - window, 0)
    averages: np.ndarray = (csum[idx] - csum[lo]) / (idx - lo)
    return averages


def _window(n_steps: int) -> int:
    return max(1, round(n_steps / _CURVE_POINTS))


def _label_classes(ax: Axes, classes: Sequence[str] | None) -> None:
    """Name the ten classes on both axes (words slanted on the x axis); None: the numbers."""
    if classes is None:
        return
    words = max(len(c) for c in classes) > 2
    ax.set_xticklabels(classes, rotation=30 if words else 0, ha="right" if words else "center")
    ax.set_yticklabels(classes)


def _classes(record: MetricsRecord) -> tuple[str, ...]:
    """The class names of the dataset a setting trained on (MNIST for older records)."""
    return dataset_info(record["setting"].get("dataset", DEFAULT_DATASET)).classes


# ---------------------------------------------------------------- figures


def predictions_figure(
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    title: str,
    jitter_seed: int = 0,
    classes: Sequence[str] | None = None,
    style: FigureStyle = DEFAULT_STYLE,
) -> Figure:
    """Scatter of predicted vs true label, jittered; misclassified points in red.

    ``classes`` names the ticks (default: the label numbers).
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    rng = np.random.default_rng(jitter_seed)
    x = labels + rng.uniform(-_JITTER, _JITTER, labels.size)
    y = predictions + rng.uniform(-_JITTER, _JITTER, labels.size)
    wrong = labels != predictions
    accuracy = 1.0 - wrong.mean() if labels.size else float("nan")
    with style.context():
        fig = style.new_figure()
        ax = fig.add_subplot()
        ax.scatter(
            x[~wrong],
            y[~wrong],
            s=3,
            c="tab:blue",
            alpha=float(np.clip(1000 / max(labels.size, 1), 0.15, 0.6)),
            lw=0,
            rasterized=True,
            label=f"correct ({int((~wrong).sum())})",
        )
        ax.scatter(
            x[wrong],
            y[wrong],
            s=9,
            c="tab:red",
            alpha=0.9,
            lw=0,
            rasterized=True,
            label=f"misclassified ({int(wrong.sum())})",
        )
        ax.plot(
            [-0.5, 9.5], [-0.5, 9.5], c="0.5", lw=_REFERENCE * style.line_width, ls="--", zorder=0
        )
        ticks = np.arange(10)
        ax.set(xticks=ticks, yticks=ticks, xlim=(-0.5, 9.5), ylim=(-0.5, 9.5))
        _label_classes(ax, classes)
        ax.set(xlabel="true label (jittered)", ylabel="predicted label (jittered)")
        ax.set_title(
            style.title(
                f"{title}\ntest accuracy {accuracy:.2%} ({int(wrong.sum())} of {labels.size} "
                "misclassified)"
            )
        )
        ax.legend(loc="upper left", markerscale=3, framealpha=0.9)
    return fig


@dataclass(frozen=True)
class LossCurves:
    """Per-step training losses and per-epoch test losses of one setting, by seed."""

    label: str
    step_losses: Mapping[int, np.ndarray]
    test_losses: Mapping[int, Sequence[float]]
    epochs: int
    #: The learning rate of every step (the same for every seed); empty for files from before
    #: schedules.
    learning_rates: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate changed during the run (a schedule worth drawing)."""
        rates = self.learning_rates
        return bool(rates.size) and bool((rates != rates[0]).any())

    @property
    def steps(self) -> int:
        return min(len(v) for v in self.step_losses.values())

    def epoch_axis(self) -> np.ndarray:
        """x position (in epochs) of each step: step k of n ends at epochs * k / n."""
        n = self.steps
        return self.epochs * np.arange(1, n + 1) / n

    def smoothed(self) -> np.ndarray:
        """[seeds, steps] smoothed training losses."""
        n, window = self.steps, _window(self.steps)
        return np.stack([smooth(v[:n], window) for v in self.step_losses.values()])

    def test_loss_table(self) -> np.ndarray:
        """[seeds, epochs] test losses."""
        return np.array([list(v) for v in self.test_losses.values()], dtype=np.float64)


def _draw_training(ax: Axes, curves: LossCurves, color: ColorType, *, label: str) -> None:
    x, sm = curves.epoch_axis(), curves.smoothed()
    ax.plot(x, sm.mean(axis=0), c=color, label=label)
    if sm.shape[0] > 1:
        ax.fill_between(x, sm.min(axis=0), sm.max(axis=0), color=color, alpha=0.25, lw=0)


def loss_figure(curves: LossCurves, *, title: str, style: FigureStyle = DEFAULT_STYLE) -> Figure:
    """Smoothed per-step training loss (mean, min-max band over seeds) and per-epoch test loss."""
    n_seeds = len(curves.step_losses)
    with style.context():
        fig = style.new_figure()
        ax = fig.add_subplot()
        raw = np.stack([np.asarray(v[: curves.steps]) for v in curves.step_losses.values()])
        ax.plot(
            curves.epoch_axis(),
            raw.mean(axis=0),
            c="0.55",
            lw=_THIN * style.line_width,
            alpha=0.5,
            label="training loss per step (mean over seeds)",
        )
        band = ", band: min-max over seeds" if n_seeds > 1 else ""
        _draw_training(ax, curves, "tab:blue", label=f"training loss, smoothed{band}")
        test = curves.test_loss_table()
        if test.size:
            epochs = np.arange(1, test.shape[1] + 1)
            mean = test.mean(axis=0)
            err = np.stack([mean - test.min(axis=0), test.max(axis=0) - mean])
            ax.errorbar(
                epochs,
                mean,
                yerr=err,
                c="tab:orange",
                marker="o",
                ms=5,
                capsize=3,
                label="test loss per epoch (mean, min-max)",
            )
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="cross-entropy loss", xlim=(0, curves.epochs))
        ax.set_title(style.title(f"{title}\n{n_seeds} seed(s), {curves.steps} steps per seed"))
        ax.legend(loc="upper right", framealpha=0.9)
        if curves.scheduled:
            _draw_learning_rate(ax, curves)
    return fig


def _draw_learning_rate(ax: Axes, curves: LossCurves) -> None:
    """The schedule's learning rate per step, on a second y axis at the right."""
    rates = curves.learning_rates[: curves.steps]
    right = ax.twinx()
    right.plot(curves.epoch_axis()[: rates.size], rates, c="tab:green", lw=1.0, ls="--")
    right.set_ylabel("learning rate (dashed)", color="tab:green")
    right.set_ylim(bottom=0)


def grid_loss_figure(
    settings: Sequence[LossCurves], *, title: str, style: FigureStyle = DEFAULT_STYLE
) -> Figure:
    """The smoothed training loss of every setting (mean over seeds, min-max band)."""
    colors = mpl.color_sequences["tab10"]
    with style.context():
        fig = style.new_figure()
        ax = fig.add_subplot()
        for i, curves in enumerate(settings):
            color = colors[i % len(colors)]
            _draw_training(ax, curves, color, label=curves.label)
            test = curves.test_loss_table()
            if test.size:
                ax.plot(
                    np.arange(1, test.shape[1] + 1),
                    test.mean(axis=0),
                    ls="none",
                    marker="o",
                    ms=4,
                    mfc="white",
                    c=color,
                )
        ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="cross-entropy loss")
        ax.set_title(
            style.title(f"{title}\nlines: smoothed training loss; circles: test loss per epoch")
        )
        style.legend(ax, loc="upper right")
    return fig


def confusion_figure(
    matrix: np.ndarray,
    *,
    title: str,
    classes: Sequence[str] | None = None,
    style: FigureStyle = DEFAULT_STYLE,
) -> Figure:
    """Confusion matrix: counts in the cells, colour = fraction of the true class.

    ``classes`` names the ticks (default: the label numbers).
    """
    counts = np.asarray(matrix, dtype=np.int64)
    fraction = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with style.context():
        fig = style.new_figure()
        ax = fig.add_subplot()
        ax.grid(False)
        image = ax.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
        for (row, col), value in np.ndenumerate(counts):
            dark = fraction[row, col] > 0.5
            ax.text(
                col,
                row,
                str(value),
                ha="center",
                va="center",
                fontsize=_SMALL * style.font_size,
                color="white" if dark else "black",
            )
        ticks = np.arange(counts.shape[0])
        ax.set(xticks=ticks, yticks=ticks, xlabel="predicted label", ylabel="true label")
        _label_classes(ax, classes)
        fig.colorbar(image, ax=ax, label="fraction of the true label's images")
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        ax.set_title(
            style.title(f"{title}\naccuracy {accuracy:.2%} over {counts.sum()} predictions"),
            fontsize=0.9 * style.font_size,
        )
    return fig


# ---------------------------------------------------------------- from result files


def load_loss_curves(run_dir: str | os.PathLike[str], *, label: str | None = None) -> LossCurves:
    """Read a setting's losses (seed*/losses.csv) and test losses (metrics.json)."""
    record = load_metrics(run_dir)
    seeds, per_seed = record["seeds"], record["results"]["per_seed"]
    return LossCurves(
        label=label or record["setting"]["name"],
        step_losses={s: read_losses(seed_dir(run_dir, s) / LOSSES_FILE) for s in seeds},
        test_losses={s: per_seed[str(s)]["test_loss"] for s in seeds},
        epochs=int(record["setting"]["epochs"]),
        learning_rates=read_learning_rates(seed_dir(run_dir, seeds[0]) / LOSSES_FILE),
    )


def plot_setting(
    run_dir: str | os.PathLike[str],
    *,
    predictions_paths: Sequence[str | os.PathLike[str]],
    loss_paths: Sequence[str | os.PathLike[str]],
    seed: int | None = None,
) -> None:
    """Write a setting's two figures; the scatter shows ``seed`` (default: the first seed)."""
    record = load_metrics(run_dir)
    name, seeds = record["setting"]["name"], record["seeds"]
    shown = seeds[0] if seed is None else seed
    labels, predictions = read_predictions(seed_dir(run_dir, shown) / PREDICTIONS_FILE)
    fig = predictions_figure(
        labels,
        predictions,
        title=f"{name}, seed {shown}",
        jitter_seed=shown,
        classes=_classes(record),
    )
    save_figure(fig, *predictions_paths)
    save_figure(loss_figure(load_loss_curves(run_dir), title=name), *loss_paths)


def _pooled_confusion(run_dir: Path) -> np.ndarray:
    """Sum of the seeds' confusion matrices recorded in metrics.json."""
    per_seed = load_metrics(run_dir)["results"]["per_seed"]
    matrices = [np.asarray(r["confusion"], dtype=np.int64) for r in per_seed.values()]
    pooled: np.ndarray = np.sum(matrices, axis=0)
    return pooled


def _grid_label(name: str, run_dir: str | os.PathLike[str]) -> str:
    """A setting's legend entry; diverged settings say so (their curves stop or turn NaN)."""
    status = load_metrics(run_dir)["results"].get("status", "ok")
    return name if status == "ok" else f"{name} ({status})"


def plot_grid(
    run_dirs: Mapping[str, str | os.PathLike[str]],
    best: str,
    *,
    loss_paths: Sequence[str | os.PathLike[str]],
    confusion_paths: Sequence[str | os.PathLike[str]],
) -> None:
    """Overlay every setting's loss curve; confusion matrix of ``best`` (seeds pooled)."""
    curves = [load_loss_curves(d, label=_grid_label(name, d)) for name, d in run_dirs.items()]
    save_figure(grid_loss_figure(curves, title="Training loss of every setting"), *loss_paths)
    matrix = _pooled_confusion(Path(run_dirs[best]))
    title = f"Best setting: {best}\n(test predictions of all its seeds)"
    classes = _classes(load_metrics(run_dirs[best]))
    save_figure(confusion_figure(matrix, title=title, classes=classes), *confusion_paths)
