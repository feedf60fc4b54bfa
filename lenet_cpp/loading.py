"""Read a dataset's IDX files into tensors (either dataset of ``lenet_cpp.datasets``).

``load_split`` reads the files of one split as they are in a directory (no download: see
``lenet_cpp.acquire``) and checks what the network needs: uint8 images ``[N, 28, 28]``,
uint8 labels ``[N]`` in 0..9, as many labels as images. ``idx_layout_error`` is the same
shape rule for a file's header alone (used to accept unverified files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .idx import read_idx
from .layout import MNIST_FILES

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["IMAGE_SIZE", "N_CLASSES", "SPLITS", "idx_layout_error", "load_split"]

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = MNIST_FILES
#: Each split's (images, labels) file names.
SPLITS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
)
IMAGE_SIZE = (28, 28)
N_CLASSES = 10


def idx_layout_error(name: str, dtype: np.dtype, dims: Sequence[int]) -> str | None:
    """Why an IDX file of ``dtype`` and ``dims`` cannot be the file ``name``; None if it can."""
    if "images" in name:
        want, ok = "[N, 28, 28]", len(dims) == 3 and tuple(dims[1:]) == IMAGE_SIZE
    else:
        want, ok = "[N]", len(dims) == 1
    if dtype.itemsize == 1 and dtype.kind == "u" and ok:
        return None
    return f"expected uint8 {want} for {name}, got {dtype.name} {list(dims)}"


def _split_file(data_dir: Path, name: str) -> Path:
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{data_dir / name} not found; fetch the dataset first "
        f"(`lenet-cpp download --data-dir {data_dir}` or lenet_cpp.acquire.ensure_dataset)"
    )


def _check(path: Path, tensor: torch.Tensor) -> None:
    problem = idx_layout_error(path.name, tensor.numpy().dtype, tuple(tensor.shape))
    if problem is not None:
        raise ValueError(f"{path}: {problem}")


def load_split(data_dir: str | os.PathLike[str], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split ("train" or "test"): images uint8 [N, 28, 28], labels uint8 [N].

    Reads the raw files, or their ``.gz`` versions. Raises ``ValueError`` for malformed
    files, labels outside 0..9, or when image and label counts differ.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    root = Path(data_dir)
    img_path, lbl_path = (_split_file(root, name) for name in SPLITS[split])
    images, labels = read_idx(img_path), read_idx(lbl_path)
    _check(img_path, images)
    _check(lbl_path, labels)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{split} count mismatch: {img_path} has {images.shape[0]} images "
            f"but {lbl_path} has {labels.shape[0]} labels"
        )
    if labels.numel() and int(labels.max()) >= N_CLASSES:
        raise ValueError(f"{lbl_path}: labels must be 0..9, found {int(labels.max())}")
    return images, labels
