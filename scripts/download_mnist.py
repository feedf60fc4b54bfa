"""Snakemake script of rule ``download_mnist``: the four MNIST IDX files, verified.

The rule's declared output is the manifest (the MD5 of each file), not the data files, so
``--forceall`` or a forced rerun re-verifies the files in place instead of deleting them.
"""

from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.integrity import write_manifest
        from lenet_cpp.mnist import ensure_mnist

        data = smk.params.data
        report = ensure_mnist(smk.params.data_dir, data["source"], verify=data["verify"])
        log.info("MNIST from %s (verified: %s)", report.source, report.verified)
        write_manifest(smk.params.data_dir, verified=report.verified)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
