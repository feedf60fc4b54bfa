"""The project's single IDX reader/writer (the MNIST file format).

Layout: 2 zero bytes, a type byte, a dimension-count byte, one big-endian
uint32 per dimension, then the data, big-endian, row-major. Gzipped files
(``.gz``, detected by content) are read transparently.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["IDX_DTYPES", "read_idx", "read_idx_header", "write_idx"]

#: IDX type byte -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_WRITABLE = {np.dtype(np.uint8): 0x08}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == _GZIP_MAGIC:
            try:
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            except (OSError, EOFError) as e:
                raise ValueError(f"{path}: corrupt gzip stream ({e})") from e
        return f.read()


def _parse_header(path: Path, data: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, dims, header length) or raise ValueError naming ``path``."""
    if len(data) < 4:
        raise ValueError(
            f"{path}: truncated IDX header: expected at least 4 bytes, file has {len(data)}"
        )
    zero, type_byte, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(
            f"{path}: wrong IDX magic: expected first two bytes 0x0000, "
            f"got 0x{zero:04x} (magic 0x{data[:4].hex()})"
        )
    if type_byte not in IDX_DTYPES:
        supported = ", ".join(f"0x{t:02x}" for t in IDX_DTYPES)
        raise ValueError(
            f"{path}: unsupported IDX element type 0x{type_byte:02x}, expected one of {supported}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions, expected at least 1")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dims need {header_len} header bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    return IDX_DTYPES[type_byte], tuple(dims), header_len


def read_idx_header(path: str | os.PathLike[str]) -> tuple[np.dtype, tuple[int, ...]]:
    """Validate an IDX file fully and return its (dtype, dims) without building a tensor."""
    p = Path(path)
    data = _read_bytes(p)
    dtype, dims, header_len = _parse_header(p, data)
    _check_length(p, data, dtype, dims, header_len)
    return dtype, dims


def _check_length(
    path: Path, data: bytes, dtype: np.dtype, dims: tuple[int, ...], header_len: int
) -> None:
    need = math.prod(dims) * dtype.itemsize
    have = len(data) - header_len
    if have < need:
        raise ValueError(
            f"{path}: truncated IDX data: header dims {dims} ({dtype.name}) need "
            f"{need} data bytes, found {have}"
        )
    if have > need:
        raise ValueError(
            f"{path}: trailing garbage after IDX data: header dims {dims} ({dtype.name}) "
            f"need {need} data bytes, found {have} ({have - need} extra)"
        )


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file (raw or gzipped) into a tensor of the file's dims.

    Type 0x08 gives ``torch.uint8``; other IDX types map to the matching
    native-endian dtype. Malformed files raise ``ValueError`` naming the file.
    """
    p = Path(path)
    data = _read_bytes(p)
    dtype, dims, header_len = _parse_header(p, data)
    _check_length(p, data, dtype, dims, header_len)
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header_len)
    native = arr.astype(dtype.newbyteorder("="), copy=True).reshape(dims)
    return torch.from_numpy(native)


def write_idx(path: str | os.PathLike[str], array: torch.Tensor | np.ndarray) -> Path:
    """Write a uint8 tensor/array (at least 1-D) as an IDX file; gzip if ``path`` ends in .gz.

    The file is written to a temporary name and renamed into place.
    """
    p = Path(path)
    arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if arr.dtype not in _WRITABLE:
        raise ValueError(f"{p}: write_idx supports uint8 only, got {arr.dtype}")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"{p}: write_idx needs 1..255 dimensions, got {arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"{p}: dimension too large for IDX: {arr.shape}")
    header = struct.pack(">HBB", 0, _WRITABLE[arr.dtype], arr.ndim)
    header += struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr).tobytes()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            if p.suffix == ".gz":
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as g:
                    g.write(payload)
            else:
                f.write(payload)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
