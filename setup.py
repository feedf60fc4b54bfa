"""Builds the compiled module lenet_cpp._C from cpp/ (metadata lives in pyproject.toml).

The Snakemake workflow (Snakefile, rules, scripts, schema, report captions, default config)
lives at the top of the source tree; the sdist carries it, and building a wheel copies it into
the package as ``lenet_cpp/workflow`` so an installed lenet-cpp runs it (``lenet-cpp
pipeline``). An editable install keeps using the top-level files (``lenet_cpp.pipeline``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from torch.utils.cpp_extension import BuildExtension, CppExtension

SOURCES = sorted(str(path) for path in Path("cpp").glob("*.cpp"))
# What the installed package needs to run the workflow, relative to the source tree
# (MANIFEST.in puts the same files into the sdist; tests/test_packaging.py checks both).
WORKFLOW_PATTERNS = (
    "Snakefile",
    "config.yaml",
    "config/*.yaml",
    "environment.yml",
    "rules/*.smk",
    "scripts/*.py",
    "schemas/*.yaml",
    "report/*.rst",
)
WORKFLOW_PACKAGE_DIR = "lenet_cpp/workflow"


def _matching(patterns: tuple[str, ...]) -> list[str]:
    return sorted(str(path) for pattern in patterns for path in Path(".").glob(pattern))


class BuildPyWithWorkflow(build_py):
    """build_py that also copies the workflow into ``lenet_cpp/workflow`` of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the editable install reads the top-level files in place
            return
        target = Path(self.build_lib, WORKFLOW_PACKAGE_DIR)
        for relative in _matching(WORKFLOW_PATTERNS):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(relative, destination)


setup(
    ext_modules=[
        CppExtension(
            "lenet_cpp._C",
            sources=SOURCES,
            # -fopenmp: at::parallel_for is inline OpenMP code; without it the fused kernels
            # would run on one thread. -fno-trapping-math (as libtorch is built) lets the
            # compiler vectorise the pooling loops' selects; it does not change any result.
            # -g0: no debug info (Python's default -g makes the module ten times larger).
            extra_compile_args=["-O3", "-g0", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"],
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension, "build_py": BuildPyWithWorkflow},
)
