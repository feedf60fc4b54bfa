"""Benchmark: the C++ trainer (lenet_cpp.train) against the Python training loops
of lenet_cpp.reference (train_loop) and peers.py (dataloader_loop).

One process, contenders interleaved (and their order rotated) so that machine noise hits all
of them alike; every contender gets the same threads, hyper-parameters, seed, data and malloc
setting. Sections:

* single: images/s over one full epoch (median of --reps), batch 64 and 256, with the final
  training loss and test accuracy next to it;
* grid: four settings (activation x pooling) trained at once from four Python threads, C++ vs
  the strong Python loop, and both one after another;
* gil: tick gaps of a Python thread that sleeps 1 ms in a loop, idle and during training;
* target: wall time until the test accuracy (evaluated every epoch) reaches --target.

Prints a markdown table and writes <out>/latest.json and <out>/latest.csv.
Run ``python bench/bench.py`` (the full run) or ``--quick`` (a smoke run); see bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import lenet_cpp
from lenet_cpp import provenance
from lenet_cpp.loading import load_split
from lenet_cpp.reference import Hyper, LoopResult, train_loop
from lenet_cpp.synthetic import write_synthetic_mnist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import cpp_run, dataloader_loop

LOG = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
GRID_SETTINGS = (("relu", "max"), ("relu", "avg"), ("tanh", "max"), ("tanh", "avg"))


@dataclass
class Data:
    train_x: torch.Tensor  # normalised float32 [N,1,28,28]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    data_dir: Path  # holds the four raw IDX files (for the DataLoader loop)
    source: str  # "mnist" or "synthetic"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "mnist")
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic data even if MNIST is there"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small subsets, one repetition"
    )
    parser.add_argument(
        "--reps", type=int, help="repetitions of the single-run section (default 3)"
    )
    parser.add_argument("--grid-reps", type=int, default=1, help="repetitions of the grid")
    parser.add_argument("--train-limit", type=int, help="use the first N training images")
    parser.add_argument("--test-limit", type=int, help="use the first N test images")
    parser.add_argument(
        "--max-epochs", type=int, help="epoch cap of the target section (default 15)"
    )
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument(
        "--threads", type=int, default=2, help="intra-op threads of every contender"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--malloc", choices=("tuned", "default"), default="tuned")
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["single", "grid", "gil", "target"],
        choices=["single", "grid", "gil", "target"],
    )
    args = parser.parse_args(argv)
    quick = args.quick
    args.reps = args.reps or (1 if quick else 3)
    args.train_limit = args.train_limit or (4096 if quick else None)
    args.test_limit = args.test_limit or (1000 if quick else None)
    args.max_epochs = args.max_epochs or (1 if quick else 15)
    return args


def load_data(args: argparse.Namespace, scratch: Path) -> Data:
    data_dir, source = args.data, "mnist"
    try:
        if args.synthetic:
            raise FileNotFoundError("--synthetic")
        train = load_split(data_dir, "train")
        test = load_split(data_dir, "test")
    except (FileNotFoundError, OSError, ValueError) as error:
        LOG.warning("MNIST not usable in %s (%s): falling back to SYNTHETIC data", data_dir, error)
        n_train, n_test = args.train_limit or 60000, args.test_limit or 10000
        data_dir, source = (
            write_synthetic_mnist(scratch / "synthetic", n_train, n_test),
            "synthetic",
        )
        train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    limit = slice(0, args.train_limit)
    test_limit = slice(0, args.test_limit)
    return Data(
        train_x=lenet_cpp.normalize(train[0][limit]).contiguous(),
        train_y=train[1][limit].long(),
        test_x=lenet_cpp.normalize(test[0][test_limit]).contiguous(),
        test_y=test[1][test_limit].long(),
        data_dir=data_dir,
        source=source,
    )


def rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------- single run


def with_threads(threads: int, run: Callable[[], LoopResult]) -> LoopResult:
    """Run a Python loop with `threads` intra-op threads on this thread, then restore them."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run()
    finally:
        torch.set_num_threads(before)


def single_contenders(
    data: Data, args: argparse.Namespace
) -> dict[str, Callable[[Hyper], LoopResult]]:
    test = (data.test_x, data.test_y)
    n = data.train_x.shape[0]
    x, y = data.train_x, data.train_y
    return {
        "cpp": lambda h: cpp_run(x, y, 1, h, threads=args.threads, test=test),
        # the same run with distortions (train(augment=True)): their cost is augment_slowdown
        "cpp_augment": lambda h: cpp_run(x, y, 1, h, threads=args.threads, test=test, augment=True),
        "python_strong": lambda h: train_loop(x, y, 1, h, test=test),
        # on a shared 2-core machine one intra-op thread can beat two: the strongest Python
        # loop is the faster of both
        "python_strong_1thread": lambda h: with_threads(
            1, lambda: train_loop(x, y, 1, h, test=test)
        ),
        "python_dataloader": lambda h: dataloader_loop(data.data_dir, 1, h, limit=n, test=test),
    }


def warm_up(data: Data, args: argparse.Namespace) -> None:
    """One short untimed run of every contender, so one-off initialisation is not measured."""
    small = Data(
        data.train_x[:512],
        data.train_y[:512],
        data.test_x[:256],
        data.test_y[:256],
        data.data_dir,
        data.source,
    )
    for batch_size in args.batch_sizes:
        for run in single_contenders(small, args).values():
            run(Hyper(batch_size=batch_size))


# ---------------------------------------------------------------- FP32 peak

#: (inputs, outputs, output pixels) of each layer's multiply-adds for one image.
LAYER_MACS = {"conv1": (25, 6, 28 * 28), "conv2": (150, 16, 10 * 10), "fc1": (400, 120, 1),
              "fc2": (120, 84, 1), "fc3": (84, 10, 1)}  # fmt: skip


def flops_per_training_image() -> int:
    """Floating-point operations of one image's forward and backward pass (a multiply-add is
    2): the forward products, the weight gradients, and the input gradients of every layer but
    the first. Pooling, activations, loss and the update are left out (under 2 %)."""
    macs = {name: n_in * n_out * pixels for name, (n_in, n_out, pixels) in LAYER_MACS.items()}
    forward = sum(macs.values())
    return 2 * (forward + forward + forward - macs["conv1"])


def fp32_peak_gflops() -> tuple[float, str]:
    """The CPU's nominal FP32 peak and how it is counted: every logical CPU issuing two fused
    multiply-adds (2 FLOP each) of its widest vector per cycle at the clock /proc/cpuinfo shows.
    (Hyper-threads sharing a core, turbo clocks and AVX-512 frequency drops are not modelled;
    the fused kernels' products are such fused multiply-adds, the rest of their work is not.)"""
    flags, mhz = provenance.cpu_flags() or [], provenance.cpu_mhz() or 0.0
    lanes = 16 if "avx512f" in flags else 8 if "fma" in flags else 4
    cpus = os.cpu_count() or 1
    rule = f"{cpus} CPUs x {mhz:.0f} MHz x 2 FMA x {lanes} lanes x 2 FLOP"
    return cpus * mhz * 1e-3 * 2 * lanes * 2, rule


PEAK_GFLOPS, PEAK_RULE = fp32_peak_gflops()


def peak_fraction(images_per_second: float) -> float:
    flops = images_per_second * flops_per_training_image() * 1e-9
    return flops / PEAK_GFLOPS if PEAK_GFLOPS else 0.0


def bench_single(data: Data, args: argparse.Namespace) -> dict[str, Any]:
    contenders = single_contenders(data, args)
    runs: dict[tuple[int, str], list[LoopResult]] = {}
    for rep in range(args.reps):
        for batch_size in args.batch_sizes:
            for name in rotated(list(contenders), rep):
                result = contenders[name](Hyper(batch_size=batch_size))
                runs.setdefault((batch_size, name), []).append(result)
                LOG.info(
                    "single b=%d %-18s %8.0f img/s", batch_size, name, result.images_per_second
                )
    rows = []
    for (batch_size, name), results in runs.items():
        speeds = [r.images_per_second for r in results]
        median_run = sorted(results, key=lambda r: r.images_per_second)[len(results) // 2]
        rows.append(
            {
                "batch_size": batch_size,
                "contender": name,
                "images_per_second": statistics.median(speeds),
                "images_per_second_runs": speeds,
                "train_loss": median_run.train_loss[-1],
                "test_accuracy": median_run.test_accuracy[-1],
                "peak_fraction": peak_fraction(statistics.median(speeds)),
            }
        )
    return {"rows": rows, "ratios": single_ratios(rows)}


def single_ratios(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_key = {(r["batch_size"], r["contender"]): r for r in rows}
    ratios = {}
    for batch_size in sorted({r["batch_size"] for r in rows}):
        cpp = by_key[(batch_size, "cpp")]
        peers = {
            name: r
            for (b, name), r in by_key.items()
            if b == batch_size and name not in ("cpp", "cpp_augment")
        }
        entry = {
            f"cpp_vs_{name}": cpp["images_per_second"] / peer["images_per_second"]
            for name, peer in peers.items()
        }
        strong = [
            peers[name] for name in ("python_strong", "python_strong_1thread") if name in peers
        ]
        if strong:
            best = max(strong, key=lambda r: r["images_per_second"])
            entry["cpp_vs_strongest_python"] = cpp["images_per_second"] / best["images_per_second"]
            entry["accuracy_gap_points"] = 100 * (cpp["test_accuracy"] - best["test_accuracy"])
        if (batch_size, "cpp_augment") in by_key:
            augmented = by_key[(batch_size, "cpp_augment")]
            entry["augment_slowdown"] = cpp["images_per_second"] / augmented["images_per_second"]
        ratios[str(batch_size)] = entry
    return ratios


def fastest_python_threads(report: dict[str, Any], batch_size: int, default: int) -> int:
    """Intra-op threads of the faster strong Python loop in the single section, if it ran."""
    rows = {
        r["contender"]: r["images_per_second"]
        for r in report.get("single", {}).get("rows", [])
        if r["batch_size"] == batch_size
    }
    if rows.get("python_strong_1thread", 0.0) > rows.get("python_strong", float("inf")):
        return 1
    return default


# ---------------------------------------------------------------- grid


def run_in_threads(jobs: list[Callable[[], Any]]) -> float:
    """Run the jobs in one Python thread each; return the wall time until all are done."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], Any]) -> None:
        try:
            job()
        except BaseException as error:  # re-raised in the caller
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


def grid_jobs(
    data: Data, args: argparse.Namespace, kind: str, threads: int
) -> list[Callable[[], Any]]:
    def cpp_job(activation: str, pooling: str) -> Callable[[], Any]:
        hyper = Hyper(activation=activation, pooling=pooling)
        return lambda: cpp_run(data.train_x, data.train_y, 1, hyper, threads=threads)

    def python_job(activation: str, pooling: str) -> Callable[[], Any]:
        hyper = Hyper(activation=activation, pooling=pooling)

        def job() -> LoopResult:
            torch.set_num_threads(threads)  # this thread's intra-op threads, like threads= in C++
            return train_loop(data.train_x, data.train_y, 1, hyper)

        return job

    make = cpp_job if kind == "cpp" else python_job
    return [make(activation, pooling) for activation, pooling in GRID_SETTINGS]


def bench_grid(data: Data, args: argparse.Namespace, python_threads: int) -> dict[str, Any]:
    images = len(GRID_SETTINGS) * data.train_x.shape[0]
    variants = ["cpp_threads", "python_threads", "cpp_sequential", "python_sequential"]
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(args.grid_reps):
        for name in rotated(variants, rep):
            kind, mode = name.split("_")
            if mode == "threads":
                wall = run_in_threads(grid_jobs(data, args, kind, threads=1))
            else:
                threads = args.threads if kind == "cpp" else python_threads
                start = time.perf_counter()
                for job in grid_jobs(data, args, kind, threads=threads):
                    job()
                wall = time.perf_counter() - start
            torch.set_num_threads(args.threads)
            walls[name].append(wall)
            LOG.info("grid %-18s %6.1f s  %8.0f img/s", name, wall, images / wall)
    rows: dict[str, dict[str, Any]] = {
        name: {
            "wall_s": statistics.median(w),
            "images_per_second": images / statistics.median(w),
            "wall_s_runs": w,
        }
        for name, w in walls.items()
    }
    speed = {name: row["images_per_second"] for name, row in rows.items()}
    ratios = {
        "cpp_threads_vs_python_threads": speed["cpp_threads"] / speed["python_threads"],
        "cpp_threads_vs_cpp_sequential": speed["cpp_threads"] / speed["cpp_sequential"],
        "python_threads_vs_python_sequential": speed["python_threads"] / speed["python_sequential"],
        "cpp_threads_vs_python_sequential": speed["cpp_threads"] / speed["python_sequential"],
    }
    return {
        "python_sequential_threads": python_threads,
        "settings": [f"{a}/{p}" for a, p in GRID_SETTINGS],
        "images": images,
        "rows": rows,
        "ratios": ratios,
    }


# ---------------------------------------------------------------- GIL


class Ticker:
    """A Python thread that sleeps 1 ms in a loop and records the gaps between its ticks."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        gaps_ms = [1000 * g for g in self.gaps]
        return {
            "ticks": len(gaps_ms),
            "p50_ms": percentile(gaps_ms, 0.50),
            "p99_ms": percentile(gaps_ms, 0.99),
            "max_ms": max(gaps_ms),
        }


def bench_gil(data: Data, args: argparse.Namespace, python_threads: int) -> dict[str, Any]:
    hyper = Hyper()
    results = {}
    start = time.perf_counter()
    with Ticker() as during_cpp:
        cpp_run(data.train_x, data.train_y, 1, hyper, threads=args.threads)
    duration = time.perf_counter() - start
    results["cpp_training"] = during_cpp.summary()
    with Ticker() as idle:
        time.sleep(duration)
    results["idle"] = idle.summary()
    with Ticker() as during_python:
        with_threads(python_threads, lambda: train_loop(data.train_x, data.train_y, 1, hyper))
    results["python_training"] = during_python.summary()
    for name, summary in results.items():
        LOG.info("gil %-16s p99 %.2f ms  max %.2f ms", name, summary["p99_ms"], summary["max_ms"])
    return results


# ---------------------------------------------------------------- time to target


def first_reaching(accuracies: list[float], target: float) -> int | None:
    return next((i + 1 for i, acc in enumerate(accuracies) if acc >= target), None)


def bench_target(data: Data, args: argparse.Namespace, python_threads: int) -> dict[str, Any]:
    hyper = Hyper()
    test = (data.test_x, data.test_y)
    # The C++ run cannot stop itself early: a first run finds the epoch that reaches the
    # target (runs are bit-reproducible), a second run of exactly that many epochs is timed.
    probe = cpp_run(
        data.train_x, data.train_y, args.max_epochs, hyper, threads=args.threads, test=test
    )
    epochs = first_reaching(probe.test_accuracy, args.target)
    cpp = probe
    if epochs is not None and epochs < args.max_epochs:
        cpp = cpp_run(data.train_x, data.train_y, epochs, hyper, threads=args.threads, test=test)
    python = with_threads(
        python_threads,
        lambda: train_loop(
            data.train_x,
            data.train_y,
            args.max_epochs,
            hyper,
            test=test,
            stop=lambda accuracies: accuracies[-1] >= args.target,
        ),
    )
    out = {"target": args.target, "max_epochs": args.max_epochs, "python_threads": python_threads}
    for name, run in (("cpp", cpp), ("python_strong", python)):
        reached = first_reaching(run.test_accuracy, args.target)
        out[name] = {
            "reached": reached is not None,
            "epochs": reached if reached is not None else len(run.test_accuracy),
            "seconds": run.wall_time_s if reached is not None else None,
            "best_accuracy": max(run.test_accuracy),
        }
        LOG.info("target %-14s %s", name, out[name])
    if out["cpp"]["reached"] and out["python_strong"]["reached"]:
        out["python_vs_cpp_time"] = out["python_strong"]["seconds"] / out["cpp"]["seconds"]
    return out


# ---------------------------------------------------------------- report


def machine(args: argparse.Namespace, data: Data, malloc_tuned: bool) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": provenance.cpu_model(),
        "avx512": provenance.has_avx512(),
        "cores": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lenet_cpp": lenet_cpp.__version__,
        "commit": commit,
        "threads": args.threads,
        "malloc": "tuned (lenet_cpp.tune_allocator)" if malloc_tuned else "glibc defaults",
        "data": data.source,
        "train_images": int(data.train_x.shape[0]),
        "test_images": int(data.test_x.shape[0]),
        "torch_compile": False,
        "flops_per_training_image": flops_per_training_image(),
        "fp32_peak_gflops": PEAK_GFLOPS,
        "fp32_peak_rule": PEAK_RULE,
        "command": " ".join(["python", "bench/bench.py", *sys.argv[1:]]),
    }


HEADER = ("section", "contender", "setting", "images/s", "C++ x", "final loss", "test acc", "peak")


def row(*cells: object) -> str:
    """A table row; missing cells at the end are empty."""
    padded = [*cells, *[""] * (len(HEADER) - len(cells))]
    return "| " + " | ".join(str(cell) for cell in padded) + " |"


def single_lines(single: dict[str, Any]) -> list[str]:
    lines = []
    rows = sorted(single["rows"], key=lambda r: (r["batch_size"], r["contender"] != "cpp"))
    for entry in rows:
        cpp = next(
            r for r in rows if r["batch_size"] == entry["batch_size"] and r["contender"] == "cpp"
        )
        speed = entry["images_per_second"]
        lines.append(
            row(
                "single, 1 epoch",
                entry["contender"],
                f"batch {entry['batch_size']}",
                f"{speed:.0f}",
                f"x{cpp['images_per_second'] / speed:.2f}",
                f"{entry['train_loss']:.4f}",
                f"{100 * entry['test_accuracy']:.2f} %",
                f"{100 * entry['peak_fraction']:.0f} %" if "peak_fraction" in entry else "",
            )
        )
    return lines


def grid_lines(grid: dict[str, Any]) -> list[str]:
    cpp = grid["rows"]["cpp_threads"]["images_per_second"]
    return [
        row(
            "grid of 4",
            name,
            "batch 64, 1 epoch each",
            f"{entry['images_per_second']:.0f}",
            f"x{cpp / entry['images_per_second']:.2f}",
            "",
            "",
        )
        for name, entry in grid["rows"].items()
    ]


def gil_lines(gil: dict[str, Any]) -> list[str]:
    return [
        row(
            "GIL tick gap",
            name,
            f"p99 {s['p99_ms']:.2f} ms, max {s['max_ms']:.2f} ms",
            "",
            "",
            "",
            "",
        )
        for name, s in gil.items()
    ]


def target_lines(target: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("cpp", "python_strong"):
        entry = target[name]
        seconds = f"{entry['seconds']:.1f} s" if entry["reached"] else "not reached"
        ratio = target.get("python_vs_cpp_time") if name == "python_strong" else 1.0
        threads = target.get("python_threads") if name == "python_strong" else None
        lines.append(
            row(
                f"time to {100 * target['target']:.1f} %",
                f"{name} ({threads} thread{'s' * (threads != 1)})" if threads else name,
                f"{seconds} ({entry['epochs']} epochs)",
                "",
                f"x{ratio:.2f}" if ratio else "",
                "",
                f"{100 * entry['best_accuracy']:.2f} %",
            )
        )
    return lines


def table(report: dict[str, Any]) -> str:
    """Markdown table; 'C++ x' is how many times faster the C++ trainer is than that row."""
    lines = [
        row(*HEADER),
        row("---", "---", "---", "---:", "---:", "---:", "---:", "---:"),
    ]
    sections = {
        "single": single_lines,
        "grid": grid_lines,
        "gil": gil_lines,
        "target": target_lines,
    }
    for name, lines_of in sections.items():
        if name in report:
            lines += lines_of(report[name])
    return "\n".join(lines)


def csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            rows.append(
                {
                    "key": prefix,
                    "value": json.dumps(value) if isinstance(value, list | tuple) else value,
                }
            )

    walk("", report)
    return rows


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    with (out / "latest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["key", "value"])
        writer.writeheader()
        writer.writerows(csv_rows(report))
    (out / "latest.md").write_text(report["table"] + "\n")


SECTIONS = {"grid": bench_grid, "gil": bench_gil, "target": bench_target}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    malloc_tuned = args.malloc == "tuned" and lenet_cpp.tune_allocator()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as scratch:
        data = load_data(args, Path(scratch))
        report: dict[str, Any] = {"machine": machine(args, data, malloc_tuned)}
        started = time.perf_counter()
        warm_up(data, args)
        for name in args.sections:
            LOG.info("section %s", name)
            if name == "single":
                report[name] = bench_single(data, args)
            else:
                # Python runs outside the head-to-head use its faster thread count
                threads = fastest_python_threads(report, 64, args.threads)
                report[name] = SECTIONS[name](data, args, threads)
    report["machine"]["python_threads_outside_single"] = fastest_python_threads(
        report, 64, args.threads
    )
    report["machine"]["load_average_end"] = os.getloadavg()
    report["machine"]["bench_seconds"] = time.perf_counter() - started
    report["table"] = table(report)
    write_report(report, args.out)
    print(report["table"])
    print(
        f"\n{report['machine']['cpu']}, {report['machine']['cores']} cores, data: {data.source}, "
        f"threads {args.threads}, malloc {report['machine']['malloc']}; written to {args.out}"
    )
    return report


if __name__ == "__main__":
    main()
