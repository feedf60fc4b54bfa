"""How figures look and how they are saved: one ``FigureStyle``, byte-reproducible files.

The pipeline's working figures use ``DEFAULT_STYLE``; the paper outputs use the style that
``config.yaml``'s ``paper:`` section describes (``FigureStyle.from_config``; the keys are
validated and documented by ``schemas/config.schema.yaml``). Every format is written with
fixed metadata (no software version, no creation date) and fixed hash salts, so the same
figure gives the same bytes on every rerun:

- ``png``: no ``Software`` entry;
- ``pdf``: fixed ``Creator``/``Producer``, no ``CreationDate``;
- ``svg``: fixed ``Creator``, no ``Date``, ``svg.hashsalt`` and ``svg.id`` set;
- ``pgf``: text typeset by the LaTeX document that ``\\input``s it (``pgf.rcfonts`` off, so
  no font paths of this machine), measured with ``pdflatex`` (which must be installed);
  raster parts (image tiles, rasterized scatter points) go to ``<name>-img<N>.png`` beside
  the ``.pgf`` file, as matplotlib's PGF backend writes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import matplotlib as mpl
import matplotlib.style
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from .layout import FIGURE_FORMATS, PAPER_FORMAT_CHOICES, PARTIAL_SUFFIX
from .results import atomic_path

__all__ = [
    "DEFAULT_STYLE",
    "PGF_TEXSYSTEM",
    "WIDTH_PRESETS",
    "FigureStyle",
    "save_figure",
]

#: Column widths of two-column journals (inches): IEEE's 3.5 in column, 7.16 in text width.
WIDTH_PRESETS: Mapping[str, float] = {"single": 3.5, "double": 7.16}
#: The TeX engine that measures text for PGF output (texlive-latex-base has it).
PGF_TEXSYSTEM = "pdflatex"
_CREATOR = "lenet-cpp"
#: Legend font size, as a fraction of the style's font size.
_LEGEND_SIZE = 0.8
_METADATA: Mapping[str, Mapping[str, object] | None] = {
    "png": {"Software": None},
    "pdf": {"Creator": _CREATOR, "Producer": _CREATOR, "CreationDate": None},
    "svg": {"Creator": _CREATOR, "Date": None},
    "pgf": None,  # the PGF backend writes no metadata
}
assert set(_METADATA) == set(PAPER_FORMAT_CHOICES), "fixed metadata for every format"
assert set(FIGURE_FORMATS) <= set(PAPER_FORMAT_CHOICES)


@dataclass(frozen=True)
class FigureStyle:
    """Size, fonts, line widths, PNG resolution and file formats of a figure.

    ``line_width`` is the width of the main curves; thinner strokes (raw per-step losses,
    reference lines) are fixed fractions of it. ``titles`` off drops the figures' titles
    (a paper puts that text in the caption); ``legend_below`` puts the legends of the curve
    figures under the axes instead of over the curves (the paper style does).
    """

    width_in: float = 7.0
    height_in: float = 5.0
    font_family: str = "sans-serif"
    font_size: float = 10.0
    line_width: float = 1.6
    dpi: int = 100
    formats: tuple[str, ...] = FIGURE_FORMATS
    titles: bool = True
    legend_below: bool = False

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in _METADATA]
        if unknown or not self.formats:
            raise ValueError(
                f"formats must be a non-empty list of {', '.join(PAPER_FORMAT_CHOICES)}; "
                f"got {list(self.formats)}"
            )
        for name in ("width_in", "height_in", "font_size", "line_width", "dpi"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, paper: Mapping[str, Any]) -> FigureStyle:
        """The style of config.yaml's ``paper:`` section (schema-validated, defaults filled)."""
        width = paper["width"]
        width_in = WIDTH_PRESETS[width] if isinstance(width, str) else float(width)
        return cls(
            width_in=width_in,
            height_in=width_in * float(paper["aspect"]),
            font_family=str(paper["font_family"]),
            font_size=float(paper["font_size"]),
            line_width=float(paper["line_width"]),
            dpi=int(paper["dpi"]),
            formats=tuple(paper["formats"]),
            titles=bool(paper["titles"]),
            legend_below=True,
        )

    @property
    def pixels(self) -> tuple[int, int]:
        """(width, height) of a PNG of the standard size (Agg truncates to whole pixels)."""
        return int(self.width_in * self.dpi), int(self.height_in * self.dpi)

    def rc_params(self) -> dict[str, object]:
        return {
            "figure.figsize": (self.width_in, self.height_in),
            "figure.dpi": self.dpi,
            "savefig.dpi": self.dpi,
            "svg.hashsalt": _CREATOR,
            "svg.id": _CREATOR,
            "pgf.texsystem": PGF_TEXSYSTEM,
            "pgf.rcfonts": False,
            "font.family": [self.font_family],
            "font.size": self.font_size,
            "lines.linewidth": self.line_width,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """matplotlib's default style plus this one, for building and saving a figure."""
        with matplotlib.style.context("default"), mpl.rc_context(cast(Any, self.rc_params())):
            yield

    def new_figure(self, height_in: float | None = None) -> Figure:
        """An empty figure of this style's size (call inside ``context()``)."""
        size = (self.width_in, self.height_in if height_in is None else height_in)
        return Figure(figsize=size, dpi=self.dpi, layout="constrained")

    def title(self, text: str) -> str:
        """``text``, or nothing when this style drops titles."""
        return text if self.titles else ""

    def legend(
        self,
        ax: Axes,
        *,
        loc: Literal["upper right", "best"],
        handles: Sequence[Artist] | None = None,
    ) -> Legend:
        """The legend of ``ax`` (its labelled artists, or ``handles``): at ``loc`` inside it,
        or with ``legend_below`` centred under it (the constrained layout makes room)."""
        entries = list(handles) if handles is not None else ax.get_legend_handles_labels()[0]
        fontsize = _LEGEND_SIZE * self.font_size
        if not self.legend_below:
            return ax.legend(handles=entries, loc=loc, fontsize=fontsize, framealpha=0.9)
        figure = cast(Figure, ax.figure)
        return figure.legend(
            handles=entries, loc="outside lower center", fontsize=fontsize, frameon=False
        )

    def paths(self, stem: str | os.PathLike[str]) -> list[Path]:
        """``<stem>.<format>`` for each of this style's formats."""
        return [Path(f"{os.fspath(stem)}.{fmt}") for fmt in self.formats]


DEFAULT_STYLE = FigureStyle()


def _format_of(path: str | os.PathLike[str]) -> str:
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in _METADATA:
        formats = " or ".join(f".{f}" for f in PAPER_FORMAT_CHOICES)
        raise ValueError(f"{path}: figures are written as {formats}, got '.{fmt}'")
    return fmt


def _check_texsystem() -> None:
    if shutil.which(PGF_TEXSYSTEM) is None:
        raise RuntimeError(
            f"pgf output needs {PGF_TEXSYSTEM} on PATH to measure text (Debian: apt-get "
            "install texlive-latex-base texlive-latex-recommended); or drop pgf from the "
            "config's paper.formats"
        )


def _save_pgf(fig: Figure, path: Path, dpi: int) -> None:
    """Write ``path`` and its raster images, each renamed into place when complete.

    matplotlib names the images after the file it writes, so it writes under the final name
    in a scratch directory; the images move first, the ``.pgf`` that references them last.
    """
    _check_texsystem()
    scratch = path.with_name(path.name + PARTIAL_SUFFIX)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        fig.savefig(scratch / path.name, format="pgf", dpi=dpi)
        for image in sorted(scratch.glob(f"{path.stem}-img*.png")):
            os.replace(image, path.parent / image.name)
        os.replace(scratch / path.name, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def save_figure(
    fig: Figure, *paths: str | os.PathLike[str], style: FigureStyle = DEFAULT_STYLE
) -> None:
    """Save ``fig`` to each path (format from the suffix: png, pdf, svg or pgf), atomically,
    with fixed metadata (see the module docstring)."""
    formats = [_format_of(path) for path in paths]
    for path, fmt in zip(paths, formats, strict=True):
        with style.context():
            if fmt == "pgf":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                _save_pgf(fig, Path(path), style.dpi)
                continue
            metadata = dict(_METADATA[fmt] or {})
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=style.dpi, metadata=metadata)
