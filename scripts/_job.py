"""Shared start of every Snakemake script: log to the rule's log file, pick the lenet_cpp.

Snakemake puts this directory on ``sys.path`` when it runs a script.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job(smk: Any) -> Iterator[logging.Logger]:
    """Log to ``smk.log[0]``, import lenet_cpp from ``params.source_dir``; log any failure."""
    logging.basicConfig(
        filename=smk.log[0], filemode="w", level=logging.INFO, format=LOG_FORMAT, force=True
    )
    logging.captureWarnings(True)
    log = logging.getLogger(f"snakemake.{smk.rule}")
    source_dir = getattr(smk.params, "source_dir", None)
    if source_dir:
        # The module built by build_extension, not whatever else is installed. The rules
        # pass the checkout relative to the working directory (moving a copy reruns nothing).
        sys.path.insert(0, os.path.abspath(source_dir))
    try:
        yield log
    except BaseException:
        log.exception("job failed")
        raise
