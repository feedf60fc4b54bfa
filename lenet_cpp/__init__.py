"""lenet-cpp: LeNet-5 trained in C++ (libtorch) with the GIL released.

``train`` runs the whole optimisation loop in C++; Python threads keep running meanwhile.
``LeNet5`` is the C++ model (predict, evaluate, state_dict, save/load); ``reference.LeNet5``
is the same network in ``torch.nn`` for checking and for moving weights.
"""

from importlib.metadata import PackageNotFoundError, version

import torch  # noqa: F401  (loads libtorch before the extension)

from lenet_cpp._C import (
    MNIST_MEAN,
    MNIST_STD,
    LeNet5,
    Progress,
    TrainingDiverged,
    TrainResult,
    normalize,
    train,
    tune_allocator,
)

try:
    __version__ = version("lenet-cpp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "LeNet5",
    "Progress",
    "TrainResult",
    "TrainingDiverged",
    "__version__",
    "normalize",
    "train",
    "tune_allocator",
]
