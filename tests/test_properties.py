"""Property-based tests (Hypothesis): argument checks at the C++ boundary and the IDX format.

Short by design (a few dozen examples each): they search the edges that hand-written tables
miss, such as huge integers, subnormal or negative-zero floats, zero-length dimensions.
"""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import lenet_cpp
from lenet_cpp.idx import read_idx, read_idx_header, write_idx

INT64 = {"min_value": -(2**63), "max_value": 2**63 - 1}
INT32 = {"min_value": -(2**31), "max_value": 2**31 - 1}
N = 8
IMAGES = torch.zeros(N, 28, 28, dtype=torch.uint8)
TARGETS = torch.arange(N) % 10
SHORT = settings(max_examples=40, deadline=None)


def call_train(**changes: object) -> lenet_cpp.TrainResult:
    """A valid zero-epoch call (returns at once) with ``changes`` applied."""
    args: dict[str, object] = {"epochs": 0, "learning_rate": 0.1, "threads": 1}
    args.update(changes)
    return lenet_cpp.train(IMAGES, TARGETS, args.pop("epochs"), args.pop("learning_rate"), **args)


def names(argument: str) -> str:
    """The error must start by naming the argument."""
    return rf"^{re.escape(argument)} must be"


# ---------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("name", "minimum"), [("epochs", 0), ("batch_size", 1), ("progress_every", 1)]
)
@SHORT
@given(data=st.data())
def test_counts_below_their_minimum_are_refused(name, minimum, data):
    value = data.draw(st.integers(max_value=minimum - 1, min_value=INT64["min_value"]))
    with pytest.raises(ValueError, match=names(name) + rf" >= {minimum}, got {value}$"):
        call_train(**{name: value})


@SHORT
@given(
    st.one_of(
        st.integers(min_value=INT32["min_value"], max_value=-1),
        st.integers(min_value=4097, max_value=INT32["max_value"]),
    )
)
def test_threads_outside_their_range_are_refused(threads):
    """Negative counts, and counts beyond the machine's limit (a few per CPU), are refused."""
    with pytest.raises(ValueError, match=names("threads") + rf" in 0\.\.\d+ .*, got {threads}$"):
        call_train(threads=threads)


@SHORT
@given(st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf, -math.inf])))
def test_learning_rate_must_be_positive_and_finite(learning_rate):
    with pytest.raises(ValueError, match=names("learning_rate")):
        call_train(learning_rate=learning_rate)


@SHORT
@given(
    st.sampled_from(["momentum", "weight_decay"]),
    st.one_of(st.floats(max_value=-1e-300), st.sampled_from([math.nan, math.inf, -math.inf])),
)
def test_momentum_and_weight_decay_must_be_finite_and_not_negative(argument, value):
    with pytest.raises(ValueError, match=names(argument)):
        call_train(**{argument: value})


@SHORT
@given(
    learning_rate=st.floats(min_value=5e-324, allow_infinity=False),
    batch_size=st.integers(min_value=1, max_value=INT64["max_value"]),
    threads=st.integers(min_value=0, max_value=4),
    momentum=st.floats(min_value=0.0, allow_infinity=False),
    weight_decay=st.floats(min_value=0.0, allow_infinity=False),
)
def test_valid_arguments_are_accepted(learning_rate, batch_size, threads, momentum, weight_decay):
    """The boundary values themselves (smallest positive float, batch larger than the data,
    threads 0) pass the checks; zero epochs returns the initial model."""
    result = call_train(
        learning_rate=learning_rate, batch_size=batch_size, threads=threads,
        momentum=momentum, weight_decay=weight_decay,
    )  # fmt: skip
    assert result.step_losses.numel() == 0


@SHORT
@given(st.integers(max_value=0, min_value=INT64["min_value"]))
def test_inference_batch_size_below_one_is_refused(batch_size):
    model = lenet_cpp.LeNet5()
    with pytest.raises(ValueError, match=names("batch_size")):
        model.predict(IMAGES, batch_size=batch_size)
    with pytest.raises(ValueError, match=names("batch_size")):
        model.evaluate(IMAGES, TARGETS, batch_size=batch_size)


# ---------------------------------------------------------------- IDX round trip

UINT8_ARRAYS = arrays(np.uint8, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7))
SUFFIXES = st.sampled_from([".idx", ".idx.gz"])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idx_properties")


@SHORT
@given(array=UINT8_ARRAYS, suffix=SUFFIXES, as_tensor=st.booleans())
def test_idx_round_trip(scratch, array, suffix, as_tensor):
    path = scratch / f"round{suffix}"
    write_idx(path, torch.from_numpy(array.copy()) if as_tensor else array)
    back = read_idx(path)
    assert back.dtype == torch.uint8
    assert tuple(back.shape) == array.shape
    assert np.array_equal(back.numpy(), array)
    assert read_idx_header(path) == (np.dtype(">u1"), array.shape)
    raw = gzip.decompress(path.read_bytes()) if suffix.endswith(".gz") else path.read_bytes()
    assert len(raw) == 4 + 4 * array.ndim + array.size
    assert raw[:4] == bytes([0, 0, 0x08, array.ndim])


@SHORT
@given(array=UINT8_ARRAYS, data=st.data())
def test_idx_truncated_or_padded_files_are_refused(scratch, array, data):
    path = scratch / "cut.idx"
    write_idx(path, array)
    whole = path.read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1), label="kept bytes")
    path.write_bytes(whole[:cut])
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": truncated IDX"):
        read_idx(path)
    extra = data.draw(st.binary(min_size=1, max_size=16), label="appended bytes")
    path.write_bytes(whole + extra)
    with pytest.raises(ValueError, match="trailing garbage"):
        read_idx(path)


@SHORT
@given(
    arrays(
        st.sampled_from([np.int8, np.int16, np.int32, np.float32, np.float64, np.bool_]),
        array_shapes(min_dims=1, max_dims=2, max_side=3),
    )
)
def test_idx_writer_refuses_other_dtypes(scratch, array):
    path = scratch / "other.idx"
    path.unlink(missing_ok=True)
    with pytest.raises(ValueError, match="uint8 only"):
        write_idx(path, array)
    assert not path.exists()
