"""Snakemake script of rule ``download_mnist``: make the four MNIST IDX files present."""

from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        from lenet_cpp.mnist import ensure_mnist

        report = ensure_mnist(smk.params.data_dir, smk.params.source, verify=smk.params.verify)
        log.info("MNIST from %s (verified: %s)", report.source, report.verified)


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821
