"""Command line: ``lenet-cpp`` (or ``python -m lenet_cpp``).

``train``      trains one setting (one or more seeds, concurrently) on a dataset's local
               IDX files, shows a progress bar, prints the test accuracy and writes the
               result files plus the two figures (see ``lenet_cpp.results`` for the layout).
``download``   makes a dataset's four IDX files present and verified (``ensure_dataset``).
``synthetic``  writes a small synthetic MNIST-like data set (for tests and trials).
``pipeline``   runs the packaged Snakemake workflow in the current directory
               (``lenet_cpp.pipeline``; ``lenet-cpp pipeline --help``).

Ctrl-C stops training promptly; every file is written under a temporary name and renamed
when complete, so an interrupted run leaves no half-written file behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .datasets import DATASET_NAMES, dataset_info
from .layout import (
    ARCHITECTURES,
    DATA_ROOT,
    DEFAULT_ARCHITECTURE,
    DEFAULT_DATASET,
    DEFAULT_OUTPUT,
    DEFAULT_SCHEDULE,
    OUTPUTS,
    PROGRESS_EVERY,
    SCHEDULES,
    SETTING_FIGURES,
    dataset_dir,
    figure_paths,
)

if TYPE_CHECKING:
    from . import Progress
    from .acquire import DatasetReport
    from .results import MetricsRecord

__all__ = ["build_parser", "main"]

LOG = logging.getLogger("lenet_cpp.cli")
EXIT_INTERRUPTED = 130


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=DATASET_NAMES, default=DEFAULT_DATASET, help="(%(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"the dataset's IDX files (default: {dataset_dir(DATA_ROOT, 'DATASET')})",
    )
    parser.add_argument(
        "--source", type=Path, default=None, help="local directory or archive to copy it from"
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the MD5 checks of present/local files (synthetic data)",
    )


def _augment_range(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` of ``--augment-range`` -> (name, value); the extension checks both."""
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}") from None


def _add_schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", choices=SCHEDULES, default=DEFAULT_SCHEDULE, help="(%(default)s)")
    p.add_argument(
        "--milestones", type=int, nargs="*", default=(), help="step: passes after which lr*=gamma"
    )
    p.add_argument("--gamma", type=float, default=0.1, help="step: factor (%(default)s)")
    p.add_argument(
        "--warmup", type=float, default=None, help="cosine/onecycle: warm-up fraction of steps"
    )
    p.add_argument(
        "--final-lr",
        dest="final_learning_rate",
        type=float,
        default=None,
        help="cosine/onecycle: the last learning rate",
    )
    p.add_argument(
        "--augment", action="store_true", help="random affine distortions of the training images"
    )
    p.add_argument(
        "--augment-range",
        dest="augment_ranges",
        type=_augment_range,
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a distortion range (translate, scale, squeeze, shear, rotate); repeatable",
    )


def _add_train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train one setting and write its metrics and figures")
    _add_data_options(p)
    p.add_argument("--epochs", type=int, default=5, help="(%(default)s)")
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=64, help="(%(default)s)")
    p.add_argument("--momentum", type=float, default=0.9, help="(%(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="(%(default)s)")
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    p.add_argument("--pooling", choices=("max", "avg"), default="max")
    p.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default=DEFAULT_ARCHITECTURE,
        help="lenet5 (today's network) or lenet5-1998 (the 1998 paper's) (%(default)s)",
    )
    p.add_argument(
        "--output",
        choices=OUTPUTS,
        default=DEFAULT_OUTPUT,
        help="softmax, or rbf (the paper's RBF units; lenet5-1998 only) (%(default)s)",
    )
    _add_schedule_options(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seed replicates (0)")
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads in all, shared by concurrent seeds (%(default)s)",
    )
    p.add_argument("--sequential", action="store_true", help="train the seeds one after another")
    p.add_argument("--device", default="cpu", help="cpu or cuda (%(default)s)")
    p.add_argument(
        "--kernels",
        choices=("fused", "libtorch"),
        default=None,
        help="fused (the CPU default: the same bits on every CPU) or libtorch (the reference; "
        "the CUDA default)",
    )
    p.add_argument("--train-subset", type=int, default=None, help="use the first N train images")
    p.add_argument("--test-subset", type=int, default=None, help="use the first N test images")
    p.add_argument(
        "--out-dir", type=Path, default=Path("results/cli"), help="outputs (%(default)s)"
    )
    p.add_argument(
        "--progress-every",
        type=int,
        default=PROGRESS_EVERY,
        help="steps per progress update (%(default)s)",
    )
    p.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="end-of-epoch checkpoints: a rerun after a kill resumes from them "
        "(default: OUT_DIR/checkpoints; removed when the run completes)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenet-cpp",
        description="LeNet-5 on MNIST or Fashion-MNIST, trained in C++ with the GIL released.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    dl = sub.add_parser("download", help="make a dataset's four IDX files present and verified")
    _add_data_options(dl)
    syn = sub.add_parser("synthetic", help="write a synthetic MNIST-like data set")
    syn.add_argument("out_dir", type=Path)
    syn.add_argument("--n-train", type=int, default=2048, help="(%(default)s)")
    syn.add_argument("--n-test", type=int, default=512, help="(%(default)s)")
    syn.add_argument("--seed", type=int, default=0, help="(%(default)s)")
    # listed here for --help; main() hands its arguments to lenet_cpp.pipeline unparsed
    sub.add_parser("pipeline", help="run the Snakemake workflow here (pipeline --help)")
    return parser


class _ProgressBar:
    """Feeds the progress reports of all seeds into one tqdm bar."""

    def __init__(self, n_seeds: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.n_seeds = n_seeds
        self.bar = tqdm(total=None, unit="step", disable=not enabled, dynamic_ncols=True)
        self.done: dict[int, int] = {}

    def __call__(self, seed: int, progress: Progress) -> None:
        if self.bar.total is None:  # every seed runs the same number of steps
            self.bar.total = self.n_seeds * progress.total_steps
        self.bar.update(progress.step - self.done.get(seed, 0))
        self.done[seed] = progress.step
        self.bar.set_postfix(
            epoch=f"{progress.epoch}/{progress.epochs}", loss=f"{progress.loss:.3f}", refresh=False
        )

    def close(self) -> None:
        self.bar.close()


def _ensure(args: argparse.Namespace) -> DatasetReport:
    from .acquire import ensure_dataset

    if args.data_dir is None:
        args.data_dir = Path(dataset_dir(DATA_ROOT, args.dataset))
    return ensure_dataset(args.data_dir, args.source, dataset=args.dataset, verify=args.verify)


def _download(args: argparse.Namespace) -> int:
    report = _ensure(args)
    title = dataset_info(report.dataset).title
    print(f"{title} ready in {report.data_dir} (source: {report.source})")
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    from .synthetic import write_synthetic_mnist

    out = write_synthetic_mnist(args.out_dir, args.n_train, args.n_test, args.seed)
    print(f"synthetic MNIST ({args.n_train} train / {args.n_test} test images) in {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .job import JobSpec, run_job
    from .plotting import plot_setting
    from .setting import Hyperparameters

    report = _ensure(args)
    values = {key: getattr(args, key) for key in Hyperparameters.field_names()}
    if values["augment_ranges"] is not None:
        values["augment_ranges"] = dict(values["augment_ranges"])
    hp = Hyperparameters.from_mapping(values)
    spec = JobSpec(
        hyperparameters=hp,
        seeds=args.seeds,
        data_dir=args.data_dir,
        out_dir=args.out_dir,
        threads=args.threads,
        expected_md5=dataset_info(args.dataset).md5 if args.verify else None,
        concurrent=not args.sequential,
        device=args.device,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        progress_every=args.progress_every,
        data_info={"source": report.source},
        kernels=args.kernels,
        checkpoint_dir=args.checkpoint_dir or args.out_dir / "checkpoints",
    )
    bar = _ProgressBar(len(args.seeds), enabled=not args.no_progress)
    try:
        with logging_redirect_tqdm():
            record = run_job(spec, progress=bar)
    finally:
        bar.close()
    out = args.out_dir
    plot_setting(
        out,
        predictions_paths=figure_paths(out, SETTING_FIGURES[0]),
        loss_paths=figure_paths(out, SETTING_FIGURES[1]),
    )
    _print_accuracy(record)
    print(f"results and figures in {out}")
    return 0


def _print_accuracy(record: MetricsRecord) -> None:
    per_seed = record["results"]["per_seed"]
    for seed, numbers in per_seed.items():
        print(f"seed {seed}: test accuracy {numbers['test_accuracy'][-1]:.2%}")
    if len(per_seed) > 1:
        acc = record["results"]["test_accuracy"]
        print(f"mean test accuracy {acc['mean']:.2%} +- {acc['std']:.2%}")


_COMMANDS = {"train": _train, "download": _download, "synthetic": _synthetic}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (130 after Ctrl-C)."""
    from .acquire import DatasetUnavailableError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["pipeline"]:  # its unknown options are snakemake's
        from .pipeline import main as pipeline_main

        return pipeline_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        LOG.error("interrupted: no file is left half-written (complete ones are kept)")
        return EXIT_INTERRUPTED
    except (DatasetUnavailableError, OSError, ValueError) as error:
        LOG.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
