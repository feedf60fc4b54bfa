"""Snakemake's SLURM executor plugin against a real single-node SLURM cluster.

The session fixture starts munged, slurmctld and slurmd with tests/slurm/start_cluster.sh and
stops them with tests/slurm/stop_cluster.sh. The workflow runs with profiles/slurm as shipped;
the only command-line additions are those a cluster without an accounting database needs and
short polling intervals. The cluster tests are marked `slurm`; set LENET_REQUIRE_SLURM=1 (CI does)
to turn their skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SLURM_DIR = REPO / "tests" / "slurm"
PROFILE = REPO / "profiles" / "slurm"
SELF_CHECK_SNAKEFILE = SLURM_DIR / "Snakefile"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CONF_MARKER = "# lenet-cpp-test-cluster "
REQUIRED_COMMANDS = ("munged", "mungekey", "runuser", "slurmctld", "slurmd", "sinfo", "squeue")
# What a cluster without slurmdbd needs, plus polling suited to seconds-long jobs.
TEST_CLUSTER_ARGS = (
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
)
JOB_RECORD = re.compile(r"^job=(\d+) cpus=(\d+)$")


def _cannot_run_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (slurmd runs the jobs as root)"
    missing = [cmd for cmd in REQUIRED_COMMANDS if shutil.which(cmd) is None]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install slurm-wlm munge"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm not installed (pip install it)"
    if SLURM_CONF.exists() and CONF_MARKER not in SLURM_CONF.read_text():
        return f"{SLURM_CONF} belongs to another SLURM installation; not touching it"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("LENET_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM test required (LENET_REQUIRE_SLURM=1) but cannot run: {reason}")
    pytest.skip(reason)


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LENET_SLURM_OWNER_PID": str(os.getpid())}
    return subprocess.run(
        ["bash", str(SLURM_DIR / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A running single-node cluster; yields its state directory."""
    reason = _cannot_run_reason()
    if reason:
        _skip_or_fail(reason)
    state_dir = Path(tempfile.mkdtemp(prefix="lenet-slurm-"))
    started = _run_script("start_cluster.sh", str(state_dir))
    if started.returncode == 2:
        shutil.rmtree(state_dir, ignore_errors=True)
        _skip_or_fail(started.stderr.strip().splitlines()[-1])
    if started.returncode != 0:
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"could not start the test cluster:\n{started.stderr}")
    try:
        yield state_dir
    finally:
        stopped = _run_script("stop_cluster.sh", str(state_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert not state_dir.exists()
        assert not SLURM_CONF.exists() or CONF_MARKER not in SLURM_CONF.read_text()


def run_snakemake_on_slurm(
    workdir: Path, *targets: str, snakefile: Path = SELF_CHECK_SNAKEFILE
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake with profiles/slurm; jobs inherit this environment (sbatch --export=ALL)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        str(PROFILE),
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        *TEST_CLUSTER_ARGS,
        *targets,
    ]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def slurm_job_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's own record of the given jobs (kept for MinJobAge = 600 s after they end)."""
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", f"--jobs={','.join(job_ids)}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in listing.split())


def test_profile_declares_cluster_resources() -> None:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert {"mem_mb", "runtime"} <= defaults.keys()
    assert defaults["cpus_per_task"] == "threads"
    assert "slurm_partition" in (PROFILE / "config.yaml").read_text()
    assert {"build_extension", "train"} <= profile["set-resources"].keys()


@pytest.mark.slurm
def test_every_job_runs_as_a_slurm_job(slurm_cluster: Path, tmp_path: Path) -> None:
    result = run_snakemake_on_slurm(tmp_path, "all")
    assert result.returncode == 0, result.stderr

    records = {
        name: JOB_RECORD.match((tmp_path / "out" / f"{name}.txt").read_text().strip())
        for name in ("one", "two", "wide")
    }
    assert all(records.values()), records
    job_ids = [match.group(1) for match in records.values()]
    assert len(set(job_ids)) == 3, "each job must be its own SLURM job"
    # cpus-per-task follows the rule's threads.
    assert [match.group(2) for match in records.values()] == ["1", "1", "2"]
    for job_id in job_ids:
        assert f"submitted with SLURM jobid {job_id} " in result.stderr
    assert slurm_job_states(job_ids) == dict.fromkeys(job_ids, "COMPLETED")


@pytest.mark.slurm
def test_failing_job_fails_the_workflow_and_names_its_log(
    slurm_cluster: Path, tmp_path: Path
) -> None:
    result = run_snakemake_on_slurm(tmp_path, "fail")
    assert result.returncode != 0

    error = re.search(
        r"Error in rule fail:.*?log: (\S+/rule_fail/(\d+)\.log)", result.stderr, re.DOTALL
    )
    assert error, result.stderr
    log_path, job_id = Path(error.group(1)), error.group(2)
    assert f"failing on purpose in job {job_id}" in log_path.read_text()
    assert slurm_job_states([job_id]) == {job_id: "FAILED"}
    assert not (tmp_path / "out" / "never.txt").exists()
