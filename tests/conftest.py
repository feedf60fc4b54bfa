"""Shared pytest fixtures."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from fake_sources import FakeWeb

from lenet_cpp.synthetic import write_synthetic_mnist

SYNTHETIC_N_TRAIN = 512
SYNTHETIC_N_TEST = 128
#: Tests marked ``slurm`` start daemons and write /etc/slurm/slurm.conf: they run only when this
#: variable is 1 (``make test-slurm``, .ci/run), never in a plain ``make test``.
SLURM_OPT_IN = "LENET_SLURM_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``slurm`` tests before any of their fixtures runs unless they were asked for."""
    if os.environ.get(SLURM_OPT_IN) == "1":
        return
    skip = pytest.mark.skip(
        reason=f"starts a SLURM cluster and writes /etc/slurm: set {SLURM_OPT_IN}=1 "
        "(make test-slurm) to run it"
    )
    for item in items:
        if item.get_closest_marker("slurm") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _synthetic_mnist_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_mnist(
        tmp_path_factory.mktemp("synthetic_master"), SYNTHETIC_N_TRAIN, SYNTHETIC_N_TEST, seed=0
    )


@pytest.fixture
def synthetic_mnist_dir(tmp_path: Path, _synthetic_mnist_master: Path) -> Path:
    """A fresh (writable) directory holding small synthetic MNIST IDX files (512/128, seed 0)."""
    return Path(shutil.copytree(_synthetic_mnist_master, tmp_path / "synthetic_mnist"))


@pytest.fixture
def synthetic_md5(synthetic_mnist_dir: Path) -> dict[str, str]:
    """MD5 table of the files in ``synthetic_mnist_dir`` (stands in for the official one)."""
    return {
        p.name: hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(synthetic_mnist_dir.iterdir())
    }


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> FakeWeb:
    """The network, faked: ``urllib.request.urlopen`` serves what a test publishes."""
    fake = FakeWeb()
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake
