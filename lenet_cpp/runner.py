"""Train the seed replicates of one setting concurrently, in Python threads.

Each replicate calls the C++ ``lenet_cpp.train`` (which releases the GIL), so
``n`` replicates use up to ``n`` cores while sharing one normalised copy of the
data. A job with ``T`` threads trains up to ``T`` seeds at once with
``T // runs`` intra-op threads each, so runs x threads never exceed ``T``
(``ThreadPlan``). Results are keyed by seed and depend only on the data, the
hyperparameters, the seed and the per-run thread count, never on scheduling:
running the replicates one after another gives bit-identical numbers.

If one replicate fails, or the calling thread is interrupted (Ctrl-C), a stop
event is set; every other replicate raises ``RunCancelled`` from its progress
callback at its next report (every ``progress_every`` steps) and the original
error propagates to the caller.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass

import torch

import lenet_cpp

from . import provenance
from .mnist import load_mnist
from .results import build_metrics, remove_partials, write_setting

__all__ = [
    "Hyperparameters",
    "ProgressFn",
    "RunCancelled",
    "ThreadPlan",
    "TrainData",
    "run_setting",
    "train_seeds",
]

LOG = logging.getLogger("lenet_cpp.runner")

#: Called as ``progress(seed, p)`` from the thread training ``seed`` (with the GIL held).
ProgressFn = Callable[[int, "lenet_cpp.Progress"], None]

_POLL_S = 0.2
_THREAD_PREFIX = "lenet-seed"


class RunCancelled(RuntimeError):
    """Raised inside a replicate's progress callback once the stop event is set."""


def _number(value: float) -> str:
    """Compact, stable text for a number in a setting name (0.01 -> "0.01", 1e-05 -> "1e-05")."""
    return f"{value:g}"


@dataclass(frozen=True)
class Hyperparameters:
    """One grid point: everything ``lenet_cpp.train`` needs except seed, data and threads."""

    activation: str = "relu"
    pooling: str = "max"
    learning_rate: float = 0.01
    batch_size: int = 64
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Hyperparameters:
        """Build from a dict with (a subset of) the field names; unknown keys are an error."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """Filesystem-safe name of the grid point (the pipeline's ``setting``); epochs excluded."""
        return (
            f"{self.activation}_{self.pooling}_lr{_number(self.learning_rate)}"
            f"_bs{self.batch_size}_mom{_number(self.momentum)}_wd{_number(self.weight_decay)}"
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def train_kwargs(self) -> dict[str, object]:
        """Keyword arguments of ``lenet_cpp.train`` (epochs and learning rate included)."""
        return {
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "activation": self.activation,
            "pooling": self.pooling,
        }

    def steps_per_epoch(self, n_train: int) -> int:
        return math.ceil(n_train / self.batch_size)


@dataclass(frozen=True)
class TrainData:
    """Train and test split, images normalised once (float32 [N,1,28,28]) and shared by all runs."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def from_arrays(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        *,
        train_subset: int | None = None,
        test_subset: int | None = None,
    ) -> TrainData:
        """Normalise uint8 images and keep the first ``*_subset`` samples (None: all)."""
        (x, y), (xt, yt) = train, test
        x, y = x[:train_subset], y[:train_subset]
        xt, yt = xt[:test_subset], yt[:test_subset]
        return cls(lenet_cpp.normalize(x), y.long(), lenet_cpp.normalize(xt), yt.long())

    @classmethod
    def load(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        train_subset: int | None = None,
        test_subset: int | None = None,
    ) -> TrainData:
        """Read the MNIST IDX files in ``data_dir`` (see ``lenet_cpp.mnist.load_mnist``)."""
        data = cls.from_arrays(
            load_mnist(data_dir, "train"),
            load_mnist(data_dir, "test"),
            train_subset=train_subset,
            test_subset=test_subset,
        )
        LOG.info("loaded %d train / %d test images from %s", data.n_train, data.n_test, data_dir)
        return data

    @property
    def n_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_labels.shape[0])


@dataclass(frozen=True)
class ThreadPlan:
    """How a job's threads are shared: ``concurrent_runs`` x ``threads_per_run`` <= job threads."""

    concurrent_runs: int
    threads_per_run: int

    @classmethod
    def for_job(cls, job_threads: int, n_seeds: int, *, concurrent: bool = True) -> ThreadPlan:
        """Up to ``job_threads`` seeds at once, each with ``job_threads // runs`` threads.

        ``concurrent=False`` trains one seed at a time with all the threads.
        """
        if job_threads < 1 or n_seeds < 1:
            raise ValueError(
                f"need job_threads >= 1 and n_seeds >= 1, got {job_threads}, {n_seeds}"
            )
        runs = min(n_seeds, job_threads) if concurrent else 1
        return cls(concurrent_runs=runs, threads_per_run=max(1, job_threads // runs))


def _train_one(
    data: TrainData,
    hp: Hyperparameters,
    seed: int,
    *,
    threads: int,
    device: str,
    progress: ProgressFn | None,
    progress_every: int,
    stop: threading.Event,
) -> lenet_cpp.TrainResult:
    def on_progress(p: lenet_cpp.Progress) -> None:
        if stop.is_set():
            raise RunCancelled(f"seed {seed} stopped at step {p.step}/{p.total_steps}")
        if progress is not None:
            progress(seed, p)

    if stop.is_set():  # a queued run whose siblings already failed
        raise RunCancelled(f"seed {seed} not started")
    try:
        return lenet_cpp.train(
            data.train_images,
            data.train_labels,
            **hp.train_kwargs(),
            seed=seed,
            threads=threads,
            device=device,
            test_data=data.test_images,
            test_targets=data.test_labels,
            progress=on_progress,
            progress_every=progress_every,
        )
    except BaseException:
        stop.set()  # stop the siblings as early as possible
        raise


def _root_error(futures: Sequence[Future[lenet_cpp.TrainResult]]) -> BaseException:
    """The error to report: a real failure rather than the cancellations it caused."""
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    real = [e for e in errors if not isinstance(e, RunCancelled)]
    return (real or errors)[0]


def _run_concurrently(
    seeds: Sequence[int],
    run: Callable[[int], lenet_cpp.TrainResult],
    stop: threading.Event,
    max_workers: int,
) -> dict[int, lenet_cpp.TrainResult]:
    futures: dict[int, Future[lenet_cpp.TrainResult]] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=_THREAD_PREFIX) as pool:
        try:
            for seed in seeds:
                futures[seed] = pool.submit(run, seed)
            pending, failed = set(futures.values()), False
            while pending and not failed:
                done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_EXCEPTION)
                failed = any(f.exception() is not None for f in done)
        except BaseException:  # KeyboardInterrupt in the calling thread, even mid-submit
            stop.set()  # runs not yet started see it and do not start
            wait(futures.values())
            raise
        if failed:
            stop.set()
            wait(futures.values())
            raise _root_error(list(futures.values()))
        return {seed: futures[seed].result() for seed in seeds}


def train_seeds(
    data: TrainData,
    hp: Hyperparameters,
    seeds: Sequence[int],
    *,
    threads_per_run: int = 1,
    concurrent_runs: int | None = None,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    progress_every: int = 50,
    stop: threading.Event | None = None,
) -> dict[int, lenet_cpp.TrainResult]:
    """Train one replicate per seed; return their results keyed by seed, in ``seeds`` order.

    Up to ``concurrent_runs`` seeds (None: all) train at once, each in its own Python
    thread; 1 (or a single seed) trains them one after another in the calling thread,
    where Ctrl-C interrupts the C++ loop directly. ``threads_per_run`` is the
    intra-op thread count of each run (see ``ThreadPlan``). Setting ``stop`` from
    outside cancels the runs (``RunCancelled``).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    stop = stop if stop is not None else threading.Event()

    def run(seed: int) -> lenet_cpp.TrainResult:
        return _train_one(
            data,
            hp,
            seed,
            threads=threads_per_run,
            device=device,
            progress=progress,
            progress_every=progress_every,
            stop=stop,
        )

    workers = min(len(seeds), concurrent_runs or len(seeds))
    LOG.info(
        "training %s with seeds %s, %d at a time, %d intra-op thread(s) each",
        hp.name,
        seeds,
        workers,
        threads_per_run,
    )
    if workers == 1:
        return {seed: run(seed) for seed in seeds}
    return _run_concurrently(seeds, run, stop, workers)


def run_setting(
    hp: Hyperparameters,
    seeds: Sequence[int],
    data: TrainData,
    out_dir: str | os.PathLike[str],
    *,
    job_threads: int,
    concurrent: bool = True,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    progress_every: int = 50,
    data_info: Mapping[str, object] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Train every seed of one setting and write its result files; return the metrics record.

    ``job_threads`` are shared as ``ThreadPlan.for_job`` says (``concurrent=False``:
    one seed at a time with all threads). Leftover ``*.partial`` files of a killed
    earlier attempt are removed from ``out_dir`` first; nothing is written before
    training has finished (see ``lenet_cpp.results`` for the layout).
    ``source_dir`` is the checkout whose git commit is recorded (default: this package's).
    """
    for stale in remove_partials(out_dir):
        LOG.warning("removed %s, left by an interrupted run", stale)
    plan = ThreadPlan.for_job(job_threads, len(seeds), concurrent=concurrent)
    started_at, start = provenance.utc_now(), time.perf_counter()
    results = train_seeds(
        data,
        hp,
        seeds,
        threads_per_run=plan.threads_per_run,
        concurrent_runs=plan.concurrent_runs,
        device=device,
        progress=progress,
        progress_every=progress_every,
    )
    wall = time.perf_counter() - start
    checkout = source_dir if source_dir is not None else os.path.dirname(__file__)
    record = build_metrics(
        hp,
        results,
        data,
        job_wall_time_s=wall,
        run={
            "job_threads": job_threads,
            "threads_per_run": plan.threads_per_run,
            "concurrent_runs": plan.concurrent_runs,
            "device": device,
        },
        data_info=dict(data_info or {}),
        provenance={
            "started_at": started_at,
            "finished_at": provenance.utc_now(),
            "git": provenance.git_info(checkout),
            "environment": provenance.environment(),
        },
    )
    write_setting(out_dir, hp, results, data, record)
    accuracy = record["results"]["test_accuracy"]  # type: ignore[index]
    LOG.info(
        "%s: test accuracy %.4f +- %.4f over %d seed(s), %.1f s",
        hp.name,
        accuracy["mean"],
        accuracy["std"],
        len(seeds),
        wall,
    )
    return record
