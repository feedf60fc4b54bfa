"""Result files of a training setting and of a grid, written atomically.

Layout of one setting's directory (the pipeline's ``results/runs/<setting>/``,
the CLI's ``--out-dir``)::

    metrics.json              settings, per-seed numbers, timing, provenance (written last)
    seed<S>/losses.csv        step, epoch, loss: the training loss of every optimiser step
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
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    import lenet_cpp

    from .runner import Hyperparameters, TrainData

__all__ = [
    "METRICS_FILE",
    "PARTIAL_SUFFIX",
    "SEED_FILES",
    "SUMMARY_COLUMNS",
    "atomic_path",
    "best_row",
    "build_metrics",
    "confusion_matrix",
    "load_metrics",
    "read_losses",
    "read_predictions",
    "read_summary",
    "remove_partials",
    "seed_dir",
    "setting_outputs",
    "stats",
    "summarize",
    "write_json",
    "write_seed_outputs",
    "write_setting",
    "write_summary",
]

METRICS_FILE = "metrics.json"
SEED_FILES = ("losses.csv", "epochs.csv", "predictions.csv", "model.pt")
PARTIAL_SUFFIX = ".partial"
METRICS_FORMAT = "lenet_cpp.metrics"
METRICS_VERSION = 1
N_CLASSES = 10

SUMMARY_COLUMNS = (
    "rank",
    "setting",
    "activation",
    "pooling",
    "learning_rate",
    "batch_size",
    "momentum",
    "weight_decay",
    "epochs",
    "n_seeds",
    "test_accuracy_mean",
    "test_accuracy_std",
    "final_train_loss_mean",
    "final_train_loss_std",
    "final_test_loss_mean",
    "final_test_loss_std",
    "train_time_s_mean",
    "job_wall_time_s",
    "images_per_second",
)


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


def _write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Iterator[list]) -> None:
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


def seed_dir(run_dir: str | os.PathLike[str], seed: int) -> Path:
    return Path(run_dir) / f"seed{seed}"


def setting_outputs(run_dir: str | os.PathLike[str], seeds: Sequence[int]) -> list[Path]:
    """Every file ``write_setting`` produces for these seeds, metrics.json first."""
    files = [Path(run_dir) / METRICS_FILE]
    files += [seed_dir(run_dir, s) / name for s in seeds for name in SEED_FILES]
    return files


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """int64 [10, 10] counts; rows are true labels, columns predictions."""
    index = labels.astype(np.int64) * N_CLASSES + predictions.astype(np.int64)
    counts = np.bincount(index, minlength=N_CLASSES * N_CLASSES)
    return counts.reshape(N_CLASSES, N_CLASSES)


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min and max."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "min": float(arr.min()), "max": float(arr.max())}


def _predictions(result: lenet_cpp.TrainResult) -> np.ndarray:
    if result.test_predictions is None:
        raise ValueError("the training result has no test predictions (train with a test set)")
    return result.test_predictions.numpy()


def write_seed_outputs(
    directory: str | os.PathLike[str],
    result: lenet_cpp.TrainResult,
    test_labels: torch.Tensor,
    steps_per_epoch: int,
) -> None:
    """Write one replicate's losses, per-epoch metrics, test predictions and model."""
    out = Path(directory)
    losses = result.step_losses.tolist()
    _write_csv(
        out / "losses.csv",
        ("step", "epoch", "loss"),
        ([i + 1, i // steps_per_epoch + 1, loss] for i, loss in enumerate(losses)),
    )
    columns = (result.train_loss, result.train_accuracy, result.test_loss, result.test_accuracy)
    _write_csv(
        out / "epochs.csv",
        ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"),
        ([e + 1, *values] for e, values in enumerate(zip(*columns, strict=True))),
    )
    labels, predictions = test_labels.numpy(), _predictions(result)
    _write_csv(
        out / "predictions.csv",
        ("index", "label", "prediction"),
        ([i, int(t), int(p)] for i, (t, p) in enumerate(zip(labels, predictions, strict=True))),
    )
    with atomic_path(out / "model.pt") as tmp:
        result.model.save(str(tmp))


def _seed_record(result: lenet_cpp.TrainResult, test_labels: torch.Tensor) -> dict[str, object]:
    labels, predictions = test_labels.numpy(), _predictions(result)
    losses = result.step_losses
    return {
        "steps": int(losses.shape[0]),
        "final_step_loss": float(losses[-1]) if losses.numel() else math.nan,
        "train_loss": result.train_loss,
        "train_accuracy": result.train_accuracy,
        "test_loss": result.test_loss,
        "test_accuracy": result.test_accuracy,
        "misclassified": int((labels != predictions).sum()),
        "confusion": confusion_matrix(labels, predictions).tolist(),
    }


def build_metrics(
    hp: Hyperparameters,
    results: Mapping[int, lenet_cpp.TrainResult],
    data: TrainData,
    *,
    job_wall_time_s: float,
    run: Mapping[str, object],
    data_info: Mapping[str, object],
    provenance: Mapping[str, object],
) -> dict[str, object]:
    """The metrics.json record of one setting (see the module docstring)."""
    seeds = list(results)
    per_seed = {str(s): _seed_record(r, data.test_labels) for s, r in results.items()}
    last = {
        key: [getattr(results[s], key)[-1] for s in seeds]
        for key in ("train_loss", "test_loss", "test_accuracy")
    }
    images = len(seeds) * hp.epochs * data.n_train
    timing = {
        "job_wall_time_s": job_wall_time_s,
        "images_per_second": images / job_wall_time_s if job_wall_time_s > 0 else None,
        "per_seed": {
            str(s): {
                "wall_time_s": r.wall_time_s,
                "train_time_s": r.train_time_s,
                "images_per_second": r.images_per_second,
            }
            for s, r in results.items()
        },
    }
    return {
        "format": METRICS_FORMAT,
        "version": METRICS_VERSION,
        "setting": {"name": hp.name, **hp.as_dict()},
        "seeds": seeds,
        "data": {"train_size": data.n_train, "test_size": data.n_test, **data_info},
        "results": {
            "test_accuracy": stats(last["test_accuracy"]),
            "final_train_loss": stats(last["train_loss"]),
            "final_test_loss": stats(last["test_loss"]),
            "per_seed": per_seed,
        },
        "timing": timing,
        "run": dict(run),
        "provenance": dict(provenance),
    }


def write_setting(
    run_dir: str | os.PathLike[str],
    hp: Hyperparameters,
    results: Mapping[int, lenet_cpp.TrainResult],
    data: TrainData,
    record: Mapping[str, object],
) -> None:
    """Write every seed's files, then ``record`` (from ``build_metrics``) as metrics.json last."""
    steps_per_epoch = hp.steps_per_epoch(data.n_train)
    for seed, result in results.items():
        write_seed_outputs(seed_dir(run_dir, seed), result, data.test_labels, steps_per_epoch)
    write_json(Path(run_dir) / METRICS_FILE, record)


def load_metrics(path: str | os.PathLike[str]) -> dict[str, object]:
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("format") != METRICS_FORMAT:
        raise ValueError(f"{path} is not a lenet-cpp metrics.json file")
    return record


def read_losses(path: str | os.PathLike[str]) -> np.ndarray:
    """The per-step training losses in a losses.csv, float64 [steps]."""
    with open(path, encoding="utf-8", newline="") as f:
        return np.array([float(row["loss"]) for row in csv.DictReader(f)], dtype=np.float64)


def read_predictions(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predictions) int64 arrays from a predictions.csv."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = [(int(r["label"]), int(r["prediction"])) for r in csv.DictReader(f)]
    table = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return table[:, 0], table[:, 1]


# ---------------------------------------------------------------- grid summary


def _summary_row(record: Mapping[str, object]) -> dict[str, object]:
    setting: dict = record["setting"]  # type: ignore[assignment]
    res: dict = record["results"]  # type: ignore[assignment]
    timing: dict = record["timing"]  # type: ignore[assignment]
    train_times = [t["train_time_s"] for t in timing["per_seed"].values()]
    return {
        "setting": setting["name"],
        **{k: setting[k] for k in SUMMARY_COLUMNS[2:9]},
        "n_seeds": len(record["seeds"]),  # type: ignore[arg-type]
        "test_accuracy_mean": res["test_accuracy"]["mean"],
        "test_accuracy_std": res["test_accuracy"]["std"],
        "final_train_loss_mean": res["final_train_loss"]["mean"],
        "final_train_loss_std": res["final_train_loss"]["std"],
        "final_test_loss_mean": res["final_test_loss"]["mean"],
        "final_test_loss_std": res["final_test_loss"]["std"],
        "train_time_s_mean": float(np.mean(train_times)),
        "job_wall_time_s": timing["job_wall_time_s"],
        "images_per_second": timing["images_per_second"],
    }


def summarize(records: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """One row per setting, in the given order; ``rank`` 1 is the best (see ``best_row``)."""
    rows = [_summary_row(r) for r in records]
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            -rows[i]["test_accuracy_mean"],  # type: ignore[operator]
            rows[i]["final_test_loss_mean"],
            rows[i]["setting"],
        ),
    )
    for rank, i in enumerate(order, start=1):
        rows[i]["rank"] = rank
    return [{c: row[c] for c in SUMMARY_COLUMNS} for row in rows]


def best_row(rows: Sequence[Mapping[str, object]]) -> Mapping[str, object]:
    """Highest mean test accuracy; ties go to the lower final test loss, then the name."""
    return min(rows, key=lambda r: r["rank"])  # type: ignore[arg-type, return-value]


def write_summary(path: str | os.PathLike[str], rows: Sequence[Mapping[str, object]]) -> None:
    _write_csv(path, SUMMARY_COLUMNS, ([row[c] for c in SUMMARY_COLUMNS] for row in rows))


def read_summary(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
