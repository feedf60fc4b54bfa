"""The installed distribution's version (``0+unknown`` in a source tree never installed)."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("lenet-cpp")
except PackageNotFoundError:
    __version__ = "0+unknown"
