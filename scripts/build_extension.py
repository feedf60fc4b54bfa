"""Snakemake script of rule ``build_extension``: compile cpp/ into lenet_cpp/_C in place."""

import os
import subprocess
import sys
from typing import Any

from _job import job


def main(smk: Any) -> None:
    with job(smk) as log:
        command = [sys.executable, "setup.py", "build_ext", "--inplace"]
        env = {**os.environ, "MAX_JOBS": str(smk.threads)}
        log.info("running %s in %s", " ".join(command), smk.params.source_dir)
        with open(smk.log[0], "a", encoding="utf-8") as out:
            done = subprocess.run(
                command, cwd=smk.params.source_dir, env=env, stdout=out, stderr=out, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"building the extension failed (exit {done.returncode})")
        log.info("built %s", smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # type: ignore[name-defined]  # noqa: F821  (set by Snakemake)
