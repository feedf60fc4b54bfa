"""What one training job is about: its hyperparameters (a grid point) and its data.

``Hyperparameters`` is one grid point; ``grid_settings`` expands a config's grid into named
points (the Snakefile's ``SETTINGS``); ``TrainData`` is the normalised train/test split that
every seed of a job shares. Importing this module loads neither torch nor the extension.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, TypedDict

from .datasets import dataset_info
from .layout import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_DATASET,
    DEFAULT_OUTPUT,
    DEFAULT_SCHEDULE,
    GRID_KEYS,
    setting_name,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "SCHEDULE_OPTIONS",
    "Hyperparameters",
    "TrainData",
    "TrainKwargs",
    "grid_settings",
]

LOG = logging.getLogger("lenet_cpp.setting")


class TrainKwargs(TypedDict):
    """The keyword arguments of ``lenet_cpp.train`` that a grid point fixes."""

    epochs: int
    learning_rate: float
    batch_size: int
    momentum: float
    weight_decay: float
    activation: str
    pooling: str
    architecture: str
    output: str
    schedule: str
    milestones: tuple[int, ...]
    gamma: float
    warmup: float | None
    final_learning_rate: float | None
    augment: bool | dict[str, float]


#: The parameters of the learning-rate schedules (the keys of a config's ``schedule_options``).
SCHEDULE_OPTIONS: tuple[str, ...] = ("milestones", "gamma", "warmup", "final_learning_rate")


@dataclass(frozen=True)
class Hyperparameters:
    """One grid point: everything ``lenet_cpp.train`` needs except seed, data and threads,
    and the dataset it trains on (``lenet_cpp.datasets``)."""

    activation: str = "relu"
    pooling: str = "max"
    learning_rate: float = 0.01
    batch_size: int = 64
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 1
    dataset: str = DEFAULT_DATASET
    architecture: str = DEFAULT_ARCHITECTURE
    output: str = DEFAULT_OUTPUT
    #: The learning-rate schedule and its parameters (``lenet_cpp.train``'s, checked there).
    schedule: str = DEFAULT_SCHEDULE
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup: float | None = None
    final_learning_rate: float | None = None
    #: Random affine distortions of the training images; ``augment_ranges`` (None: the
    #: defaults) changes their ranges.
    augment: bool = False
    augment_ranges: Mapping[str, float] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        dataset_info(self.dataset)  # ValueError naming the datasets
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.output != DEFAULT_OUTPUT and self.architecture == DEFAULT_ARCHITECTURE:
            raise ValueError(
                f"output={self.output!r} needs architecture='lenet5-1998', "
                f"got architecture={self.architecture!r}"
            )
        # lists from YAML/JSON become tuples and plain dicts, so records compare equal
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if self.augment_ranges is not None:
            object.__setattr__(self, "augment_ranges", dict(self.augment_ranges))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Hyperparameters:
        """Build from a dict with (a subset of) the field names; unknown keys are an error."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**values)  # type: ignore[arg-type]  # checked by __post_init__ and train()

    @property
    def name(self) -> str:
        """The grid point's name (``lenet_cpp.layout.setting_name``)."""
        return setting_name(**{key: getattr(self, key) for key in GRID_KEYS})

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def train_kwargs(self) -> TrainKwargs:
        """Keyword arguments of ``lenet_cpp.train`` (epochs and learning rate included)."""
        return TrainKwargs(
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            activation=self.activation,
            pooling=self.pooling,
            architecture=self.architecture,
            output=self.output,
            schedule=self.schedule,
            milestones=self.milestones,
            gamma=self.gamma,
            warmup=self.warmup,
            final_learning_rate=self.final_learning_rate,
            augment=dict(self.augment_ranges)
            if self.augment and self.augment_ranges is not None
            else self.augment,
        )

    def steps_per_epoch(self, n_train: int) -> int:
        return math.ceil(n_train / self.batch_size)


def grid_settings(
    grid: Mapping[str, Sequence[object]],
    epochs: int,
    *,
    schedule_options: Mapping[str, object] | None = None,
    augment_ranges: Mapping[str, float] | None = None,
) -> dict[str, Hyperparameters]:
    """Setting name -> hyperparameters, for every combination of the grid's values.

    ``grid`` maps each of ``GRID_KEYS`` to its list of values (``dataset``, ``architecture``,
    ``output`` and ``schedule`` default to their defaults, ``momentum`` and ``weight_decay`` to
    ``[0.0]``, ``augment`` to ``[False]``). ``schedule_options`` (keys of ``SCHEDULE_OPTIONS``)
    and ``augment_ranges`` apply to every setting.
    """
    defaults: dict[str, Sequence[object]] = {
        "dataset": [DEFAULT_DATASET],
        "momentum": [0.0],
        "weight_decay": [0.0],
        "architecture": [DEFAULT_ARCHITECTURE],
        "output": [DEFAULT_OUTPUT],
        "schedule": [DEFAULT_SCHEDULE],
        "augment": [False],
    }
    grid = {**defaults, **grid}
    unknown = sorted(set(schedule_options or {}) - set(SCHEDULE_OPTIONS))
    if unknown:
        raise ValueError(
            f"unknown schedule option(s) {', '.join(unknown)}; expected {SCHEDULE_OPTIONS}"
        )
    fixed = {**(schedule_options or {}), "augment_ranges": augment_ranges, "epochs": epochs}
    settings = {}
    for values in itertools.product(*(grid[key] for key in GRID_KEYS)):
        hp = Hyperparameters.from_mapping({**dict(zip(GRID_KEYS, values, strict=True)), **fixed})
        settings[hp.name] = hp
    return settings


def _subset(split: str, n: int, subset: int | None) -> int:
    """How many samples of a split of ``n`` to use; a subset larger than the split is an error."""
    if subset is None:
        return n
    if subset < 1 or subset > n:
        raise ValueError(
            f"{split}_subset={subset} but the {split} split has {n} samples: "
            f"choose 1..{n}, or null for all of them"
        )
    return subset


@dataclass(frozen=True)
class TrainData:
    """Train and test split, images normalised once (float32 [N,1,28,28]) and shared by all runs."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def from_arrays(
        cls,
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        *,
        train_subset: int | None = None,
        test_subset: int | None = None,
    ) -> TrainData:
        """Normalise uint8 images and keep the first ``*_subset`` samples (None: all).

        A subset larger than its split raises ``ValueError`` (never a silent cap).
        """
        from . import normalize

        (x, y), (xt, yt) = train, test
        n, nt = _subset("train", len(y), train_subset), _subset("test", len(yt), test_subset)
        return cls(normalize(x[:n]), y[:n].long(), normalize(xt[:nt]), yt[:nt].long())

    @classmethod
    def load(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        train_subset: int | None = None,
        test_subset: int | None = None,
    ) -> TrainData:
        """Read the IDX files in ``data_dir`` (see ``lenet_cpp.loading.load_split``)."""
        from .loading import load_split

        data = cls.from_arrays(
            load_split(data_dir, "train"),
            load_split(data_dir, "test"),
            train_subset=train_subset,
            test_subset=test_subset,
        )
        LOG.info("loaded %d train / %d test images from %s", data.n_train, data.n_test, data_dir)
        return data

    @property
    def n_train(self) -> int:
        return int(self.train_labels.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_labels.shape[0])
