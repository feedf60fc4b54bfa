"""Snakemake's SLURM executor plugin against a real single-node SLURM cluster.

The session fixture starts munged, slurmctld and slurmd with tests/slurm/start_cluster.sh and
stops them with tests/slurm/stop_cluster.sh. Workflows run with profiles/slurm as shipped; the
only command-line additions are those a cluster without an accounting database needs, short
polling intervals and (for the pipeline) keeping the logs of successful jobs as evidence. The
cluster tests are marked `slurm` and run only with LENET_SLURM_TESTS=1 (tests/conftest.py; make
test-slurm and CI set it); set LENET_REQUIRE_SLURM=1 (CI does) to turn their skip into a
failure. The pipeline test runs the test workflow of tests/test_pipeline.py (config/test.yaml on
synthetic MNIST, in a throw-away copy of the tree) once through SLURM and once locally.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from workflow_utils import (
    assert_same_results,
    job_counts,
    load_config,
    make_workflow_dir,
    run_snakemake,
    setting_names,
)

from lenet_cpp.synthetic import write_synthetic_mnist

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
# The pipeline's rules that run where Snakemake runs; every other rule is submitted to SLURM.
LOCAL_RULES = {"all", "download_data"}
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
JOB_HEADER = re.compile(r"^(localrule|rule) (\w+):$", re.MULTILINE)
# Outputs that must be byte-identical between runs (timings make the rest differ).
MEMORY_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}


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


def slurm_jobs(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """SLURM's own record of the given jobs (kept for MinJobAge = 600 s after they end):
    job id -> state, cpus, min_memory (as squeue prints it, e.g. 1G) and partition."""
    listing = subprocess.run(
        [
            "squeue",
            "--states=all",
            "--noheader",
            "--format=%i|%T|%C|%m|%P",
            f"--jobs={','.join(job_ids)}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    records = {}
    for line in listing.split():
        job_id, state, cpus, memory, partition = line.split("|")
        records[job_id] = {"state": state, "cpus": cpus, "memory": memory, "partition": partition}
    return records


def slurm_job_states(job_ids: list[str]) -> dict[str, str]:
    """Job id -> SLURM state of the given jobs."""
    return {job_id: job["state"] for job_id, job in slurm_jobs(job_ids).items()}


def megabytes(squeue_memory: str) -> float:
    """squeue's memory column (e.g. 1G, 4000M) in MB (MiB, as sbatch --mem counts)."""
    return float(squeue_memory[:-1]) * MEMORY_UNITS[squeue_memory[-1]]


def test_profile_declares_cluster_resources() -> None:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    defaults = profile["default-resources"]
    assert {"mem_mb", "runtime"} <= defaults.keys()
    assert defaults["cpus_per_task"] == "threads"
    assert "slurm_partition" in (PROFILE / "config.yaml").read_text()
    # Rules declare their own resources (train's come from config.yaml); a profile override
    # would silently replace them.
    assert "set-resources" not in profile


def planned_jobs(dry_run_output: str) -> dict[str, dict[str, str]]:
    """Rule -> {"threads": ..., "resources": ...} from a dry run's job listing (the values as
    Snakemake prints them)."""
    jobs: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in dry_run_output.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            current = jobs.setdefault(header.group(2), {})
        elif current is not None and line.startswith(("    threads: ", "    resources: ")):
            key, value = line.strip().split(": ", 1)
            current[key] = value
    return jobs


def test_every_cluster_rule_declares_its_resources(tmp_path: Path) -> None:
    """Without any profile, every rule but the local ones asks for memory and wall time."""
    workdir = make_workflow_dir(tmp_path / "wf", n_train=64, n_test=16)
    done = run_snakemake(workdir, "--dry-run", "--forceall")
    jobs = planned_jobs(done.stdout + done.stderr)
    assert (
        jobs.keys()
        == {"build_extension", "train", "plot_setting", "summarize_grid", "paper_outputs"}
        | LOCAL_RULES
    )
    for rule, job in jobs.items():
        if rule not in LOCAL_RULES:
            resources = dict(item.split("=", 1) for item in job["resources"].split(", "))
            assert {"mem_mb", "runtime"} <= resources.keys(), (rule, job)
    config = load_config(workdir)
    assert jobs["train"]["threads"] == str(config["threads"])
    assert f"mem_mb={config['resources']['train_mem_mb']}," in jobs["train"]["resources"]


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


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic"), 512, 128, seed=0)


def submitted_jobs(workdir: Path, output: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, SLURM job id) of every submission Snakemake reported; checks that the
    job's log (kept with --slurm-keep-successful-logs) shows that job running that rule."""
    logdir = workdir / ".snakemake" / "slurm_logs"
    jobs = []
    for job_id, log in SUBMITTED.findall(output):
        rule_dir, *wildcards, name = Path(log).relative_to(logdir).parts
        assert rule_dir.startswith("rule_") and name == f"{job_id}.log", log
        rule = rule_dir.removeprefix("rule_")
        text = Path(log).read_text()
        assert f"rule {rule}:" in text and "Finished jobid" in text, text[-3000:]
        jobs.append((rule, "/".join(wildcards), job_id))
    return jobs


@pytest.mark.slurm
def test_test_workflow_on_slurm_equals_a_local_run(
    slurm_cluster: Path, tmp_path: Path, synthetic_source: Path
) -> None:
    on_slurm = make_workflow_dir(tmp_path / "slurm", synthetic=synthetic_source)
    config = load_config(on_slurm)
    done = run_snakemake(
        on_slurm,
        # As README.md says to run it (this cluster has no accounts, hence no slurm_account).
        "--default-resources",
        "slurm_partition=debug",
        *TEST_CLUSTER_ARGS,
        "--slurm-keep-successful-logs",
        profile=PROFILE,
    )
    output = done.stdout + done.stderr
    local_jobs = {rule for kind, rule in JOB_HEADER.findall(output) if kind == "localrule"}
    assert local_jobs == LOCAL_RULES

    # Every job but the local ones was submitted to SLURM (build_extension is up to date in the
    # copy; were it not, it would have to be among them) and completed there.
    planned = job_counts(output)
    assert "build_extension" not in planned
    jobs = submitted_jobs(on_slurm, output)
    expected = {rule: n for rule, n in planned.items() if rule not in LOCAL_RULES}
    assert Counter(rule for rule, _, _ in jobs) == expected
    settings = setting_names(config)
    train = {wildcards: job_id for rule, wildcards, job_id in jobs if rule == "train"}
    assert sorted(train) == sorted(settings)
    records = slurm_jobs([job_id for _, _, job_id in jobs])
    assert records.keys() == {job_id for _, _, job_id in jobs}
    assert {job["state"] for job in records.values()} == {"COMPLETED"}, records
    assert {job["partition"] for job in records.values()} == {"debug"}
    # SLURM granted what the rule declares: cpus = threads, memory from config.yaml.
    for setting, job_id in train.items():
        assert records[job_id]["cpus"] == str(config["threads"])
        assert megabytes(records[job_id]["memory"]) == config["resources"]["train_mem_mb"]
        metrics = json.loads(
            (on_slurm / config["results_dir"] / "runs" / setting / "metrics.json").read_text()
        )
        assert metrics["run"]["job_threads"] == config["threads"]

    locally = make_workflow_dir(tmp_path / "local", synthetic=synthetic_source)
    run_snakemake(locally)
    assert_same_results(on_slurm, locally)
