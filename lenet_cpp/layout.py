"""Every name rule, file name, output path and default of lenet-cpp, defined once.

The Snakefile and its rules, the command line, the Snakemake scripts, the benchmark and the
tests import these instead of spelling them out. Pure Python (no torch, no extension), so
Snakemake can import it while it builds the DAG.

Layout of a results directory (``config.yaml``'s ``results_dir``)::

    runs/<setting>/metrics.json                 one setting's record (written last)
    runs/<setting>/seed<S>/{losses,epochs,predictions}.csv, model.pt
    figures/<setting>/{predictions,loss}.{png,pdf}
    grid/summary.csv, grid/{loss_curves,confusion_best}.{png,pdf}
    paper/table.{tex,md,html}, paper/{error_vs_epoch,misclassified,predictions,loss_curves}.<fmt>
    logs/<rule>[/<setting>].log, benchmarks/<rule>[/<setting>].tsv

The command line's ``--out-dir`` is one run directory (``runs/<setting>/`` above) plus the
setting's figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "ARCHITECTURES",
    "DATA_MANIFEST",
    "DATA_ROOT",
    "DEFAULT_ARCHITECTURE",
    "DEFAULT_DATASET",
    "DEFAULT_OUTPUT",
    "DEFAULT_SCHEDULE",
    "EPOCHS_FILE",
    "FIGURE_FORMATS",
    "GRID_FIGURES",
    "GRID_KEYS",
    "LOSSES_FILE",
    "METRICS_FILE",
    "MNIST_FILES",
    "MODEL_FILE",
    "OUTPUTS",
    "PAPER_FIGURES",
    "PAPER_FORMAT_CHOICES",
    "PAPER_TABLES",
    "PARTIAL_SUFFIX",
    "PREDICTIONS_FILE",
    "PROGRESS_EVERY",
    "SCHEDULES",
    "SEED_FILES",
    "SETTING_FIGURES",
    "SUMMARY_FILE",
    "Kernels",
    "ResultsLayout",
    "checkpoint_file",
    "dataset_dir",
    "default_kernels",
    "figure_paths",
    "metrics_path",
    "run_files",
    "seed_dir",
    "setting_name",
]

# ---------------------------------------------------------------- data

#: The four raw MNIST IDX files, under their official names (Fashion-MNIST, a drop-in
#: replacement, uses the same names; the datasets are in ``lenet_cpp.datasets``).
MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: Written beside the IDX files by the pipeline's data rule: the MD5 of each file it acquired.
DATA_MANIFEST = "manifest.json"
#: The dataset of a grid without ``dataset`` and of the command line without ``--dataset``.
DEFAULT_DATASET = "mnist"
#: Where each dataset's files live: ``<DATA_ROOT>/<dataset>/`` (config.yaml's ``data.dir``).
DATA_ROOT = "data"


def dataset_dir(data_root: str | os.PathLike[str], dataset: str) -> str:
    """The directory of one dataset's IDX files under a data root (``data/mnist``)."""
    return f"{str(data_root).rstrip('/') or '.'}/{dataset}"


# ---------------------------------------------------------------- settings and defaults

#: The grid's keys, in the order of a setting's name.
GRID_KEYS: tuple[str, ...] = (
    "dataset",
    "activation",
    "pooling",
    "learning_rate",
    "batch_size",
    "momentum",
    "weight_decay",
    "architecture",
    "output",
    "schedule",
    "augment",
)
#: The networks (``lenet_cpp.train(architecture=...)``): today's LeNet-5 (the default) and the
#: 1998 paper's; and their outputs (``output=...``; "rbf" only for "lenet5-1998").
ARCHITECTURES: tuple[str, ...] = ("lenet5", "lenet5-1998")
OUTPUTS: tuple[str, ...] = ("softmax", "rbf")
DEFAULT_ARCHITECTURE = ARCHITECTURES[0]
DEFAULT_OUTPUT = OUTPUTS[0]
#: The learning-rate schedules of ``lenet_cpp.train(schedule=...)`` (cpp/schedule.h), and the
#: default: a setting with the default schedule and no augmentation keeps its plain name.
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine", "onecycle", "lecun1998")
DEFAULT_SCHEDULE = "constant"
#: Optimiser steps between progress reports (and checks for Ctrl-C / cancellation).
PROGRESS_EVERY = 100


#: The implementations a run can use (``lenet_cpp.train(kernels=...)``).
Kernels = Literal["fused", "libtorch"]


def default_kernels(device: str) -> Kernels:
    """The kernels a run uses when none are named: the fused ones on the CPU (the same bits on
    every CPU), libtorch's elsewhere (the extension's own default, recorded in metrics.json)."""
    return "fused" if device == "cpu" else "libtorch"


def _number(value: float) -> str:
    """Compact, stable text for a number in a name (0.01 -> "0.01", 1e-05 -> "1e-05")."""
    return f"{value:g}"


def setting_name(
    *,
    dataset: str,
    activation: str,
    pooling: str,
    learning_rate: float,
    batch_size: int,
    momentum: float,
    weight_decay: float,
    architecture: str = DEFAULT_ARCHITECTURE,
    output: str = DEFAULT_OUTPUT,
    schedule: str = DEFAULT_SCHEDULE,
    augment: bool = False,
) -> str:
    """Filesystem-safe name of a grid point (the pipeline's ``{setting}``); epochs excluded.

    The keywords are ``GRID_KEYS``, so ``setting_name(**point)`` names a grid point. Only
    values other than the defaults are named, so the default settings keep their names: a
    dataset other than the default one is a prefix (``fashion-mnist_relu_max_...``); an
    architecture, output or schedule a suffix (``..._wd0_lenet5-1998_rbf_cosine``), and
    augmentation adds ``_aug`` (the schedule's parameters and the distortion ranges are the
    same for the whole grid and not part of the name).
    """
    prefix = "" if dataset == DEFAULT_DATASET else f"{dataset}_"
    extra = "".join(
        f"_{value}"
        for value, default in ((architecture, DEFAULT_ARCHITECTURE), (output, DEFAULT_OUTPUT))
        if value != default
    )
    return (
        f"{prefix}{activation}_{pooling}_lr{_number(learning_rate)}_bs{batch_size}"
        f"_mom{_number(momentum)}_wd{_number(weight_decay)}{extra}"
        f"{'' if schedule == DEFAULT_SCHEDULE else '_' + schedule}{'_aug' if augment else ''}"
    )


# ---------------------------------------------------------------- one run directory

METRICS_FILE = "metrics.json"
LOSSES_FILE = "losses.csv"
EPOCHS_FILE = "epochs.csv"
PREDICTIONS_FILE = "predictions.csv"
MODEL_FILE = "model.pt"
#: The files of each seed's directory.
SEED_FILES: tuple[str, ...] = (LOSSES_FILE, EPOCHS_FILE, PREDICTIONS_FILE, MODEL_FILE)
#: Suffix of a file being written; renamed away when complete.
PARTIAL_SUFFIX = ".partial"


def metrics_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / METRICS_FILE


def checkpoint_file(checkpoint_dir: str | os.PathLike[str], seed: int) -> Path:
    """One seed's checkpoint in a job's checkpoint directory."""
    return Path(checkpoint_dir) / f"seed{seed}.ckpt"


def seed_dir(run_dir: str | os.PathLike[str], seed: int) -> Path:
    return Path(run_dir) / f"seed{seed}"


def run_files(run_dir: str | os.PathLike[str], seeds: Iterable[int]) -> list[Path]:
    """Every file of a finished run directory, metrics.json first."""
    files = [metrics_path(run_dir)]
    files += [seed_dir(run_dir, s) / name for s in seeds for name in SEED_FILES]
    return files


# ---------------------------------------------------------------- figures

FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf")
#: Figures of one setting, and of the whole grid.
SETTING_FIGURES: tuple[str, ...] = ("predictions", "loss")
GRID_FIGURES: tuple[str, ...] = ("loss_curves", "confusion_best")
SUMMARY_FILE = "summary.csv"


#: The formats a paper figure can be written in (config.yaml's ``paper.formats``).
PAPER_FORMAT_CHOICES: tuple[str, ...] = ("pdf", "png", "svg", "pgf")
#: The grid's table in results/paper/: LaTeX (booktabs) to ``\\input``, Markdown, and HTML
#: (the report shows it).
PAPER_TABLES: tuple[str, ...] = ("table.tex", "table.md", "table.html")
#: The figures of results/paper/, in the paper style (one file per ``paper.formats``).
PAPER_FIGURES: tuple[str, ...] = ("error_vs_epoch", "misclassified", "predictions", "loss_curves")


def figure_paths(directory: str | os.PathLike[str], figure: str) -> list[Path]:
    """``<directory>/<figure>.<format>`` for every figure format."""
    return [Path(directory) / f"{figure}.{fmt}" for fmt in FIGURE_FORMATS]


# ---------------------------------------------------------------- a results directory


@dataclass(frozen=True)
class ResultsLayout:
    """The paths of one results directory, as strings Snakemake can use.

    Pass ``"{setting}"`` as a setting to get a wildcard pattern.
    """

    results_dir: str = "results"
    #: The formats of the paper figures (config.yaml's ``paper.formats``).
    paper_formats: tuple[str, ...] = FIGURE_FORMATS

    @property
    def root(self) -> str:
        return self.results_dir.rstrip("/") or "."

    def run_dir(self, setting: str) -> str:
        return f"{self.root}/runs/{setting}"

    def metrics(self, setting: str) -> str:
        return f"{self.run_dir(setting)}/{METRICS_FILE}"

    def seed_files(self, setting: str, name: str, seeds: Iterable[int]) -> list[str]:
        """One file ``name`` per seed of a setting's run directory."""
        return [f"{self.run_dir(setting)}/seed{seed}/{name}" for seed in seeds]

    def run_files(self, setting: str, seeds: Iterable[int]) -> list[str]:
        """Every file a finished run of ``setting`` holds (figures are made from these)."""
        return [self.metrics(setting)] + [
            path for name in SEED_FILES for path in self.seed_files(setting, name, seeds)
        ]

    def checkpoint_dir(self, setting: str) -> str:
        """Where a train job keeps its seeds' end-of-epoch checkpoints: beside, not among,
        its declared outputs, so Snakemake does not delete them before a rerun."""
        return f"{self.root}/checkpoints/{setting}"

    def setting_figure(self, setting: str, figure: str, fmt: str) -> str:
        return f"{self.root}/figures/{setting}/{figure}.{fmt}"

    def grid_file(self, name: str) -> str:
        return f"{self.root}/grid/{name}"

    def grid_figure(self, figure: str, fmt: str) -> str:
        return self.grid_file(f"{figure}.{fmt}")

    @property
    def summary(self) -> str:
        return self.grid_file(SUMMARY_FILE)

    def paper_file(self, name: str) -> str:
        return f"{self.root}/paper/{name}"

    def paper_figure(self, figure: str, fmt: str) -> str:
        return self.paper_file(f"{figure}.{fmt}")

    def paper(self) -> list[str]:
        """The paper outputs: the tables, then every figure in every paper format."""
        tables = [self.paper_file(name) for name in PAPER_TABLES]
        figures = [self.paper_figure(f, fmt) for f in PAPER_FIGURES for fmt in self.paper_formats]
        return [*tables, *figures]

    def log(self, rule: str, setting: str | None = None) -> str:
        """One log per job, under the results directory (runs never share logs)."""
        return f"{self.root}/logs/{rule}{'' if setting is None else '/' + setting}.log"

    def benchmark(self, rule: str, setting: str | None = None) -> str:
        return f"{self.root}/benchmarks/{rule}{'' if setting is None else '/' + setting}.tsv"

    def figures(self, settings: Iterable[str]) -> list[str]:
        """Every figure and the summary table."""
        settings = list(settings)
        per_setting = [
            self.setting_figure(s, figure, fmt)
            for s in settings
            for figure in SETTING_FIGURES
            for fmt in FIGURE_FORMATS
        ]
        grid = [self.grid_figure(figure, fmt) for figure in GRID_FIGURES for fmt in FIGURE_FORMATS]
        return [*per_setting, *grid, self.summary]

    def targets(self, settings: Sequence[str], seeds: Sequence[int]) -> list[str]:
        """The complete result set: every figure and every file a figure is made from.

        The default target: a run directory emptied or half-deleted reschedules its job.
        """
        runs = [path for s in settings for path in self.run_files(s, seeds)]
        return [*runs, *self.figures(settings), *self.paper()]
