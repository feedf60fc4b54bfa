"""The default test run is safe anywhere: no SLURM daemons, nothing under /etc, no endless hang."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SLURM_OPT_IN, pytest_collection_modifyitems

REPO = Path(__file__).resolve().parent.parent
SLURM_ETC = Path("/etc/slurm")


def etc_slurm_snapshot() -> dict[str, tuple[int, int, bytes]]:
    """Every entry under /etc/slurm: (mtime_ns, size, contents of files). Empty if absent."""
    if not SLURM_ETC.exists():
        return {}
    snapshot = {".": (SLURM_ETC.stat().st_mtime_ns, 0, b"")}
    for path in sorted(SLURM_ETC.rglob("*")):
        stat = path.stat()
        data = path.read_bytes() if path.is_file() else b""
        snapshot[str(path.relative_to(SLURM_ETC))] = (stat.st_mtime_ns, stat.st_size, data)
    return snapshot


def run_pytest(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_slurm_tests_are_skipped_without_the_opt_in():
    """A plain run of tests/test_slurm.py skips every cluster test before its fixtures run and
    leaves /etc/slurm as it was. LENET_REQUIRE_SLURM=1 turns any other reason to skip (no root,
    no SLURM installed) into a failure, so an all-skipped result can only come from the gate."""
    env = {k: v for k, v in os.environ.items() if k != SLURM_OPT_IN}
    env["LENET_REQUIRE_SLURM"] = "1"
    before = etc_slurm_snapshot()
    done = run_pytest(["-m", "slurm", "-rs", "-q", "tests/test_slurm.py"], env, REPO)
    output = done.stdout + done.stderr
    assert etc_slurm_snapshot() == before, "/etc/slurm changed"
    assert done.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\b\d+ skipped\b", summary), summary
    assert not re.search(r"passed|failed|error", summary), summary
    assert f"set {SLURM_OPT_IN}=1" in output


class _Item:
    def __init__(self, marked: bool) -> None:
        self.marked = marked
        self.added: list[pytest.MarkDecorator] = []

    def get_closest_marker(self, name: str) -> object | None:
        return object() if self.marked and name == "slurm" else None

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.added.append(marker)


@pytest.mark.parametrize(("value", "skipped"), [(None, True), ("0", True), ("1", False)])
def test_only_slurm_tests_depend_on_the_opt_in(monkeypatch, value, skipped):
    if value is None:
        monkeypatch.delenv(SLURM_OPT_IN, raising=False)
    else:
        monkeypatch.setenv(SLURM_OPT_IN, value)
    slurm, other = _Item(marked=True), _Item(marked=False)
    pytest_collection_modifyitems(None, [slurm, other])  # type: ignore[arg-type]
    assert [m.name for m in slurm.added] == (["skip"] if skipped else [])
    assert other.added == []


def test_default_configuration_has_a_per_test_timeout(request):
    addopts = " ".join(request.config.getini("addopts"))
    seconds = int(re.search(r"--timeout=(\d+)", addopts).group(1))
    assert 600 <= seconds <= 1800  # above the slowest legitimate test, far below CI's 90 min
    assert "pytest-timeout" in request.config.getini("required_plugins")


def test_a_hanging_test_fails_instead_of_stalling(tmp_path):
    """With the project's configuration (plugin required, signal method), a hang is a failure."""
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hang():\n    time.sleep(60)\n")
    config = REPO / "pyproject.toml"
    done = run_pytest(
        ["-c", str(config), "--rootdir", str(tmp_path), "--timeout=1", "-q", "test_hang.py"],
        dict(os.environ),
        tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Timeout" in done.stdout and "1 failed" in done.stdout
