"""Tests for the IDX reader/writer."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet_cpp.idx import read_idx, read_idx_header, write_idx


def _header(type_byte: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(">HBB", 0, type_byte, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5), (0, 28, 28)])
def test_round_trip(tmp_path: Path, shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    path = write_idx(tmp_path / "x-idx", x)
    y = read_idx(path)
    assert y.dtype == torch.uint8
    assert y.shape == x.shape
    assert torch.equal(x, y)
    assert os.listdir(tmp_path) == ["x-idx"]  # no temporary file left behind


def test_round_trip_gz_and_numpy_input(tmp_path: Path) -> None:
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(tmp_path / "x-idx3-ubyte.gz", x)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert np.array_equal(read_idx(path).numpy(), x)
    # gzip is detected by content, not by name
    plain = tmp_path / "renamed"
    plain.write_bytes(path.read_bytes())
    assert np.array_equal(read_idx(plain).numpy(), x)


def test_written_bytes_follow_idx_layout(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels", torch.tensor([1, 2, 255], dtype=torch.uint8))
    assert path.read_bytes() == b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x01\x02\xff"


def test_reads_big_endian_multibyte_types(tmp_path: Path) -> None:
    values = [1, -2, 70000]
    path = tmp_path / "ints"
    path.write_bytes(_header(0x0C, (3,)) + struct.pack(">3i", *values))
    x = read_idx(path)
    assert x.dtype == torch.int32
    assert x.tolist() == values
    path.write_bytes(_header(0x0D, (2,)) + struct.pack(">2f", 1.5, -0.25))
    assert read_idx(path).tolist() == [1.5, -0.25]


def test_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(_header(0x08, (2, 28, 28)) + bytes(2 * 28 * 28 - 5))
    with pytest.raises(ValueError, match="truncated IDX data") as ei:
        read_idx(path)
    msg = str(ei.value)
    assert str(path) in msg
    assert "1568" in msg and "1563" in msg  # expected vs found bytes


def test_dims_disagree_with_length(tmp_path: Path) -> None:
    # header claims 5 images, data holds 4
    path = tmp_path / "dims-idx3-ubyte"
    path.write_bytes(_header(0x08, (5, 28, 28)) + bytes(4 * 28 * 28))
    with pytest.raises(ValueError, match=r"\(5, 28, 28\)") as ei:
        read_idx(path)
    assert str(path) in str(ei.value)


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (b"", "at least 4 bytes, file has 0"),
        (b"\x00\x00\x08", "at least 4 bytes, file has 3"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00", "3 dims need 16 header bytes, file has 9"),
    ],
)
def test_truncated_header(tmp_path: Path, payload: bytes, pattern: str) -> None:
    path = tmp_path / "hdr"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=pattern) as ei:
        read_idx(path)
    assert str(path) in str(ei.value)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "magic"
    path.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match=r"wrong IDX magic.*0x0000.*0x1234") as ei:
        read_idx(path)
    assert str(path) in str(ei.value)


def test_unsupported_type(tmp_path: Path) -> None:
    path = tmp_path / "type"
    path.write_bytes(_header(0x07, (1,)) + b"\x00")
    with pytest.raises(ValueError, match=r"unsupported IDX element type 0x07.*0x08") as ei:
        read_idx(path)
    assert str(path) in str(ei.value)


def test_zero_dims(tmp_path: Path) -> None:
    path = tmp_path / "nodims"
    path.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(ValueError, match="0 dimensions"):
        read_idx(path)


def test_trailing_garbage(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels-idx1-ubyte", torch.zeros(10, dtype=torch.uint8))
    with open(path, "ab") as f:
        f.write(b"junk")
    with pytest.raises(ValueError, match=r"trailing garbage.*need 10 .*found 14 \(4 extra\)") as ei:
        read_idx(path)
    assert str(path) in str(ei.value)
    with pytest.raises(ValueError, match="trailing garbage"):
        read_idx_header(path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_header(0x08, (4,)) + bytes(4))[:-6])
    with pytest.raises(ValueError, match="corrupt gzip") as ei:
        read_idx(path)
    assert str(path) in str(ei.value)


def test_read_header(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "h", torch.zeros(3, 28, 28, dtype=torch.uint8))
    dtype, dims = read_idx_header(path)
    assert dtype == np.dtype(">u1")
    assert dims == (3, 28, 28)


def test_write_rejects_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8 only"):
        write_idx(tmp_path / "f", torch.zeros(3, dtype=torch.float32))
    with pytest.raises(ValueError, match=r"1\.\.255 dimensions"):
        write_idx(tmp_path / "s", np.uint8(3))
    assert os.listdir(tmp_path) == []
