"""Check the dataset at the moment it is used, not only when it was fetched.

``verify_files`` compares each file's MD5 with an expected table (the dataset's official
sums, ``lenet_cpp.datasets``, or the manifest the pipeline's data rule wrote) and raises
``DataIntegrityError`` naming the file, both checksums and how to fetch the file again.
Hashing the four IDX files takes a fraction of a second.

The manifest (``layout.DATA_MANIFEST`` beside the IDX files) is the data rule's declared
output: it records the MD5 of every file the rule verified, so ``--forceall`` deletes and
rewrites only the manifest, never the data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from torchvision.datasets.utils import calculate_md5

from .layout import DATA_MANIFEST, MNIST_FILES
from .results import write_json

__all__ = [
    "MANIFEST_FORMAT",
    "OFFICIAL_MD5",
    "DataIntegrityError",
    "read_manifest",
    "verify_files",
    "write_manifest",
]

MANIFEST_FORMAT = "lenet_cpp.data_manifest"
#: Where ``DatasetInfo.md5`` comes from, as error messages name it.
OFFICIAL_MD5 = "the dataset's official checksum"
REFETCH_HINT = (
    "delete it and fetch it again: `lenet-cpp download --data-dir {dir} [--dataset NAME]`, "
    "or in the pipeline `snakemake --cores 1 --forcerun download_data`"
)


class DataIntegrityError(ValueError):
    """A data file is missing or its MD5 differs from the expected one."""

    def __init__(self, path: Path, expected: str, found: str | None, source: str) -> None:
        self.path, self.expected, self.found = path, expected, found
        state = "is missing" if found is None else f"has MD5 {found}"
        hint = REFETCH_HINT.format(dir=path.parent)
        super().__init__(
            f"{path} {state}, expected MD5 {expected} ({source}); the file is corrupt, "
            f"truncated or not the dataset: {hint}"
        )


def verify_files(
    data_dir: str | os.PathLike[str], expected: Mapping[str, str], *, source: str
) -> dict[str, str]:
    """Check every file of ``expected`` (name -> MD5) in ``data_dir``; return their MD5s.

    ``source`` says where the expected sums come from (named in the error).
    """
    root = Path(data_dir)
    found = {}
    for name, md5 in expected.items():
        path = root / name
        digest = calculate_md5(path) if path.is_file() else None
        if digest != md5:
            raise DataIntegrityError(path, md5, digest, source)
        found[name] = digest
    return found


def write_manifest(
    data_dir: str | os.PathLike[str], *, verified: bool, names: Iterable[str] = MNIST_FILES
) -> Path:
    """Record the MD5 of each file in ``data_dir/DATA_MANIFEST``, atomically; return its path."""
    root = Path(data_dir)
    record = {
        "format": MANIFEST_FORMAT,
        "verified_against_official_md5": verified,
        "md5": {name: calculate_md5(root / name) for name in names},
    }
    path = root / DATA_MANIFEST
    write_json(path, record)
    return path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, str]:
    """The name -> MD5 table of a manifest written by ``write_manifest``."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a data manifest written by lenet-cpp")
    return dict(record["md5"])
