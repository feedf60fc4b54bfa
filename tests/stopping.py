"""Stopping a training run at a chosen step from its progress callback (resume tests)."""

from __future__ import annotations

from collections.abc import Callable

import lenet_cpp


class Stop(Exception):
    """Raised by ``stop_at``'s callback; ``train`` passes it on to its caller."""


def stop_at(step: int) -> Callable[[lenet_cpp.Progress], None]:
    """A progress callback that raises ``Stop`` when the run reports ``step``."""

    def progress(p: lenet_cpp.Progress) -> None:
        if p.step == step:
            raise Stop

    return progress
