"""Result files of a training setting and of a grid, written atomically.

Files of one setting's directory (the pipeline's ``results/runs/<setting>/``, the CLI's
``--out-dir``; the paths are defined in ``lenet_cpp.layout``)::

    metrics.json              settings, per-seed numbers, timing, provenance (written last)
    seed<S>/losses.csv        step, epoch, loss, learning_rate: every optimiser step's training
                              loss and the learning rate it used (its schedule)
    seed<S>/epochs.csv        epoch, train_loss, train_accuracy, test_loss, test_accuracy
    seed<S>/predictions.csv   index, label, prediction for every test image
    seed<S>/model.pt          the trained model (``lenet_cpp.LeNet5.load``)

``metrics.json`` keeps the deterministic numbers (``results``: equal on every
rerun with the same data, settings, seeds and threads per run) apart from the
wall-clock ones (``timing``) and from ``provenance``, so reruns can be compared
on ``results`` alone. Every file is written under ``<name>.partial`` and renamed
into place when complete; ``remove_partials`` clears leftovers of a killed job.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np

from .layout import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_DATASET,
    DEFAULT_OUTPUT,
    DEFAULT_SCHEDULE,
    EPOCHS_FILE,
    LOSSES_FILE,
    MODEL_FILE,
    PARTIAL_SUFFIX,
    PREDICTIONS_FILE,
    metrics_path,
    seed_dir,
)

if TYPE_CHECKING:
    import torch

    from . import TrainResult
    from .setting import Hyperparameters, TrainData

__all__ = [
    "DEFAULT_DATASET",
    "SUMMARY_COLUMNS",
    "MetricsRecord",
    "RunInfo",
    "SeedResults",
    "Stats",
    "SummaryRow",
    "atomic_path",
    "best_row",
    "build_metrics",
    "confusion_matrix",
    "dataset_of",
    "load_metrics",
    "read_learning_rates",
    "read_losses",
    "read_predictions",
    "read_summary",
    "remove_partials",
    "stats",
    "summarize",
    "write_json",
    "write_seed_outputs",
    "write_setting",
    "write_summary",
]

METRICS_FORMAT = "lenet_cpp.metrics"
METRICS_VERSION = 1
N_CLASSES = 10


class Stats(TypedDict):
    mean: float
    std: float
    min: float
    max: float


class SeedResults(TypedDict):
    """The deterministic numbers of one seed (lists: one value per epoch)."""

    steps: int
    final_step_loss: float
    train_loss: list[float]
    train_accuracy: list[float]
    test_loss: list[float]
    test_accuracy: list[float]
    misclassified: int
    confusion: list[list[int]]
    diverged_at_step: int  # first step with a non-finite loss; 0: none


class Results(TypedDict):
    """The deterministic part of metrics.json: equal on every rerun."""

    status: str  # "ok", or "diverged" when a seed's loss stopped being finite
    test_accuracy: Stats
    final_train_loss: Stats
    final_test_loss: Stats
    per_seed: dict[str, SeedResults]


class SeedTiming(TypedDict):
    wall_time_s: float
    train_time_s: float
    images_per_second: float
    resumed_from_epoch: int  # epochs restored from a checkpoint of a killed attempt (0: none)


class Timing(TypedDict):
    job_wall_time_s: float
    images_per_second: float | None
    per_seed: dict[str, SeedTiming]


class RunInfo(TypedDict):
    """How a job ran its seeds (see ``lenet_cpp.seeds.ThreadPlan``)."""

    job_threads: int
    threads_per_run: int
    concurrent_runs: int
    device: str
    kernels: str  # "fused" or "libtorch"


class GridPoint(TypedDict):
    """A setting's grid axes and epochs (summary.csv's columns of a setting)."""

    dataset: str
    activation: str
    pooling: str
    learning_rate: float
    batch_size: int
    momentum: float
    weight_decay: float
    schedule: str
    augment: bool
    epochs: int
    architecture: str
    output: str


class SettingRecord(GridPoint):
    """A setting's hyperparameters (``Hyperparameters.as_dict()``) and name."""

    name: str
    milestones: list[int]
    gamma: float
    warmup: float | None
    final_learning_rate: float | None
    augment_ranges: dict[str, float] | None


class MetricsRecord(TypedDict):
    """The content of one metrics.json."""

    format: str
    version: int
    setting: SettingRecord
    seeds: list[int]
    data: dict[str, Any]
    results: Results
    timing: Timing
    run: RunInfo
    provenance: dict[str, Any]


class _RankedSetting(TypedDict):
    rank: int
    setting: str
    status: str


class _SettingNumbers(TypedDict):
    n_seeds: int
    test_accuracy_mean: float
    test_accuracy_std: float
    final_train_loss_mean: float
    final_train_loss_std: float
    final_test_loss_mean: float
    final_test_loss_std: float
    train_time_s_mean: float
    job_wall_time_s: float
    images_per_second: float | None


class SummaryRow(_RankedSetting, GridPoint, _SettingNumbers):
    """One row of summary.csv; its columns, in this order, are ``SUMMARY_COLUMNS``."""


SUMMARY_COLUMNS: tuple[str, ...] = tuple(SummaryRow.__annotations__)


# ---------------------------------------------------------------- atomic files


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` when the block succeeds.

    On any error (Ctrl-C included) the temporary file is removed and ``path`` is
    left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + PARTIAL_SUFFIX)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], data: object) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterator[Sequence[object]]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_text(path, buffer.getvalue())


def remove_partials(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete ``*.partial`` files left under ``directory`` by a killed writer; return them."""
    root = Path(directory)
    stale = sorted(root.rglob(f"*{PARTIAL_SUFFIX}")) if root.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------- one setting


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """int64 [10, 10] counts; rows are true labels, columns predictions."""
    index = labels.astype(np.int64) * N_CLASSES + predictions.astype(np.int64)
    counts = np.bincount(index, minlength=N_CLASSES * N_CLASSES)
    return counts.reshape(N_CLASSES, N_CLASSES)


def stats(values: Sequence[float]) -> Stats:
    """Mean, sample standard deviation (0 for one value), min and max."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return Stats(mean=float(arr.mean()), std=std, min=float(arr.min()), max=float(arr.max()))


def _predictions(result: TrainResult) -> np.ndarray:
    if result.test_predictions is None:
        raise ValueError("the training result has no test predictions (train with a test set)")
    return result.test_predictions.numpy()


def write_seed_outputs(
    directory: str | os.PathLike[str],
    result: TrainResult,
    test_labels: torch.Tensor,
    steps_per_epoch: int,
) -> None:
    """Write one replicate's losses, per-epoch metrics, test predictions and model."""
    out = Path(directory)
    losses, rates = result.step_losses.tolist(), result.step_learning_rates.tolist()
    _write_csv(
        out / LOSSES_FILE,
        ("step", "epoch", "loss", "learning_rate"),
        (
            [i + 1, i // steps_per_epoch + 1, loss, rate]
            for i, (loss, rate) in enumerate(zip(losses, rates, strict=True))
        ),
    )
    columns = (result.train_loss, result.train_accuracy, result.test_loss, result.test_accuracy)
    _write_csv(
        out / EPOCHS_FILE,
        ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"),
        ([e + 1, *values] for e, values in enumerate(zip(*columns, strict=True))),
    )
    labels, predictions = test_labels.numpy(), _predictions(result)
    _write_csv(
        out / PREDICTIONS_FILE,
        ("index", "label", "prediction"),
        ([i, int(t), int(p)] for i, (t, p) in enumerate(zip(labels, predictions, strict=True))),
    )
    out.mkdir(parents=True, exist_ok=True)
    result.model.save(out / MODEL_FILE)  # written atomically by the extension


def _seed_record(result: TrainResult, test_labels: torch.Tensor) -> SeedResults:
    labels, predictions = test_labels.numpy(), _predictions(result)
    losses = result.step_losses
    return SeedResults(
        steps=int(losses.shape[0]),
        final_step_loss=float(losses[-1]) if losses.numel() else math.nan,
        train_loss=result.train_loss,
        train_accuracy=result.train_accuracy,
        test_loss=result.test_loss,
        test_accuracy=result.test_accuracy,
        misclassified=int((labels != predictions).sum()),
        confusion=confusion_matrix(labels, predictions).tolist(),
        diverged_at_step=result.diverged_at_step,
    )


def build_metrics(
    hp: Hyperparameters,
    results: Mapping[int, TrainResult],
    data: TrainData,
    *,
    job_wall_time_s: float,
    run: RunInfo,
    data_info: Mapping[str, object],
    provenance: Mapping[str, object],
) -> MetricsRecord:
    """The metrics.json record of one setting (see the module docstring)."""
    seeds = list(results)
    per_seed = {str(s): _seed_record(r, data.test_labels) for s, r in results.items()}
    last = {
        key: [getattr(results[s], key)[-1] for s in seeds]
        for key in ("train_loss", "test_loss", "test_accuracy")
    }
    images = len(seeds) * hp.epochs * data.n_train
    timing = Timing(
        job_wall_time_s=job_wall_time_s,
        images_per_second=images / job_wall_time_s if job_wall_time_s > 0 else None,
        per_seed={
            str(s): SeedTiming(
                wall_time_s=r.wall_time_s,
                train_time_s=r.train_time_s,
                images_per_second=r.images_per_second,
                resumed_from_epoch=r.resumed_from_epoch,
            )
            for s, r in results.items()
        },
    )
    setting = cast(SettingRecord, {"name": hp.name, **hp.as_dict()})
    setting["milestones"] = list(hp.milestones)
    return MetricsRecord(
        format=METRICS_FORMAT,
        version=METRICS_VERSION,
        setting=setting,
        seeds=seeds,
        data={"train_size": data.n_train, "test_size": data.n_test, **data_info},
        results=Results(
            status="diverged" if any(r.diverged_at_step for r in results.values()) else "ok",
            test_accuracy=stats(last["test_accuracy"]),
            final_train_loss=stats(last["train_loss"]),
            final_test_loss=stats(last["test_loss"]),
            per_seed=per_seed,
        ),
        timing=timing,
        run=RunInfo(**run),
        provenance=dict(provenance),
    )


def write_setting(
    run_dir: str | os.PathLike[str],
    hp: Hyperparameters,
    results: Mapping[int, TrainResult],
    data: TrainData,
    record: MetricsRecord,
) -> None:
    """Write every seed's files, then ``record`` (from ``build_metrics``) as metrics.json last."""
    steps_per_epoch = hp.steps_per_epoch(data.n_train)
    for seed, result in results.items():
        write_seed_outputs(seed_dir(run_dir, seed), result, data.test_labels, steps_per_epoch)
    write_json(metrics_path(run_dir), record)


def load_metrics(path: str | os.PathLike[str]) -> MetricsRecord:
    """Read a metrics.json (``path``: the file, or the run directory holding it)."""
    path = Path(path)
    if path.is_dir():
        path = metrics_path(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("format") != METRICS_FORMAT:
        raise ValueError(f"{path} is not a lenet-cpp metrics.json file")
    return cast(MetricsRecord, record)


def read_losses(path: str | os.PathLike[str]) -> np.ndarray:
    """The per-step training losses in a losses.csv, float64 [steps]."""
    with open(path, encoding="utf-8", newline="") as f:
        return np.array([float(row["loss"]) for row in csv.DictReader(f)], dtype=np.float64)


def read_learning_rates(path: str | os.PathLike[str]) -> np.ndarray:
    """The learning rate of every step in a losses.csv, float64 [steps] (files written before
    schedules existed have none: an empty array)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "learning_rate" not in rows[0]:
        return np.zeros(0, dtype=np.float64)
    return np.array([float(row["learning_rate"]) for row in rows], dtype=np.float64)


def read_predictions(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) int64 arrays from a predictions.csv."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = [(int(r["label"]), int(r["prediction"])) for r in csv.DictReader(f)]
    table = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return table[:, 0], table[:, 1]


# ---------------------------------------------------------------- grid summary


def _summary_row(record: MetricsRecord, rank: int) -> SummaryRow:
    setting, res, timing = record["setting"], record["results"], record["timing"]
    train_times = [t["train_time_s"] for t in timing["per_seed"].values()]
    return SummaryRow(
        rank=rank,
        setting=setting["name"],
        status=res.get("status", "ok"),  # metrics.json files from before statuses: ok
        dataset=setting.get("dataset", DEFAULT_DATASET),  # files from before datasets: MNIST
        activation=setting["activation"],
        pooling=setting["pooling"],
        learning_rate=setting["learning_rate"],
        batch_size=setting["batch_size"],
        momentum=setting["momentum"],
        weight_decay=setting["weight_decay"],
        schedule=setting.get("schedule", DEFAULT_SCHEDULE),  # records from before schedules
        augment=setting.get("augment", False),
        epochs=setting["epochs"],
        # metrics.json files from before architectures: today's network
        architecture=setting.get("architecture", DEFAULT_ARCHITECTURE),
        output=setting.get("output", DEFAULT_OUTPUT),
        n_seeds=len(record["seeds"]),
        test_accuracy_mean=res["test_accuracy"]["mean"],
        test_accuracy_std=res["test_accuracy"]["std"],
        final_train_loss_mean=res["final_train_loss"]["mean"],
        final_train_loss_std=res["final_train_loss"]["std"],
        final_test_loss_mean=res["final_test_loss"]["mean"],
        final_test_loss_std=res["final_test_loss"]["std"],
        train_time_s_mean=float(np.mean(train_times)),
        job_wall_time_s=timing["job_wall_time_s"],
        images_per_second=timing["images_per_second"],
    )


def _ranking_key(record: MetricsRecord) -> tuple[bool, float, float, str]:
    res = record["results"]
    return (
        res.get("status", "ok") != "ok",
        -res["test_accuracy"]["mean"],
        res["final_test_loss"]["mean"],
        record["setting"]["name"],
    )


def summarize(records: Sequence[MetricsRecord]) -> list[SummaryRow]:
    """One row per setting, in the given order; ``rank`` 1 is the best (see ``best_row``).

    Diverged settings rank last. The best setting has the highest mean test accuracy; ties
    go to the lower final test loss, then the name.
    """
    order = sorted(range(len(records)), key=lambda i: _ranking_key(records[i]))
    ranks = {i: rank for rank, i in enumerate(order, start=1)}
    return [_summary_row(r, ranks[i]) for i, r in enumerate(records)]


def dataset_of(row: Mapping[str, object]) -> str:
    """The dataset of a summary row: its ``dataset`` column, else ``DEFAULT_DATASET`` (rows
    written before datasets were a grid axis)."""
    return str(row.get("dataset", DEFAULT_DATASET))


def best_row(rows: Sequence[SummaryRow]) -> SummaryRow:
    """The row ranked first."""
    return min(rows, key=lambda r: r["rank"])


def write_summary(path: str | os.PathLike[str], rows: Sequence[SummaryRow]) -> None:
    plain = [cast(Mapping[str, object], row) for row in rows]
    _write_csv(path, SUMMARY_COLUMNS, ([row[c] for c in SUMMARY_COLUMNS] for row in plain))


def read_summary(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
