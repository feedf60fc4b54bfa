"""The workflow as package data and ``lenet-cpp pipeline`` (fast checks, no compiling).

- setup.py's WORKFLOW_PATTERNS (what build_py copies into ``lenet_cpp/workflow``) are all in
  the sdist by MANIFEST.in, and ``make sdist`` builds the sdist;
- ``lenet-cpp pipeline`` composes the snakemake command as documented and passes unknown
  options through;
- the workflow laid out as an installed package (``site/lenet_cpp/workflow``) plans no build and
  reads the installed module; under ``--sdm conda`` a source checkout names the extension for
  the environment's Python (environment.yml), not for the one running Snakemake.

The real thing (sdist -> conda package / pip venv -> pipeline run) is tests/test_conda_build.py.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from setuptools.command.egg_info import FileList
from workflow_utils import REPO_ROOT, TEST_CONFIG, extension_path

from lenet_cpp import pipeline

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _workflow_patterns() -> tuple[str, ...]:
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "WORKFLOW_PATTERNS"
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no WORKFLOW_PATTERNS")


def _workflow_files() -> list[str]:
    return sorted(
        str(path.relative_to(REPO_ROOT))
        for pattern in _workflow_patterns()
        for path in REPO_ROOT.glob(pattern)
    )


def test_manifest_puts_the_workflow_and_sources_into_the_sdist() -> None:
    files = FileList()
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # MANIFEST.in's patterns are relative to the project root
    try:
        files.findall()
        for line in (REPO_ROOT / "MANIFEST.in").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                files.process_template_line(line)
    finally:
        os.chdir(cwd)
    included = {os.path.normpath(name) for name in files.files}
    workflow = _workflow_files()
    assert {"Snakefile", "config.yaml", "rules/common.smk", "scripts/train.py"} <= set(workflow)
    assert set(workflow) <= included, sorted(set(workflow) - included)
    sources = {str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("cpp/*.[hc]*")}
    assert sources and sources <= included, sorted(sources - included)
    assert {"CITATION.cff", "CHANGELOG.md"} <= included
    assert not any(name.endswith(".so") for name in included)


def test_make_sdist_builds_without_isolation() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "-m build --sdist --no-isolation --outdir dist ." in makefile


def test_source_checkout_runs_its_top_level_workflow() -> None:
    assert pipeline.workflow_dir() == REPO_ROOT  # no lenet_cpp/workflow in a checkout


def _command(*argv: str, workdir: Path = Path("/w")) -> list[str]:
    args, rest = pipeline.build_parser().parse_known_args(list(argv))
    return pipeline.snakemake_command(args, rest, workdir)


def test_pipeline_command_layers_configs_and_passes_snakemake_options(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    command = _command(
        "--cores", "3", "--configfile", str(mine), "-n", "--config", "epochs=2", workdir=tmp_path
    )
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    assert command[command.index("--snakefile") + 1] == str(REPO_ROOT / "Snakefile")
    assert command[command.index("--directory") + 1] == str(tmp_path)
    assert command[command.index("--cores") + 1] == "3"
    configs = command[command.index("--configfile") + 1 :][:2]
    assert configs == [str(REPO_ROOT / "config.yaml"), str(mine)]  # defaults first
    assert command[-3:] == ["-n", "--config", "epochs=2"]  # snakemake's, untouched
    assert ["--report", "report.html", "--report-after-run"] == command[-6:-3]
    assert "--report" not in _command("--no-report")


def _lenet_cpp(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lenet_cpp", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_print_config_is_the_default_config(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO_ROOT)}
    printed = _lenet_cpp("pipeline", "--print-config", cwd=tmp_path, env=env)
    assert printed == (REPO_ROOT / "config.yaml").read_text()
    assert _lenet_cpp("pipeline", "--print-workflow-dir", cwd=tmp_path, env=env).strip() == str(
        REPO_ROOT
    )


@pytest.fixture
def installed_site(tmp_path: Path) -> Path:
    """lenet_cpp laid out as a wheel installs it: the package, its module, lenet_cpp/workflow."""
    if not extension_path(REPO_ROOT).is_file():
        pytest.skip("the compiled module is not built")
    site = tmp_path / "site"
    package = site / "lenet_cpp"
    shutil.copytree(REPO_ROOT / "lenet_cpp", package, ignore=shutil.ignore_patterns("__pycache__"))
    for relative in _workflow_files():
        destination = package / "workflow" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, destination)
    return site


def test_installed_workflow_builds_nothing_and_reads_the_installed_module(
    installed_site: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {"PYTHONPATH": str(installed_site)}
    workflow = installed_site / "lenet_cpp" / "workflow"
    printed = _lenet_cpp("pipeline", "--print-workflow-dir", cwd=workdir, env=env)
    assert printed.strip() == str(workflow)
    output = _lenet_cpp(
        "pipeline", "--configfile", str(workflow / TEST_CONFIG), "-n", "--no-report",
        cwd=workdir, env=env,
    )  # fmt: skip
    assert "build_extension" not in output
    assert re.search(r"^train\s+2$", output, re.MULTILINE), output  # the two test settings
    # no path into the checkout, apart from the interpreter (whose venv may live in it)
    assert str(REPO_ROOT) not in output.replace(str(installed_site), "").replace(sys.prefix, "")
    assert not any(workdir.iterdir()) or {p.name for p in workdir.iterdir()} <= {".snakemake"}


FAKE_CONDA = """#!/bin/sh
# Stand-in for conda, enough for `snakemake --sdm conda -n` (which only asks conda about itself).
case "$*" in
  "info --json") echo '{{"conda_prefix": "{prefix}", "platform": "linux-64", "envs_dirs": []}}';;
  "--version") echo "conda 24.11.0";;
  "config --get channel_priority --json") echo '{{"get": {{"channel_priority": "strict"}}}}';;
  *) echo "fake conda: $*" >&2; exit 1;;
esac
"""


def test_sdm_conda_names_the_extension_for_the_environments_python(tmp_path: Path) -> None:
    """The MissingOutputException of issue 13: build_extension's expected file must carry the
    environment's Python tag (environment.yml), not the tag of the Python running Snakemake."""
    checkout = tmp_path / "checkout"
    for relative in [*_workflow_files(), "setup.py"]:
        destination = checkout / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, destination)
    shutil.copytree(REPO_ROOT / "cpp", checkout / "cpp")
    shutil.copytree(REPO_ROOT / "lenet_cpp", checkout / "lenet_cpp")
    (checkout / "lenet_cpp" / f"_C{SUFFIX}").unlink(missing_ok=True)
    running = f"{sys.version_info.major}{sys.version_info.minor}"
    other = "312" if running != "312" else "313"
    env_file = checkout / "environment.yml"
    env_file.write_text(
        env_file.read_text().replace(
            f"python {sys.version_info.major}.{sys.version_info.minor}.*",
            f"python {other[0]}.{other[1:]}.*",
        )
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA.format(prefix=tmp_path / "conda"))
    conda.chmod(0o755)
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--sdm", "conda", "--cores", "1",
         "--configfile", str(checkout / TEST_CONFIG), "--snakefile", str(checkout / "Snakefile"),
         "--directory", str(tmp_path / "work")],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    expected = SUFFIX.replace(f"cpython-{running}", f"cpython-{other}")
    assert f"lenet_cpp/_C{expected}" in output, output
    assert f"_C{SUFFIX}" not in output
