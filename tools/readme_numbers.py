"""The README's measured numbers, generated from the files that recorded them.

Every number README.md reports about speed or accuracy sits between a pair of markers,
``<!-- numbers:NAME -->`` and ``<!-- /numbers:NAME -->``, and is written by this script from
``records/NAME.json``, which names the machine (CPU model, AVX-512 or not), the command and
the commit. Nobody copies numbers by hand:

    python tools/readme_numbers.py record   # copy the latest outputs into records/
    python tools/readme_numbers.py render   # rewrite README.md's marked blocks from records/
    python tools/readme_numbers.py check    # exit 1 if README.md differs from what render writes

``make readme-numbers`` runs ``record`` and ``render``; run it after ``make`` (the main job)
and ``make bench``. ``tests/test_readme.py`` runs ``check``, so the README cannot drift from
the records.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lenet_cpp.layout import ResultsLayout  # noqa: E402
from lenet_cpp.results import read_summary  # noqa: E402

RECORDS = ROOT / "records"
README = ROOT / "README.md"
BENCH_OUTPUT = ROOT / "bench" / "results" / "latest.json"
MAIN_JOB_COMMAND = "make"

Record = Mapping[str, Any]


def machine_line(cpu: str, avx512: bool | None) -> str:
    """How a record names its machine: the CPU model and whether it has AVX-512."""
    flag = {True: "with AVX-512", False: "without AVX-512", None: "AVX-512 unknown"}[avx512]
    return f"{cpu}, {flag}"


# ---------------------------------------------------------------- record


def main_job_record(results_dir: Path) -> dict[str, Any]:
    """The best setting of a finished main job, its machine and its training time span."""
    layout = ResultsLayout(str(results_dir))
    rows = read_summary(layout.summary)
    best = min(rows, key=lambda row: int(row["rank"]))
    metrics = [json.loads(Path(layout.metrics(row["setting"])).read_text()) for row in rows]
    first = metrics[0]["provenance"]
    environment = first["environment"]
    return {
        "command": MAIN_JOB_COMMAND,
        "commit": first["git"]["commit"],
        "cpu": environment["cpu"],
        "avx512": environment["avx512"],
        "cpu_count": environment["cpu_count"],
        "settings": len(rows),
        "best": {
            "setting": best["setting"],
            "n_seeds": int(best["n_seeds"]),
            "epochs": int(best["epochs"]),
            "test_accuracy_mean": float(best["test_accuracy_mean"]),
            "test_accuracy_std": float(best["test_accuracy_std"]),
        },
        "train_jobs_started_at": min(m["provenance"]["started_at"] for m in metrics),
        "train_jobs_finished_at": max(m["provenance"]["finished_at"] for m in metrics),
        "train_jobs_wall_s": sum(m["timing"]["job_wall_time_s"] for m in metrics),
    }


def record(results_dir: Path, bench_output: Path) -> list[Path]:
    """Copy what the last ``make`` and ``make bench`` wrote into records/; the paths written."""
    RECORDS.mkdir(exist_ok=True)
    written = []
    if bench_output.is_file():
        shutil.copyfile(bench_output, RECORDS / "bench.json")
        written.append(RECORDS / "bench.json")
    if Path(ResultsLayout(str(results_dir)).summary).is_file():
        path = RECORDS / "main-job.json"
        path.write_text(json.dumps(main_job_record(results_dir), indent=2) + "\n")
        written.append(path)
    return written


# ---------------------------------------------------------------- render


def render_main_job(rec: Record) -> str:
    best = rec["best"]
    return (
        f"On {machine_line(rec['cpu'], rec['avx512'])} ({rec['cpu_count']} cores), "
        f"`{rec['command']}` at commit {rec['commit'][:7]} trained {rec['settings']} settings; "
        f"their train jobs took {rec['train_jobs_wall_s'] / 60:.1f} min in all, and the best "
        f"setting ({best['setting']}, {best['epochs']} epochs) reached "
        f"{100 * best['test_accuracy_mean']:.2f} % ± {100 * best['test_accuracy_std']:.2f} "
        f"test accuracy over {best['n_seeds']} seeds. The accuracy is the same on every CPU "
        "(see Reproducibility); the time is this machine's."
    )


def render_bench(rec: Record) -> str:
    machine = rec["machine"]
    peak = (
        f'"peak": training FLOP/s ({machine["flops_per_training_image"] / 1e6:.2f} MFLOP per '
        f"image) over the FP32 peak of {machine['fp32_peak_gflops']:.0f} GFLOP/s "
        f"({machine['fp32_peak_rule']})."
    )
    load = ", ".join(f"{x:.1f}" for x in machine["load_average_start"])
    return (
        f"{rec['table']}\n\n"
        f"Machine: {machine_line(machine['cpu'], machine.get('avx512'))}, "
        f"{machine['cores']} cores, load average {load} at the start; torch {machine['torch']}, "
        f"Python {machine['python']}; {machine['data']} data ({machine['train_images']} training "
        f"images); {machine['threads']} intra-op threads; malloc {machine['malloc']}; commit "
        f"{machine['commit']}; `{machine['command']}` took "
        f"{machine['bench_seconds'] / 60:.1f} min. {peak}"
    )


RENDERERS: Mapping[str, Callable[[Record], str]] = {
    "main-job": render_main_job,
    "bench": render_bench,
}
_BLOCK = re.compile(
    r"<!-- numbers:(?P<name>[\w-]+) -->\n(?P<body>(?:.*?\n)?)<!-- /numbers:(?P=name) -->", re.S
)


def render(text: str, records: Path = RECORDS) -> str:
    """``text`` with every marked block rewritten from its record."""

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(
                f"README block numbers:{name} has no renderer (known: {sorted(RENDERERS)})"
            )
        rec = json.loads((records / f"{name}.json").read_text())
        return f"<!-- numbers:{name} -->\n{RENDERERS[name](rec)}\n<!-- /numbers:{name} -->"

    return _BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("record", "render", "check"))
    parser.add_argument("--results-dir", type=Path, default=ROOT / "results")
    parser.add_argument("--bench-output", type=Path, default=BENCH_OUTPUT)
    args = parser.parse_args(argv)
    if args.action == "record":
        for path in record(args.results_dir, args.bench_output):
            print(f"recorded {path.relative_to(ROOT)}")
        return 0
    current = README.read_text()
    expected = render(current)
    if args.action == "render":
        README.write_text(expected)
        return 0
    if current != expected:
        print(
            "README.md's numbers differ from records/: run `make readme-numbers`", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
