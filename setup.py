"""Builds the compiled module lenet_cpp._C from cpp/ (metadata lives in pyproject.toml)."""

from pathlib import Path

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

SOURCES = sorted(str(path) for path in Path("cpp").glob("*.cpp"))

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
    cmdclass={"build_ext": BuildExtension},
)
