"""Snakemake script of rule ``paper_outputs``: results/paper/ (``lenet_cpp.paper``)."""

import os
from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.paper import PaperOutputs, write_paper
        from lenet_cpp.style import FigureStyle

        run_dirs = {
            name: os.path.dirname(path)
            for name, path in zip(smk.params.settings, smk.input.metrics, strict=True)
        }
        out = smk.output
        outputs = PaperOutputs(
            table_tex=out.table_tex,
            table_md=out.table_md,
            table_html=out.table_html,
            error_vs_epoch=out.error_vs_epoch,
            misclassified=out.misclassified,
            predictions=out.predictions,
            loss_curves=out.loss_curves,
        )
        best = write_paper(run_dirs, outputs, style=FigureStyle.from_config(smk.params.style))
        log.info("paper outputs written; best setting: %s", best)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
