"""Shared pytest fixtures."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from lenet_cpp.synthetic import write_synthetic_mnist

SYNTHETIC_N_TRAIN = 512
SYNTHETIC_N_TEST = 128


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
