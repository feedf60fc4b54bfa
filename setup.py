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
            extra_compile_args=["-O3"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
