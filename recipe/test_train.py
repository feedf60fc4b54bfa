"""Recipe test: import the installed package and train a few steps on synthetic data.

Run by rattler-build / conda-build in the test environment (and by the smoke build on the
package installed into a fresh prefix). Exits non-zero when anything is off.
"""

from __future__ import annotations

import math

import lenet_cpp
from lenet_cpp.synthetic import make_synthetic_mnist

N_SAMPLES = 256
BATCH_SIZE = 64


def main() -> None:
    images, labels = make_synthetic_mnist(N_SAMPLES, seed=0)
    result = lenet_cpp.train(
        images, labels, epochs=1, learning_rate=0.05, batch_size=BATCH_SIZE, seed=0, threads=1
    )
    losses = result.step_losses.tolist()
    assert len(losses) == N_SAMPLES // BATCH_SIZE, losses
    assert all(math.isfinite(loss) for loss in losses), losses
    predictions = result.model.predict(images[:16])
    assert tuple(predictions.shape) == (16,), predictions.shape
    print(
        f"lenet_cpp {lenet_cpp.__version__} from {lenet_cpp.__file__}, _C from "
        f"{lenet_cpp._C.__file__}: {len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    )


if __name__ == "__main__":
    main()
