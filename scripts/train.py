"""Snakemake script of rule ``train``: every seed of one grid point (``lenet_cpp.job``)."""

from pathlib import Path
from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.datasets import dataset_info
        from lenet_cpp.integrity import OFFICIAL_MD5, read_manifest
        from lenet_cpp.job import JobSpec, run_job
        from lenet_cpp.setting import Hyperparameters

        hp = Hyperparameters.from_mapping(smk.params.hyperparameters)
        # The official sums when data.verify is on, else those the data rule recorded.
        if smk.params.verify:
            expected, source = dataset_info(hp.dataset).md5, OFFICIAL_MD5
        else:
            expected, source = read_manifest(smk.input.manifest), f"in {smk.input.manifest}"
        spec = JobSpec(
            hyperparameters=hp,
            seeds=smk.params.seeds,
            data_dir=Path(smk.params.data_dir),
            out_dir=Path(smk.params.out_dir),
            threads=smk.threads,
            expected_md5=expected,
            md5_source=source,
            device=smk.params.device,
            train_subset=smk.params.train_subset,
            test_subset=smk.params.test_subset,
            progress_every=smk.params.progress_every,
            # "": the workflow installed with the package (no checkout to record)
            source_dir=Path(smk.params.source_dir) if smk.params.source_dir else None,
            kernels=smk.params.kernels,
            checkpoint_dir=Path(smk.params.checkpoint_dir),
        )
        run_job(spec, progress=lambda seed, p: log.info("seed %d: %r", seed, p))


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
