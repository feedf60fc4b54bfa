"""``lenet-cpp pipeline``: run the Snakemake workflow that comes with the package, here.

The workflow (Snakefile, rules, scripts, schema, report captions, default config) is shipped
inside the installed package as ``lenet_cpp/workflow`` (setup.py's build_py copies it from the
top of the source tree); an editable install uses those top-level files directly. Outputs go to
the current directory, as with ``snakemake`` in a source checkout. The installed workflow
builds nothing: its jobs import the installed ``lenet_cpp`` and its compiled module.

This module imports neither torch nor the extension, so ``--help`` and ``--print-config`` are
quick and work before anything is built.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main", "snakemake_command", "workflow_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_REPORT = "report.html"


def workflow_dir() -> Path:
    """The workflow this package runs: the installed copy, else the source checkout's."""
    for candidate in (PACKAGE_DIR / "workflow", PACKAGE_DIR.parent):
        if (candidate / "Snakefile").is_file() and (candidate / "rules").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no Snakefile in {PACKAGE_DIR / 'workflow'} or {PACKAGE_DIR.parent}: "
        "reinstall lenet-cpp (its wheel or conda package carries the workflow)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lenet-cpp pipeline",
        allow_abbrev=False,  # --config (snakemake's) must not be taken for --configfile
        description=(
            "Run the lenet-cpp Snakemake workflow (training grid, figures, summary, report) "
            "in the current directory. Options it does not know are passed to snakemake, "
            "e.g. -n (dry run), --config epochs=2, --profile DIR, --rerun-incomplete."
        ),
    )
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="CPU cores to use (%(default)s)"
    )
    parser.add_argument(
        "--configfile",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="configuration on top of the default one (repeatable; see --print-config)",
    )
    parser.add_argument(
        "--report",
        default=DEFAULT_REPORT,
        metavar="HTML",
        help="write the HTML report here after the run (%(default)s)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument(
        "--print-config", action="store_true", help="print the default configuration and exit"
    )
    parser.add_argument(
        "--print-workflow-dir", action="store_true", help="print the workflow's directory and exit"
    )
    return parser


def snakemake_command(
    args: argparse.Namespace, snakemake_args: Sequence[str], workdir: Path
) -> list[str]:
    """The snakemake command line that ``lenet-cpp pipeline`` runs."""
    workflow = workflow_dir()
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(workflow / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(args.cores),
        # the default configuration first, the user's files on top of it
        "--configfile",
        str(workflow / "config.yaml"),
        *(str(path.resolve()) for path in args.configfile),
    ]
    if not args.no_report:
        command += ["--report", args.report, "--report-after-run"]
    return [*command, *snakemake_args]


def main(argv: Sequence[str] | None = None) -> int:
    """Print what was asked for, or run snakemake in this process's place (``os.execv``:
    its exit status is the command's, and Ctrl-C reaches it alone)."""
    args, snakemake_args = build_parser().parse_known_args(argv)
    if args.print_config:
        sys.stdout.write((workflow_dir() / "config.yaml").read_text())
        return 0
    if args.print_workflow_dir:
        print(workflow_dir())
        return 0
    missing = [str(path) for path in args.configfile if not path.is_file()]
    if missing:
        print(f"lenet-cpp pipeline: no such config file: {', '.join(missing)}", file=sys.stderr)
        return 2
    command = snakemake_command(args, snakemake_args, Path.cwd())
    sys.stdout.flush()
    os.execv(command[0], command)  # does not return
