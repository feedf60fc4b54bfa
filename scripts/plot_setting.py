"""Snakemake script of rule ``plot_setting``: the two figures of one grid point."""

from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk):
        from lenet_cpp.plotting import plot_setting

        out = smk.output
        plot_setting(smk.params.run_dir, predictions_paths=out.predictions, loss_paths=out.loss)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
