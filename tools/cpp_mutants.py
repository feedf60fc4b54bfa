"""Hand mutation testing of the C++ sources: apply each listed bug, rebuild, run its tests.

The mutations live in ``tools/cpp_mutants.yaml`` (file, old text, new text, pytest selection).
The repository's tracked and untracked-but-not-ignored files are copied into a scratch
directory, the extension is built there once (``setup.py build_ext --inplace``; later builds
are incremental), the selected tests must pass on the unmutated build, and then for each
mutant: apply, rebuild, run the tests, restore. The checkout itself is never modified.

A mutant is *killed* when its tests fail (or time out), *survives* when they pass, is
*stillborn* when it does not compile and *stale* when its old text is not found exactly once.
The exit status is 0 only when every mutant is killed.

    python tools/cpp_mutants.py                 # all mutants (make mutation-cpp)
    python tools/cpp_mutants.py --list
    python tools/cpp_mutants.py --check         # every old text matches once; builds nothing
    python tools/cpp_mutants.py --only no-shuffle --keep /tmp/mutants
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TABLE = Path(__file__).with_suffix(".yaml")
KILLED, SURVIVED, STILLBORN, STALE = "killed", "survived", "stillborn", "stale"


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str = ""

    def pattern(self) -> re.Pattern[str]:
        """``old`` with every run of whitespace matching any run of whitespace."""
        parts = [re.escape(part) for part in self.old.split()]
        return re.compile(r"\s+".join(parts))


def load_mutants(path: Path = TABLE) -> list[Mutant]:
    entries = yaml.safe_load(path.read_text())
    mutants = [
        Mutant(
            id=str(e["id"]),
            file=str(e["file"]),
            old=str(e["old"]),
            new=str(e["new"]),
            tests=tuple(str(t) for t in e["tests"]),
            why=str(e.get("why", "")),
        )
        for e in entries
    ]
    ids = [m.id for m in mutants]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate mutant ids {duplicates}")
    return mutants


def mutate(text: str, mutant: Mutant) -> str | None:
    """``text`` with the mutation applied, or None when ``old`` does not match exactly once."""
    matches = list(mutant.pattern().finditer(text))
    if len(matches) != 1:
        return None
    match = matches[0]
    return text[: match.start()] + mutant.new + text[match.end() :]


def stale_mutants(mutants: Sequence[Mutant], root: Path = ROOT) -> list[str]:
    """Ids of the mutants whose old text does not occur exactly once in their file."""
    return [m.id for m in mutants if mutate((root / m.file).read_text(), m) is None]


def copy_sources(destination: Path) -> None:
    """Copy what git would commit (tracked and untracked-but-not-ignored files)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ninja
    env["PYTHONPATH"] = str(workdir)
    env.pop("LENET_CPP_KERNELS", None)
    return env


def build(workdir: Path) -> tuple[bool, str]:
    command = [sys.executable, "setup.py", "-q", "build_ext", "--inplace"]
    done = subprocess.run(
        command, cwd=workdir, env=_env(workdir), capture_output=True, text=True, check=False
    )
    return done.returncode == 0, done.stdout + done.stderr


def run_tests(workdir: Path, tests: Sequence[str], timeout_s: float) -> tuple[bool, str]:
    """True when the tests pass; a timeout counts as a failure (the mutant hangs)."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            env=_env(workdir),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout_s:.0f} s"
    return done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def try_mutant(workdir: Path, mutant: Mutant, timeout_s: float) -> tuple[str, str]:
    path = workdir / mutant.file
    original = path.read_text()
    mutated = mutate(original, mutant)
    if mutated is None:
        return STALE, f"old text not found exactly once in {mutant.file}"
    path.write_text(mutated)
    try:
        built, log = build(workdir)
        if not built:
            return STILLBORN, log[-2000:]
        passed, log = run_tests(workdir, mutant.tests, timeout_s)
        return (SURVIVED if passed else KILLED), log
    finally:
        path.write_text(original)


def campaign(mutants: Sequence[Mutant], workdir: Path, timeout_s: float) -> dict[str, str]:
    copy_sources(workdir)
    built, log = build(workdir)
    if not built:
        raise SystemExit(f"the unmutated sources do not build:\n{log}")
    selections = sorted({m.tests for m in mutants})
    for tests in selections:
        passed, log = run_tests(workdir, tests, timeout_s)
        if not passed:
            raise SystemExit(f"tests fail before any mutation: {' '.join(tests)}\n{log}")
    outcomes: dict[str, str] = {}
    for mutant in mutants:
        started = time.perf_counter()
        outcome, log = try_mutant(workdir, mutant, timeout_s)
        outcomes[mutant.id] = outcome
        print(f"{outcome:9} {mutant.id}  ({time.perf_counter() - started:.0f} s)", flush=True)
        if outcome in (SURVIVED, STILLBORN, STALE):
            print("  " + log.strip().replace("\n", "\n  ")[-1500:], flush=True)
    build(workdir)  # leave the scratch copy unmutated
    return outcomes


def summary(outcomes: dict[str, str]) -> str:
    counts = {k: list(outcomes.values()).count(k) for k in (KILLED, SURVIVED, STILLBORN, STALE)}
    valid = counts[KILLED] + counts[SURVIVED]
    score = f"{counts[KILLED] / valid:.0%}" if valid else "n/a"
    details = ", ".join(f"{v} {k}" for k, v in counts.items())
    return f"C++ mutation score: {counts[KILLED]}/{valid} killed ({score}); {details}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--check", action="store_true", help="only check that each applies")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--keep", type=Path, help="scratch directory to use and keep (reused)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    args = parser.parse_args(argv)

    mutants = load_mutants()
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            parser.error(f"unknown mutant ids: {unknown}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.id:45} {m.file:20} {m.why}")
        return 0
    if args.check:
        stale = stale_mutants(mutants)
        for mutant_id in stale:
            print(f"{STALE:9} {mutant_id}")
        return 1 if stale else 0
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        outcomes = campaign(mutants, args.keep, args.timeout)
    else:
        with tempfile.TemporaryDirectory(prefix="lenet-mutants-") as scratch:
            outcomes = campaign(mutants, Path(scratch), args.timeout)
    print(summary(outcomes))
    return 0 if all(v == KILLED for v in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
