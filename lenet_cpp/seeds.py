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
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .layout import PROGRESS_EVERY, Kernels, checkpoint_file

if TYPE_CHECKING:
    from . import Progress, TrainResult
    from .setting import Hyperparameters, TrainData

__all__ = ["THREAD_PREFIX", "ProgressFn", "RunCancelled", "ThreadPlan", "train_seeds"]

LOG = logging.getLogger("lenet_cpp.seeds")

#: Called as ``progress(seed, p)`` from the thread training ``seed`` (with the GIL held).
ProgressFn = Callable[[int, "Progress"], None]

_POLL_S = 0.2
#: Name prefix of the threads that train seeds.
THREAD_PREFIX = "lenet-seed"


class RunCancelled(RuntimeError):
    """Raised inside a replicate's progress callback once the stop event is set."""


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
    kernels: Kernels | None,
    checkpoint: Path | None,
    progress: ProgressFn | None,
    progress_every: int,
    stop: threading.Event,
) -> TrainResult:
    def on_progress(p: Progress) -> None:
        if stop.is_set():
            raise RunCancelled(f"seed {seed} stopped at step {p.step}/{p.total_steps}")
        if progress is not None:
            progress(seed, p)

    if stop.is_set():  # a queued run whose siblings already failed
        raise RunCancelled(f"seed {seed} not started")
    from . import train

    try:
        return train(
            data.train_images,
            data.train_labels,
            **hp.train_kwargs(),
            seed=seed,
            threads=threads,
            device=device,
            kernels=kernels,
            test_data=data.test_images,
            test_targets=data.test_labels,
            progress=on_progress,
            progress_every=progress_every,
            checkpoint=checkpoint,
            on_divergence="continue",  # a diverged seed is a result (status "diverged")
        )
    except BaseException:
        stop.set()  # stop the siblings as early as possible
        raise


def _root_error(futures: Sequence[Future[TrainResult]]) -> BaseException:
    """The error to report: a real failure rather than the cancellations it caused."""
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    real = [e for e in errors if not isinstance(e, RunCancelled)]
    return (real or errors)[0]


def _run_concurrently(
    seeds: Sequence[int],
    run: Callable[[int], TrainResult],
    stop: threading.Event,
    max_workers: int,
) -> dict[int, TrainResult]:
    futures: dict[int, Future[TrainResult]] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=THREAD_PREFIX) as pool:
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
    kernels: Kernels | None = None,
    checkpoint_dir: Path | None = None,
    progress: ProgressFn | None = None,
    progress_every: int = PROGRESS_EVERY,
    stop: threading.Event | None = None,
) -> dict[int, TrainResult]:
    """Train one replicate per seed; return their results keyed by seed, in ``seeds`` order.

    Up to ``concurrent_runs`` seeds (None: all) train at once, each in its own Python
    thread; 1 (or a single seed) trains them one after another in the calling thread,
    where Ctrl-C interrupts the C++ loop directly. ``threads_per_run`` is the
    intra-op thread count of each run (see ``ThreadPlan``). Setting ``stop`` from
    outside cancels the runs (``RunCancelled``). With ``checkpoint_dir``, each seed keeps
    its end-of-epoch checkpoint there and resumes from it (``layout.checkpoint_file``).
    ``kernels`` None: the device's default. A seed whose loss stops being finite trains on
    and reports ``diverged_at_step``.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    stop = stop if stop is not None else threading.Event()
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)

    def run(seed: int) -> TrainResult:
        return _train_one(
            data,
            hp,
            seed,
            threads=threads_per_run,
            device=device,
            kernels=kernels,
            checkpoint=None if checkpoint_dir is None else checkpoint_file(checkpoint_dir, seed),
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
