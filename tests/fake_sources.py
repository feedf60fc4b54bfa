"""Local stand-ins for the places datasets come from: the web, npm, apt-get and dpkg-deb."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import urllib.error
import urllib.request
from pathlib import Path

from lenet_cpp.layout import MNIST_FILES


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def gz_files(src: Path, dst: Path) -> dict[str, str]:
    """Write the .gz version of each file of ``src`` into ``dst``; return their MD5 table."""
    dst.mkdir(parents=True)
    table = {}
    for name in MNIST_FILES:
        data = gzip.compress((src / name).read_bytes(), mtime=0)
        (dst / f"{name}.gz").write_bytes(data)
        table[f"{name}.gz"] = md5(data)
    return table


class Response(io.BytesIO):
    """What ``urllib.request.urlopen`` returns, as far as torchvision's download reads it."""

    def __init__(self, url: str, data: bytes) -> None:
        super().__init__(data)
        self.url, self.length = url, len(data)


class FakeWeb:
    """``urllib.request.urlopen`` (torchvision's ``download_url`` calls it) serving files.

    ``serve(url_dir, dir)`` publishes a directory; any other URL fails like a host that
    does not resolve. ``opened`` lists every URL requested, ``timeouts`` the socket timeout
    in force at each request.
    """

    def __init__(self) -> None:
        self.sites: dict[str, Path] = {}
        self.opened: list[str] = []
        self.timeouts: list[float | None] = []

    def serve(self, url_dir: str, directory: Path) -> str:
        self.sites[url_dir] = directory
        return url_dir

    def __call__(self, request: urllib.request.Request | str, timeout: object = None) -> Response:
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.opened.append(url)
        self.timeouts.append(socket.getdefaulttimeout())
        base, _, name = url.rpartition("/")
        site = self.sites.get(base + "/")
        if site is None or not (site / name).is_file():
            raise urllib.error.URLError(f"cannot reach {url}")
        return Response(url, (site / name).read_bytes())


def write_script(path: Path, body: str) -> Path:
    """An executable shell script standing in for a command (npm, apt-get, dpkg-deb)."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path
