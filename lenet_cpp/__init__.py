"""lenet-cpp: LeNet-5 trained in C++ (libtorch) with the GIL released.

``train`` runs the whole optimisation loop in C++; Python threads keep running meanwhile.
``LeNet5`` is the C++ model (predict, evaluate, state_dict, save/load); ``reference.LeNet5``
is the same network in ``torch.nn`` for checking and for moving weights.

The compiled extension (``lenet_cpp._C``) is imported on first use of one of its names, so
the pure-Python modules (``layout``, ``setting``, ``datasets``, ``idx``, ``loading``,
``plotting``, ...)
work without it, e.g. while Snakemake builds its DAG or before the extension is compiled.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._C import (
        MNIST_MEAN,
        MNIST_STD,
        LeNet5,
        Progress,
        TrainingDiverged,
        TrainResult,
        distort,
        normalize,
        train,
        tune_allocator,
    )

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "LeNet5",
    "Progress",
    "TrainResult",
    "TrainingDiverged",
    "__version__",
    "distort",
    "normalize",
    "train",
    "tune_allocator",
]
#: The public names the extension provides (everything but the version).
_EXTENSION_NAMES = frozenset(__all__) - {"__version__"}


class _TorchBeforeExtension(importlib.abc.MetaPathFinder):
    """Imports torch before the extension, however it is imported (``import lenet_cpp._C``
    too): the extension links against libtorch, which importing torch loads. Finds nothing
    itself; the usual finders then load the extension."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == _EXTENSION:
            import torch  # noqa: F401
        return None


_EXTENSION = f"{__name__}._C"
if not any(isinstance(finder, _TorchBeforeExtension) for finder in sys.meta_path):
    sys.meta_path.insert(0, _TorchBeforeExtension())


def __getattr__(name: str) -> Any:
    """Load the extension when one of its names is first used (PEP 562)."""
    if name not in _EXTENSION_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _C

    for public in _EXTENSION_NAMES:  # later lookups find the names directly
        globals()[public] = getattr(_C, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXTENSION_NAMES})
