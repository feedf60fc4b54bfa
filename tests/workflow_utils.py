"""Helpers for tests that run the Snakemake workflow in a throw-away directory.

``make_workflow_dir`` lays out a clone-like copy of the repository (workflow files,
C++ sources, the lenet_cpp package with its compiled module) plus synthetic MNIST in
``data/synthetic-source`` (where ``config/test.yaml`` expects it), so a test never
touches the real checkout: editing or touching a C++ source there is harmless, and
the copied compiled module is marked newer than the copied sources, so
``build_extension`` only runs when a test makes it.

``run_snakemake(workdir, *args)`` runs ``python -m snakemake`` there with
``config/test.yaml`` layered over ``config.yaml`` (plus any ``overrides``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from lenet_cpp.layout import ResultsLayout
from lenet_cpp.setting import grid_settings
from lenet_cpp.synthetic import write_synthetic_mnist

__all__ = [
    "REPO_ROOT",
    "TEST_CONFIG",
    "expected_outputs",
    "extension_path",
    "job_counts",
    "load_config",
    "make_workflow_dir",
    "results_layout",
    "run_snakemake",
    "setting_names",
    "snakemake_command",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Workflow files and sources copied into a test workflow directory.
COPIED = (
    "Snakefile",
    "config.yaml",
    "config",
    "rules",
    "scripts",
    "schemas",
    "report",
    "environment.yml",
    "profiles",
    "cpp",
    "setup.py",
    "pyproject.toml",
    "lenet_cpp",
)
TEST_CONFIG = "config/test.yaml"
OVERRIDES = "test-overrides.yaml"
SYNTHETIC_SOURCE = "data/synthetic-source"
DEFAULT_TIMEOUT_S = 900.0
#: Outputs that must be byte-identical between runs (model.pt and metrics timing may differ).
DETERMINISTIC = (".png", ".pdf", "losses.csv", "epochs.csv", "predictions.csv")

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.partial", "build", "*.egg-info")


def extension_path(root: str | os.PathLike[str]) -> Path:
    """The compiled module ``lenet_cpp._C`` inside checkout ``root``."""
    return Path(root) / "lenet_cpp" / f"_C{sysconfig.get_config_var('EXT_SUFFIX')}"


def _copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=_IGNORE, copy_function=shutil.copy2)
        elif src.exists():
            shutil.copy2(src, dest / name)


def _mark_extension_current(dest: Path) -> None:
    """Give the copied module an mtime newer than every copied file."""
    newest = max(p.stat().st_mtime for p in dest.rglob("*") if p.is_file())
    stamp = max(newest + 1.0, time.time())
    os.utime(extension_path(dest), (stamp, stamp))


def make_workflow_dir(
    dest: str | os.PathLike[str],
    *,
    overrides: Mapping[str, object] | None = None,
    synthetic: str | os.PathLike[str] | None = None,
    n_train: int = 512,
    n_test: int = 128,
) -> Path:
    """Lay out a workflow directory in ``dest`` (created) and return it.

    ``synthetic``: a directory of synthetic IDX files to copy (else written here with
    ``n_train``/``n_test`` images). ``overrides`` is written to ``test-overrides.yaml``,
    which ``run_snakemake`` layers over ``config/test.yaml``.
    """
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    if not extension_path(REPO_ROOT).is_file():
        raise FileNotFoundError(f"{extension_path(REPO_ROOT)} is missing: build the extension")
    _copy_tree(root)
    _mark_extension_current(root)
    data = root / SYNTHETIC_SOURCE
    if synthetic is not None:
        shutil.copytree(synthetic, data)
    else:
        write_synthetic_mnist(data, n_train, n_test, seed=0)
    if overrides:
        (root / OVERRIDES).write_text(yaml.safe_dump(dict(overrides)), encoding="utf-8")
    return root


def _merge(base: dict, update: Mapping) -> dict:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(workdir: str | os.PathLike[str]) -> dict:
    """The configuration ``run_snakemake`` gives the workflow (before schema defaults)."""
    root = Path(workdir)
    config: dict = {}
    for name in ("config.yaml", TEST_CONFIG, OVERRIDES):
        if (root / name).is_file():
            _merge(config, yaml.safe_load((root / name).read_text(encoding="utf-8")) or {})
    return config


def setting_names(config: Mapping) -> list[str]:
    """Names of the grid's settings, as the workflow forms them (``grid_settings``)."""
    return list(grid_settings(config["grid"], config["epochs"]))


def results_layout(config: Mapping) -> ResultsLayout:
    """The layout of the configuration's results directory."""
    formats = tuple(config.get("paper", {}).get("formats", ResultsLayout.paper_formats))
    return ResultsLayout(str(config.get("results_dir", "results")), paper_formats=formats)


def expected_outputs(config: Mapping) -> list[str]:
    """Every result file the workflow writes (logs and benchmarks aside), relative to the
    workdir: the default target."""
    return sorted(results_layout(config).targets(setting_names(config), config["seeds"]))


def snakemake_command(
    workdir: str | os.PathLike[str], *args: str, profile: str | os.PathLike[str] | None = None
) -> list[str]:
    """``python -m snakemake`` in ``workdir`` with the test configuration (and overrides)."""
    root = Path(workdir).resolve()
    configfiles = [str(root / TEST_CONFIG)]
    if (root / OVERRIDES).is_file():
        configfiles.append(str(root / OVERRIDES))
    command = [sys.executable, "-m", "snakemake", "--directory", str(root)]
    command += ["--snakefile", str(root / "Snakefile"), "--configfile", *configfiles]
    if profile is not None:
        command += ["--profile", str(profile)]
    elif not {"--cores", "-c", "--jobs", "-j"} & set(args):
        command += ["--cores", "2"]
    return [*command, *args]


def run_snakemake(
    workdir: str | os.PathLike[str],
    *args: str,
    profile: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir``; raise AssertionError with its output when ``check`` fails.

    ``env`` adds to (not replaces) this process's environment; the virtual environment's
    ``bin`` comes first on PATH so that jobs find its tools (ninja, git, snakemake).
    """
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env["PATH"]])
    done = subprocess.run(
        snakemake_command(workdir, *args, profile=profile),
        cwd=workdir,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed with exit {done.returncode}\n"
            f"--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n{done.stderr[-6000:]}"
        )
    return done


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table Snakemake prints (rule -> count); empty when none."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def assert_same_results(workdir: Path, reference: Path) -> None:
    """Every declared output of ``workdir`` equals ``reference``'s in its deterministic part:
    metrics.json ``results``, ``setting`` and ``data``; CSVs and figures byte for byte."""
    for rel in expected_outputs(load_config(workdir)):
        a, b = workdir / rel, reference / rel
        if rel.endswith("metrics.json"):
            ma, mb = json.loads(a.read_text()), json.loads(b.read_text())
            assert ma["results"] == mb["results"], rel
            assert ma["setting"] == mb["setting"] and ma["data"] == mb["data"], rel
        elif rel.endswith(DETERMINISTIC):
            assert a.read_bytes() == b.read_bytes(), rel
