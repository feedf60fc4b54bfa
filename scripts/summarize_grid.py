"""Snakemake script of rule ``summarize_grid``: summary.csv, loss overlay, best confusion."""

import os
from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.plotting import plot_grid
        from lenet_cpp.results import best_row, load_metrics, summarize, write_summary

        rows = summarize([load_metrics(path) for path in smk.input.metrics])
        write_summary(smk.output.summary, rows)
        best = str(best_row(rows)["setting"])
        log.info("best setting: %s", best)
        run_dirs = {
            name: os.path.dirname(path)
            for name, path in zip(smk.params.settings, smk.input.metrics, strict=True)
        }
        plot_grid(run_dirs, best, loss_paths=smk.output.loss, confusion_paths=smk.output.confusion)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
