"""One training job: every seed of one setting, from verified data to its result files.

``run_job`` is the single orchestration behind the command line's ``train`` and the
pipeline's ``train`` rule (``scripts/train.py``): verify the data files, load them, train
the seeds concurrently (``lenet_cpp.seeds``), write the run directory
(``lenet_cpp.results``) and return the metrics record. ``run_setting`` is the part after
loading, for callers that already hold a ``TrainData``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import provenance
from .integrity import OFFICIAL_MD5, verify_files
from .layout import MNIST_FILES, PROGRESS_EVERY, Kernels, default_kernels
from .results import MetricsRecord, RunInfo, build_metrics, remove_partials, write_setting
from .seeds import ProgressFn, ThreadPlan, train_seeds
from .setting import Hyperparameters, TrainData

__all__ = ["JobSpec", "run_job", "run_setting"]

LOG = logging.getLogger("lenet_cpp.job")


@dataclass(frozen=True)
class JobSpec:
    """Everything one training job needs to know.

    ``expected_md5`` (file name -> MD5) is checked before the data is read; None checks
    nothing (the IDX reader still rejects malformed files). ``data_info`` is recorded in
    metrics.json's ``data`` section beside the sizes and the files' MD5s.
    """

    hyperparameters: Hyperparameters
    seeds: Sequence[int]
    data_dir: Path
    out_dir: Path
    threads: int
    expected_md5: Mapping[str, str] | None = None
    md5_source: str = OFFICIAL_MD5
    concurrent: bool = True
    device: str = "cpu"
    train_subset: int | None = None
    test_subset: int | None = None
    progress_every: int = PROGRESS_EVERY
    data_info: Mapping[str, object] | None = None
    source_dir: Path | None = None
    kernels: Kernels | None = None
    checkpoint_dir: Path | None = None


def run_job(spec: JobSpec, *, progress: ProgressFn | None = None) -> MetricsRecord:
    """Verify and load the data, train every seed, write the run directory; return the record."""
    from . import tune_allocator

    tune_allocator()  # keep freed buffers in the process (see README, Performance)
    if spec.expected_md5 is not None:
        md5 = verify_files(spec.data_dir, spec.expected_md5, source=spec.md5_source)
        LOG.info("verified %s (%s)", ", ".join(md5), spec.md5_source)
    else:
        md5 = provenance.file_md5s(spec.data_dir / name for name in MNIST_FILES)
    data = TrainData.load(
        spec.data_dir, train_subset=spec.train_subset, test_subset=spec.test_subset
    )
    return run_setting(
        spec.hyperparameters,
        spec.seeds,
        data,
        spec.out_dir,
        job_threads=spec.threads,
        concurrent=spec.concurrent,
        device=spec.device,
        progress=progress,
        progress_every=spec.progress_every,
        data_info={"dir": str(spec.data_dir), **(spec.data_info or {}), "md5": md5},
        source_dir=spec.source_dir,
        kernels=spec.kernels,
        checkpoint_dir=spec.checkpoint_dir,
    )


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
    progress_every: int = PROGRESS_EVERY,
    data_info: Mapping[str, object] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    kernels: Kernels | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> MetricsRecord:
    """Train every seed of one setting and write its result files; return the metrics record.

    ``job_threads`` are shared as ``ThreadPlan.for_job`` says (``concurrent=False``:
    one seed at a time with all threads). Leftover ``*.partial`` files of a killed
    earlier attempt are removed from ``out_dir`` first; nothing is written before
    training has finished (see ``lenet_cpp.layout`` for the layout).
    ``source_dir`` is the checkout whose git commit is recorded (default: this package's).
    ``kernels``: "fused" or "libtorch" (None: the device's default), recorded in ``run``.
    ``checkpoint_dir``: where the seeds keep end-of-epoch checkpoints, so that a killed job
    resumes where it stopped (bit-identical); removed once the results are written.
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
        kernels=kernels,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
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
        run=RunInfo(
            job_threads=job_threads,
            threads_per_run=plan.threads_per_run,
            concurrent_runs=plan.concurrent_runs,
            device=device,
            kernels=kernels or default_kernels(device),
        ),
        data_info=dict(data_info or {}),
        provenance={
            "started_at": started_at,
            "finished_at": provenance.utc_now(),
            "git": provenance.git_info(checkout),
            "environment": provenance.environment(),
        },
    )
    write_setting(out_dir, hp, results, data, record)
    if checkpoint_dir is not None:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    accuracy = record["results"]["test_accuracy"]
    LOG.info(
        "%s: test accuracy %.4f +- %.4f over %d seed(s), %.1f s",
        hp.name,
        accuracy["mean"],
        accuracy["std"],
        len(seeds),
        wall,
    )
    return record
