"""The paper outputs of a grid (``results/paper/``), in the style of config.yaml's ``paper:``.

- ``table.{tex,md,html}``: the grid's table (``lenet_cpp.tables``);
- ``error_vs_epoch``: test and training error (%) after every epoch for every setting, log
  scale, mean over seeds with a min-max band. The training error is the one the trainer
  records while it trains: the share of the epoch's mini-batch images that were misclassified
  before each update (``train_accuracy`` in metrics.json), not a second pass over the data;
- ``misclassified``: every misclassified test image of the best setting's first seed, in test
  set order, each tile labelled "true→predicted";
- ``predictions`` and ``loss_curves``: the scatter of the best setting's first seed and the
  loss curves of every setting (``lenet_cpp.plotting``), at the paper style.

The best setting is ``lenet_cpp.results.best_row``'s, as for ``grid/confusion_best``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .layout import PREDICTIONS_FILE, seed_dir
from .plotting import grid_loss_figure, load_loss_curves, predictions_figure
from .results import (
    MetricsRecord,
    atomic_path,
    best_row,
    load_metrics,
    read_predictions,
    summarize,
)
from .style import FigureStyle, save_figure
from .tables import grid_table, setting_labels, to_html, to_latex, to_markdown

__all__ = [
    "ErrorCurves",
    "PaperOutputs",
    "error_curves",
    "error_vs_epoch_figure",
    "misclassified_figure",
    "write_paper",
]

#: Width of one tile of the misclassified figure (inches), and the gap around an image
#: (in image pixels, of 28).
_TILE_IN, _TILE_GAP = 0.35, 3
_IMAGE = 28


@dataclass(frozen=True)
class ErrorCurves:
    """Test and training error (%) of one setting: [seeds, epochs] each."""

    label: str
    test: np.ndarray
    train: np.ndarray

    @property
    def epochs(self) -> int:
        return int(self.test.shape[1])


def error_curves(record: MetricsRecord, *, label: str | None = None) -> ErrorCurves:
    """A setting's per-epoch errors from its metrics.json record."""
    per_seed = [record["results"]["per_seed"][str(s)] for s in record["seeds"]]

    def table(key: str) -> np.ndarray:
        values = [seed[key] for seed in per_seed]  # type: ignore[literal-required]
        return 100.0 * (1.0 - np.asarray(values, dtype=np.float64))

    name = record["setting"]["name"]
    status = record["results"].get("status", "ok")
    default = name if status == "ok" else f"{name} ({status})"
    return ErrorCurves(label or default, table("test_accuracy"), table("train_accuracy"))


#: How the test and the training error are drawn (keyword arguments of ``Axes.plot``).
_TEST_LINE: Mapping[str, Any] = {"ls": "-", "marker": "o", "ms": 3}
_TRAIN_LINE: Mapping[str, Any] = {"ls": "--", "marker": "s", "ms": 3, "mfc": "white"}


def _band(ax: Axes, x: np.ndarray, values: np.ndarray, color: Any, line: Mapping[str, Any]) -> None:
    ax.plot(x, values.mean(axis=0), c=color, **line)
    if values.shape[0] > 1:
        low, high = values.min(axis=0), values.max(axis=0)
        ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)


def error_vs_epoch_figure(
    settings: Sequence[ErrorCurves], *, style: FigureStyle, title: str = ""
) -> Figure:
    """Test error (solid, circles) and training error (dashed) per epoch of every setting:
    mean over seeds, band from the lowest to the highest seed; log scale."""
    colors = mpl.color_sequences["tab10"]
    with style.context():
        fig = style.new_figure()
        ax = fig.add_subplot()
        handles = []
        for i, curves in enumerate(settings):
            color = colors[i % len(colors)]
            x = np.arange(1, curves.epochs + 1)
            _band(ax, x, curves.test, color, _TEST_LINE)
            _band(ax, x, curves.train, color, _TRAIN_LINE)
            handles.append(Line2D([], [], c=color, label=curves.label))
        handles += [
            Line2D([], [], c="0.3", label="test error", **_TEST_LINE),
            Line2D([], [], c="0.3", label="training error (during the epoch)", **_TRAIN_LINE),
        ]
        last = max((c.epochs for c in settings), default=1)
        margin = 0.5 if last == 1 else 0.2  # one epoch: a single point in the middle
        ax.set_xlim(1 - margin, last + margin)
        ax.set_yscale("log", nonpositive="mask")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel="error (%)")
        ax.set_title(style.title(title))
        style.legend(ax, loc="best", handles=handles)
    return fig


def _mosaic(images: np.ndarray, columns: int, label_rows: int) -> np.ndarray:
    """The tiles on a white page: [rows * (image + gap + label), columns * (image + gap)]."""
    n = images.shape[0]
    rows = max(1, math.ceil(n / columns))
    cell_w, cell_h = _IMAGE + _TILE_GAP, _IMAGE + _TILE_GAP + label_rows
    page = np.zeros((rows * cell_h, columns * cell_w), dtype=np.uint8)
    for i in range(n):
        row, col = divmod(i, columns)
        top, left = row * cell_h + _TILE_GAP // 2, col * cell_w + _TILE_GAP // 2
        page[top : top + _IMAGE, left : left + _IMAGE] = images[i]
    return page


def misclassified_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    style: FigureStyle,
    title: str = "",
) -> Figure:
    """Every image whose prediction differs from its label, dark on white, in the given
    order, with "true→predicted" under each tile; as wide as the style, as tall as needed."""
    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predictions))
    columns = max(1, int(style.width_in / _TILE_IN))
    tile_in = style.width_in / columns
    label_size = 0.75 * style.font_size
    # rows of image pixels that the label below a tile needs (1.4 x its font size)
    label_rows = math.ceil(1.4 * label_size / 72 / tile_in * (_IMAGE + _TILE_GAP))
    page = _mosaic(np.asarray(images)[wrong], columns, label_rows)
    title_in = 2.2 * style.font_size / 72 if style.titles and title else 0.0
    height_in = style.width_in * page.shape[0] / page.shape[1] + title_in
    with style.context():
        fig = Figure(figsize=(style.width_in, height_in), dpi=style.dpi)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - title_in / height_in))
        ax.imshow(
            page,
            cmap="gray_r",
            vmin=0,
            vmax=255,
            interpolation="nearest",
            aspect="auto",
            extent=(0, page.shape[1], page.shape[0], 0),
        )
        ax.set_axis_off()
        cell_w, cell_h = _IMAGE + _TILE_GAP, _IMAGE + _TILE_GAP + label_rows
        for i, index in enumerate(wrong):
            row, col = divmod(i, columns)
            ax.text(
                col * cell_w + cell_w / 2,
                row * cell_h + _IMAGE + _TILE_GAP + label_rows / 2,
                f"{labels[index]}$\\rightarrow${predictions[index]}",
                ha="center",
                va="center",
                fontsize=label_size,
            )
        if not wrong.size:
            ax.text(0.5, 0.5, "no misclassified test images", transform=ax.transAxes, ha="center")
        if title_in:
            fig.suptitle(title, y=1.0 - 0.15 * title_in / height_in, va="top")
    return fig


# ---------------------------------------------------------------- from result files


@dataclass(frozen=True)
class PaperOutputs:
    """Where ``write_paper`` writes: the three tables and each figure in every format."""

    table_tex: str | os.PathLike[str]
    table_md: str | os.PathLike[str]
    table_html: str | os.PathLike[str]
    error_vs_epoch: Sequence[str | os.PathLike[str]]
    misclassified: Sequence[str | os.PathLike[str]]
    predictions: Sequence[str | os.PathLike[str]]
    loss_curves: Sequence[str | os.PathLike[str]]


def _test_images(data_dir: str | os.PathLike[str]) -> np.ndarray:
    from .loading import load_split  # torch: only this figure needs it

    images, _ = load_split(data_dir, "test")
    pixels: np.ndarray = images.numpy()
    return pixels


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_paper(
    run_dirs: Mapping[str, str | os.PathLike[str]],
    out: PaperOutputs,
    *,
    style: FigureStyle,
    data_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Write every paper output of the grid whose settings' run directories are given;
    return the best setting. The test images come from ``data_dir``, by default the data
    directory the best setting's metrics.json records."""
    records = {name: load_metrics(d) for name, d in run_dirs.items()}
    rows = summarize(list(records.values()))
    table = grid_table(rows)
    _write_text(out.table_tex, to_latex(table))
    _write_text(out.table_md, to_markdown(table))
    _write_text(out.table_html, to_html(table))

    labels = setting_labels(rows)
    curves = [error_curves(r, label=labels[name]) for name, r in records.items()]
    title = "Test and training error of every setting"
    save_figure(
        error_vs_epoch_figure(curves, style=style, title=title), *out.error_vs_epoch, style=style
    )

    best = str(best_row(rows)["setting"])
    record, run_dir = records[best], Path(run_dirs[best])
    seed = record["seeds"][0]
    truth, predictions = read_predictions(seed_dir(run_dir, seed) / PREDICTIONS_FILE)
    images = _test_images(data_dir if data_dir is not None else record["data"]["dir"])
    shown = f"{best}, seed {seed}"
    fig = misclassified_figure(
        images[: truth.size], truth, predictions, style=style, title=f"Misclassified: {shown}"
    )
    save_figure(fig, *out.misclassified, style=style)
    fig = predictions_figure(truth, predictions, title=shown, jitter_seed=seed, style=style)
    save_figure(fig, *out.predictions, style=style)
    losses = [
        load_loss_curves(d, label=c.label) for d, c in zip(run_dirs.values(), curves, strict=True)
    ]
    fig = grid_loss_figure(losses, title="Training loss of every setting", style=style)
    save_figure(fig, *out.loss_curves, style=style)
    return best
