# Type stub of the compiled extension lenet_cpp._C (cpp/bindings.cpp), written by hand.
# tests/test_architecture.py checks that it names exactly the module's public names.
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypeAlias, TypedDict

import numpy as np
import torch

MNIST_MEAN: float
MNIST_STD: float
MAX_THREADS: int

#: Images and labels: CPU tensors or NumPy arrays (taken without a copy where possible).
_ArrayLike: TypeAlias = torch.Tensor | np.ndarray
_Kernels: TypeAlias = Literal["fused", "libtorch"]

class TrainingDiverged(FloatingPointError):
    step: int
    epoch: int
    learning_rate: float
    loss: float

class _Evaluation(TypedDict):
    loss: float
    accuracy: float
    confusion: torch.Tensor
    predictions: torch.Tensor

def normalize(images: _ArrayLike) -> torch.Tensor: ...
def distort(
    images: _ArrayLike, *, seed: int = 0, augment: bool | dict[str, float] = True
) -> torch.Tensor: ...
def tune_allocator(mmap_threshold: int = ..., trim_threshold: int = ...) -> bool: ...

class Progress:
    @property
    def step(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def loss(self) -> float: ...

class LeNet5:
    def __init__(
        self,
        activation: str = "relu",
        pooling: str = "max",
        seed: int = 0,
        *,
        architecture: str = "lenet5",
        output: str = "softmax",
    ) -> None: ...
    @property
    def activation(self) -> str: ...
    @property
    def pooling(self) -> str: ...
    @property
    def architecture(self) -> str: ...
    @property
    def output(self) -> str: ...
    @property
    def parameter_counts(self) -> dict[str, int]: ...
    @property
    def rbf_codes(self) -> torch.Tensor | None: ...
    @property
    def device(self) -> str: ...
    def to(self, device: str) -> LeNet5: ...
    def forward(self, images: _ArrayLike, *, kernels: _Kernels | None = None) -> torch.Tensor: ...
    def __call__(self, images: _ArrayLike, *, kernels: _Kernels | None = None) -> torch.Tensor: ...
    def predict(
        self, images: _ArrayLike, batch_size: int = 1000, *, kernels: _Kernels | None = None
    ) -> torch.Tensor: ...
    def evaluate(
        self,
        images: _ArrayLike,
        targets: _ArrayLike,
        batch_size: int = 1000,
        *,
        kernels: _Kernels | None = None,
    ) -> _Evaluation: ...
    def gradients(
        self, images: _ArrayLike, targets: _ArrayLike, *, kernels: _Kernels | None = None
    ) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, torch.Tensor]: ...
    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str) -> LeNet5: ...

class TrainResult:
    @property
    def model(self) -> LeNet5: ...
    @property
    def step_losses(self) -> torch.Tensor: ...
    @property
    def step_learning_rates(self) -> torch.Tensor: ...
    @property
    def train_loss(self) -> list[float]: ...
    @property
    def train_accuracy(self) -> list[float]: ...
    @property
    def test_loss(self) -> list[float]: ...
    @property
    def test_accuracy(self) -> list[float]: ...
    @property
    def test_predictions(self) -> torch.Tensor | None: ...
    @property
    def diverged_at_step(self) -> int: ...
    @property
    def resumed_from_epoch(self) -> int: ...
    @property
    def wall_time_s(self) -> float: ...
    @property
    def train_time_s(self) -> float: ...
    @property
    def images_per_second(self) -> float: ...

def train(
    data: _ArrayLike,
    targets: _ArrayLike,
    epochs: int,
    learning_rate: float,
    *,
    batch_size: int = 64,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    activation: str = "relu",
    pooling: str = "max",
    seed: int = 0,
    threads: int = 0,
    device: str = "cpu",
    kernels: _Kernels | None = None,
    test_data: _ArrayLike | None = None,
    test_targets: _ArrayLike | None = None,
    progress: Callable[[Progress], object] | None = None,
    progress_every: int = 100,
    checkpoint: str | os.PathLike[str] | None = None,
    on_divergence: Literal["raise", "continue"] = "raise",
    architecture: str = "lenet5",
    output: str = "softmax",
    schedule: str = "constant",
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    warmup: float | None = None,
    final_learning_rate: float | None = None,
    augment: bool | dict[str, float] = False,
) -> TrainResult: ...
