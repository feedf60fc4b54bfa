"""Builds the compiled module lenet_cpp._C from cpp/ (metadata lives in pyproject.toml).

Build switches (environment variables):
- LENET_CPP_ISA: which instruction sets the fused kernels are compiled for.
    "dispatch" (default): with GCC on x86-64 glibc, the hot loops are compiled for x86-64,
        AVX2 and AVX-512 and one is picked at load time (target_clones); elsewhere as "baseline".
    "baseline": only the compiler's default target (x86-64: SSE2).
    "native": only this machine's instruction set (-march=native; not portable).
  The choice changes speed, never results: the kernels fix every sum's order and the build
  forbids contracting a*b+c into FMAs (-ffp-contract=off), so all variants give the same bits.
"""

import os
import re
from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

SOURCES = sorted(str(path) for path in Path("cpp").glob("*.cpp"))
VERSION = re.search(r'^version = "([^"]+)"', Path("pyproject.toml").read_text(), re.M)[1]
ISA_FLAGS = {"dispatch": ["-DLENET_CPP_DISPATCH"], "baseline": [], "native": ["-march=native"]}


def isa_flags() -> list[str]:
    isa = os.environ.get("LENET_CPP_ISA", "dispatch")
    if isa not in ISA_FLAGS:
        raise SystemExit(f"LENET_CPP_ISA must be one of {sorted(ISA_FLAGS)}, got {isa!r}")
    compiler = os.environ.get("CXX", "c++")
    dispatch_possible = "clang" not in compiler and os.uname().machine == "x86_64"
    return ISA_FLAGS[isa] if isa != "dispatch" or dispatch_possible else []


setup(
    ext_modules=[
        CppExtension(
            "lenet_cpp._C",
            sources=SOURCES,
            # -std=c++20: the standard pinned (libtorch 2.14 requires C++20).
            # -ffp-contract=off: no FMA contraction anywhere, so results do not depend on the ISA.
            # -fopenmp: at::parallel_for (inference over shards) is inline OpenMP code.
            # -fno-trapping-math lets the compiler vectorise the pooling loops' selects; it does
            # not change any result. -fno-math-errno: no errno side effects in the kernels.
            # -g0: no debug info (Python's default -g makes the module ten times larger).
            extra_compile_args=[
                "-std=c++20",
                "-O3",
                "-g0",
                "-ffp-contract=off",
                "-fopenmp",
                "-fno-trapping-math",
                "-fno-math-errno",
                f'-DLENET_CPP_VERSION="{VERSION}"',
                *isa_flags(),
            ],
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
