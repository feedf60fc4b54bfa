"""Builds the compiled module lenet_cpp._C from cpp/ (metadata lives in pyproject.toml).

The Snakemake workflow (Snakefile, rules, scripts, schema, report captions, default config)
lives at the top of the source tree; the sdist carries it, and building a wheel copies it into
the package as ``lenet_cpp/workflow`` so an installed lenet-cpp runs it (``lenet-cpp
pipeline``). An editable install keeps using the top-level files (``lenet_cpp.pipeline``).

Build switches (environment variables):
- LENET_CPP_ISA: which instruction sets the fused kernels are compiled for.
    "dispatch" (default): with GCC on x86-64 glibc, the hot loops are compiled for x86-64,
        AVX2 (with FMA) and AVX-512 and one is picked at load time; elsewhere as "baseline".
    "baseline": only the compiler's default target (x86-64: SSE2, no FMA instruction).
    "avx2": AVX2 and FMA (x86-64 CPUs since 2013).
    "native": only this machine's instruction set (-march=native; not portable).
  The choice changes speed, never results: the kernels fix every sum's order, write each
  product-sum as an explicit fused multiply-add (one rounding: the same on every CPU; without
  an FMA instruction libm's fmaf computes it, slowly), and the build forbids the compiler to
  contract other a*b+c into FMAs (-ffp-contract=off), so all variants give the same bits.
"""

import os
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from torch.utils.cpp_extension import BuildExtension, CppExtension

SOURCES = sorted(str(path) for path in Path("cpp").glob("*.cpp"))
VERSION = re.search(r'^version = "([^"]+)"', Path("pyproject.toml").read_text(), re.M)[1]
ISA_FLAGS = {
    "dispatch": ["-DLENET_CPP_DISPATCH"],
    "baseline": [],
    "avx2": ["-mavx2", "-mfma"],
    "native": ["-march=native"],
}
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


def isa_flags() -> list[str]:
    isa = os.environ.get("LENET_CPP_ISA", "dispatch")
    if isa not in ISA_FLAGS:
        raise SystemExit(f"LENET_CPP_ISA must be one of {sorted(ISA_FLAGS)}, got {isa!r}")
    compiler = os.environ.get("CXX", "c++")
    dispatch_possible = "clang" not in compiler and os.uname().machine == "x86_64"
    return ISA_FLAGS[isa] if isa != "dispatch" or dispatch_possible else []


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
            # -std=c++20: the standard pinned (libtorch 2.14 requires C++20).
            # -ffp-contract=off: no FMA but those the code writes, so results do not depend on the
            # instruction set.
            # -fno-trapping-math lets the compiler vectorise the pooling loops' selects; it does
            # not change any result. -fno-math-errno: no errno side effects in the kernels.
            # -g0: no debug info (Python's default -g makes the module ten times larger).
            extra_compile_args=[
                "-std=c++20",
                "-O3",
                "-g0",
                "-ffp-contract=off",
                "-fno-trapping-math",
                "-fno-math-errno",
                f'-DLENET_CPP_VERSION="{VERSION}"',
                *isa_flags(),
            ],
        )
    ],
    cmdclass={"build_ext": BuildExtension, "build_py": BuildPyWithWorkflow},
)
