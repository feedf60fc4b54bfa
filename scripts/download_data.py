"""Snakemake script of rule ``download_data``: one dataset's four IDX files, verified.

The rule's declared output is the manifest (the MD5 of each file), not the data files, so
``--forceall`` or a forced rerun re-verifies the files in place instead of deleting them.
"""

from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.acquire import ensure_dataset
        from lenet_cpp.integrity import write_manifest

        dataset, data_dir, verify = smk.wildcards.dataset, smk.params.data_dir, smk.params.verify
        report = ensure_dataset(data_dir, smk.params.source, dataset=dataset, verify=verify)
        log.info("%s from %s (verified: %s)", dataset, report.source, report.verified)
        write_manifest(data_dir, verified=report.verified)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
