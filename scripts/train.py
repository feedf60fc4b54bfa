"""Snakemake script of rule ``train``: every seed of one grid point, concurrently."""

from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        import lenet_cpp
        from lenet_cpp.provenance import file_md5s
        from lenet_cpp.runner import Hyperparameters, TrainData, run_setting

        lenet_cpp.tune_allocator()  # keep freed buffers in the process (see README, Performance)
        hp = Hyperparameters.from_mapping(smk.params.hyperparameters)
        if hp.name != smk.wildcards.setting:
            raise ValueError(f"setting {smk.wildcards.setting!r} has the name {hp.name!r}")
        data = TrainData.load(
            smk.params.data_dir,
            train_subset=smk.params.train_subset,
            test_subset=smk.params.test_subset,
        )
        run_setting(
            hp,
            smk.params.seeds,
            data,
            smk.params.out_dir,
            job_threads=smk.threads,
            device=smk.params.device,
            progress=lambda seed, p: log.info("seed %d: %r", seed, p),
            progress_every=smk.params.progress_every,
            data_info={"dir": smk.params.data_dir, "md5": file_md5s(smk.input.data)},
            source_dir=smk.params.source_dir or None,  # "": the installed package
        )


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821
