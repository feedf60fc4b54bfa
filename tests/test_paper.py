"""Paper outputs: the grid table (LaTeX, Markdown, HTML), the paper figures, the figure style
from the config, and byte-identical files in every format (lenet_cpp.paper, tables, style)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
import yaml

from lenet_cpp.layout import (
    DEFAULT_DATASET,
    LOSSES_FILE,
    PAPER_FIGURES,
    PAPER_FORMAT_CHOICES,
    PREDICTIONS_FILE,
    ResultsLayout,
    seed_dir,
)
from lenet_cpp.paper import (
    PaperOutputs,
    error_curves,
    error_vs_epoch_figure,
    misclassified_figure,
    write_paper,
)
from lenet_cpp.plotting import loss_figure, predictions_figure
from lenet_cpp.results import dataset_of, summarize, write_json
from lenet_cpp.style import DEFAULT_STYLE, PGF_TEXSYSTEM, WIDTH_PRESETS, FigureStyle, save_figure
from lenet_cpp.synthetic import write_synthetic_mnist
from lenet_cpp.tables import (
    LATEX_LABEL,
    grid_table,
    setting_labels,
    to_html,
    to_latex,
    to_markdown,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
PAPER_CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())["paper"]
PAPER_STYLE = FigureStyle.from_config(PAPER_CONFIG)
TEX_REQUIRED = os.environ.get("LENET_REQUIRE_TEX") == "1"


def _need_tex(engine: str) -> str:
    """The engine's path; skip (visibly) when it is missing, fail under LENET_REQUIRE_TEX=1."""
    path = shutil.which(engine)
    if path is None:
        if TEX_REQUIRED:
            pytest.fail(f"{engine} is required here (LENET_REQUIRE_TEX=1) but not installed")
        pytest.skip(f"{engine} not installed (apt-get install texlive-latex-recommended)")
    return path


# ---------------------------------------------------------------- synthetic results


def _record(
    name: str,
    accuracies: list[list[float]],
    *,
    status: str = "ok",
    dataset: str | None = None,
    data_dir: str = "data",
) -> dict[str, Any]:
    """A metrics.json record: ``accuracies[seed]`` are the per-epoch test accuracies."""
    activation, pooling = name.split("_")[:2]
    seeds = list(range(len(accuracies)))
    per_seed = {
        str(s): {
            "test_accuracy": acc,
            "train_accuracy": [a - 0.01 for a in acc],
            "test_loss": [1.0 - a for a in acc],
            "train_loss": [1.1 - a for a in acc],
        }
        for s, acc in zip(seeds, accuracies, strict=True)
    }
    final = [acc[-1] for acc in accuracies]
    stats = {
        "mean": float(np.mean(final)),
        "std": float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
    }
    setting: dict[str, Any] = {
        "name": name,
        "activation": activation,
        "pooling": pooling,
        "learning_rate": 0.01,
        "batch_size": 64,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "epochs": len(accuracies[0]),
    }
    if dataset is not None:
        setting["dataset"] = dataset
    return {
        "format": "lenet_cpp.metrics",
        "version": 1,
        "setting": setting,
        "seeds": seeds,
        "data": {"dir": data_dir},
        "results": {
            "status": status,
            "test_accuracy": stats,
            "final_train_loss": {"mean": 0.1, "std": 0.0},
            "final_test_loss": {"mean": 1.0 - stats["mean"], "std": 0.0},
            "per_seed": per_seed,
        },
        "timing": {
            "job_wall_time_s": 3.0,
            "images_per_second": 100.0,
            "per_seed": {str(s): {"train_time_s": 2.0 + s} for s in seeds},
        },
    }


def _rows(*records: dict[str, Any]) -> list[Any]:
    rows = summarize(records)  # type: ignore[arg-type]
    for row, record in zip(rows, records, strict=True):
        if "dataset" in record["setting"]:  # as the dataset axis will add it
            row["dataset"] = record["setting"]["dataset"]  # type: ignore[typeddict-unknown-key]
    return rows


GRID = (
    _record("relu_max", [[0.90, 0.95, 0.97], [0.91, 0.96, 0.975]]),
    _record("tanh_max", [[0.80, 0.90, 0.93], [0.82, 0.91, 0.94]]),
    _record("tanh_avg", [[0.5, 0.6, 0.99], [0.5, 0.6, 0.99]], status="diverged"),
)


def _run_dirs(tmp_path: Path, n_test: int = 64) -> dict[str, Path]:
    """Run directories of GRID with losses and predictions, plus synthetic test images."""
    write_synthetic_mnist(tmp_path / "data", 64, n_test, seed=0)
    rng = np.random.default_rng(0)
    dirs = {}
    for record in GRID:
        name = record["setting"]["name"]
        run_dir = tmp_path / "runs" / name
        write_json(run_dir / "metrics.json", {**record, "data": {"dir": str(tmp_path / "data")}})
        for seed in record["seeds"]:
            directory = seed_dir(run_dir, seed)
            directory.mkdir(parents=True)
            steps = "\n".join(f"{i + 1},{i // 10 + 1},{2.0 / (i + 1)}" for i in range(30))
            (directory / LOSSES_FILE).write_text(f"step,epoch,loss\n{steps}\n")
            labels = rng.integers(0, 10, n_test)
            predicted = np.where(rng.random(n_test) < 0.8, labels, (labels + 3) % 10)
            lines = "\n".join(
                f"{i},{t},{p}" for i, (t, p) in enumerate(zip(labels, predicted, strict=True))
            )
            (directory / PREDICTIONS_FILE).write_text(f"index,label,prediction\n{lines}\n")
        dirs[name] = run_dir
    return dirs


def _outputs(root: Path, formats: tuple[str, ...] = ("pdf", "png")) -> PaperOutputs:
    layout = ResultsLayout(str(root), paper_formats=formats)

    def figure(name: str) -> list[str]:
        return [layout.paper_figure(name, fmt) for fmt in formats]

    return PaperOutputs(
        table_tex=layout.paper_file("table.tex"),
        table_md=layout.paper_file("table.md"),
        table_html=layout.paper_file("table.html"),
        error_vs_epoch=figure("error_vs_epoch"),
        misclassified=figure("misclassified"),
        predictions=figure("predictions"),
        loss_curves=figure("loss_curves"),
    )


# ---------------------------------------------------------------- tables


def test_table_has_a_row_per_setting_mean_std_error_and_the_best_in_bold() -> None:
    latex = to_latex(grid_table(_rows(*GRID)))
    assert latex.count("\\toprule") == latex.count("\\midrule") == latex.count("\\bottomrule") == 1
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == len(GRID)
    assert all(line.rstrip().endswith("\\\\") for line in body)
    # relu_max: 97.25 +- 0.35, the best (bold); tanh_avg diverged: higher accuracy, not bold
    relu = next(line for line in body if line.strip().startswith("relu"))
    assert "$\\mathbf{97.25} \\pm \\mathbf{0.35}$" in relu and "\\textbf{2.75}" in relu
    assert " & 3 & 2.5 \\\\" in relu  # epochs, mean training time
    diverged = next(line for line in body if "avg" in line)
    assert "mathbf" not in diverged and "\\dag" in diverged
    assert latex.count("mathbf") == 2
    header = latex.split("\\toprule")[1].split("\\midrule")[0]
    assert "Activation & Pooling & Test accuracy (\\%) & Error (\\%) & Epochs & Time (s)" in header
    # the hyperparameters every setting shares are in the caption, not columns
    caption = re.search(r"\\caption\{(.*)\}\n", latex)
    assert caption and "learning rate 0.01; batch size 64" in caption[1] and "2 seeds" in caption[1]
    assert f"\\label{{{LATEX_LABEL}}}" in latex
    assert "\\begin{tabular}{llrrrr}" in latex


def test_best_is_marked_per_dataset_and_rows_without_one_are_mnist() -> None:
    fashion = _record("relu_max", [[0.85, 0.88, 0.89]], dataset="fashion-mnist")
    mnist = _record("relu_max", [[0.95, 0.98, 0.99]], dataset="mnist")
    worse = _record("tanh_max", [[0.80, 0.84, 0.86]], dataset="fashion-mnist")
    table = grid_table(_rows(mnist, fashion, worse))
    assert table.key_headings == ("Dataset", "Activation")
    assert [(r.keys, r.best) for r in table.rows] == [
        (("mnist", "relu"), True),
        (("fashion-mnist", "relu"), True),
        (("fashion-mnist", "tanh"), False),
    ]
    assert dataset_of({"setting": "x"}) == DEFAULT_DATASET == "mnist"
    assert dataset_of({"dataset": "fashion-mnist"}) == "fashion-mnist"


def test_legend_labels_name_what_varies() -> None:
    assert setting_labels(_rows(*GRID)) == {
        "relu_max": "relu, max",
        "tanh_max": "tanh, max",
        "tanh_avg": "tanh, avg (diverged)",
    }


def test_a_lone_1998_setting_is_labelled_by_its_network_not_its_unused_activation() -> None:
    record = _record("tanh_avg", [[0.98, 0.99]])
    record["setting"] |= {"architecture": "lenet5-1998", "output": "rbf"}
    assert setting_labels(_rows(record)) == {"tanh_avg": "lenet5-1998, rbf"}
    assert grid_table(_rows(record)).key_headings == ("Network", "Output")
    assert setting_labels(_rows(GRID[0])) == {"relu_max": "relu, max"}


def test_markdown_and_html_tables_hold_the_same_rows() -> None:
    table = grid_table(_rows(*GRID))
    markdown = to_markdown(table).splitlines()
    assert markdown[0].startswith("| Activation | Pooling | Test accuracy (%) | Error (%) |")
    assert markdown[1] == "|---|---|--:|--:|--:|--:|"
    assert "| relu | max | **97.25 ± 0.35** | **2.75** | 3 | 2.5 |" in markdown
    assert sum(line.startswith("| ") for line in markdown) == 1 + len(GRID)
    page = to_html(table)
    assert page.count("<tr>") == 1 + len(GRID) and "<b>97.25 ± 0.35</b>" in page
    assert "<caption>" in page and page.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("engine", ["pdflatex", "lualatex"])
def test_latex_table_compiles_in_a_plain_document(tmp_path: Path, engine: str) -> None:
    exe = _need_tex(engine)
    (tmp_path / "table.tex").write_text(to_latex(grid_table(_rows(*GRID))), encoding="utf-8")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        "Table~\\ref{" + LATEX_LABEL + "}.\n\\input{table.tex}\n\\end{document}\n"
    )
    command = [exe, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"]
    for _ in range(2):  # the second pass resolves \ref
        done = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert (tmp_path / "doc.pdf").is_file()
    assert "Overfull \\hbox" not in log  # fits the text width
    assert "undefined references" not in log and "Undefined control sequence" not in log


# ---------------------------------------------------------------- figures


def test_error_curves_are_percent_errors_per_seed_and_epoch() -> None:
    curves = error_curves(GRID[0])  # type: ignore[arg-type]
    assert curves.epochs == 3 and curves.test.shape == (2, 3)
    assert np.allclose(curves.test[0], [10.0, 5.0, 3.0])
    assert np.allclose(curves.train[1], [10.0, 5.0, 3.5])
    assert error_curves(GRID[2]).label == "tanh_avg (diverged)"  # type: ignore[arg-type]


def test_error_figure_is_log_scale_with_test_and_training_lines() -> None:
    curves = [error_curves(r) for r in GRID]  # type: ignore[arg-type]
    fig = error_vs_epoch_figure(curves, style=PAPER_STYLE)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_title() == ""  # titles off in the paper style
    styles = [(line.get_linestyle(), line.get_marker()) for line in ax.get_lines()]
    assert styles.count(("-", "o")) == styles.count(("--", "s")) == len(GRID)
    assert ax.get_xlim() == (0.8, 3.2)
    single = error_curves(_record("a_b", [[0.5]]))  # type: ignore[arg-type]
    assert error_vs_epoch_figure([single], style=PAPER_STYLE).axes[0].get_xlim() == (0.5, 1.5)
    assert len(ax.collections) == 2 * len(GRID)  # a seed band per line (2 seeds each)
    assert ax.get_legend() is None  # the paper style puts it under the axes
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["relu_max", "tanh_max", "tanh_avg (diverged)"]
    assert "test error" in labels and any(t.startswith("training error") for t in labels)
    assert tuple(fig.get_size_inches()) == (WIDTH_PRESETS["single"], 0.75 * 3.5)


def test_misclassified_figure_tiles_every_error_with_its_labels() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 10
    predictions = labels.copy()
    predictions[[3, 17, 25]] = [5, 0, 9]
    fig = misclassified_figure(images, labels, predictions, style=PAPER_STYLE)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["3$\\rightarrow$5", "7$\\rightarrow$0", "5$\\rightarrow$9"]
    page = ax.get_images()[0].get_array()
    assert page.shape[1] == 10 * 31  # 3.5 in / 0.35 in = 10 tiles of 28 + 3 pixels per row
    assert np.array_equal(page[1:29, 1:29], images[3])  # the first error, at the top left
    assert fig.get_size_inches()[0] == 3.5
    empty = misclassified_figure(images, labels, labels, style=PAPER_STYLE)
    assert [t.get_text() for t in empty.axes[0].texts] == ["no misclassified test images"]


def test_style_comes_from_the_config_and_presets() -> None:
    style = FigureStyle.from_config({**PAPER_CONFIG, "width": "double", "dpi": 200})
    assert (style.width_in, style.dpi) == (7.16, 200)
    assert FigureStyle.from_config({**PAPER_CONFIG, "width": 5}).width_in == 5.0
    fig = loss_figure(_loss_curves(), title="t", style=style)
    assert fig.get_size_inches()[0] == 7.16
    assert fig.axes[0].get_lines()[1].get_linewidth() == PAPER_CONFIG["line_width"]
    assert fig.axes[0].xaxis.label.get_fontsize() == PAPER_CONFIG["font_size"]
    width = SCHEMA["properties"]["paper"]["properties"]["width"]["oneOf"][0]["enum"]
    assert width == list(WIDTH_PRESETS)
    formats = SCHEMA["properties"]["paper"]["properties"]["formats"]["items"]["enum"]
    assert formats == list(PAPER_FORMAT_CHOICES)
    assert set(PAPER_CONFIG) == set(SCHEMA["properties"]["paper"]["properties"])
    with pytest.raises(ValueError, match="formats must be"):
        FigureStyle(formats=("jpg",))


def _loss_curves() -> Any:
    from lenet_cpp.plotting import LossCurves

    return LossCurves("s", {0: np.linspace(2, 0.1, 30)}, {0: [0.5, 0.2]}, epochs=2)


def _save_twice(tmp_path: Path, fmt: str, style: FigureStyle) -> tuple[bytes, bytes]:
    """The same figure saved as ``a/fig.<fmt>`` and ``b/fig.<fmt>``; their bytes."""
    for run in ("a", "b"):
        labels = np.arange(200) % 10
        fig = predictions_figure(labels, (labels * 7) % 10, title="t_1", style=style)
        save_figure(fig, tmp_path / run / f"fig.{fmt}", style=style)
    return (tmp_path / "a" / f"fig.{fmt}").read_bytes(), (
        tmp_path / "b" / f"fig.{fmt}"
    ).read_bytes()


@pytest.mark.parametrize("fmt", ["pdf", "png", "svg", "pgf"])
def test_every_format_is_byte_identical_on_rerun(tmp_path: Path, fmt: str) -> None:
    if fmt == "pgf":
        _need_tex(PGF_TEXSYSTEM)
    a, b = _save_twice(tmp_path, fmt, PAPER_STYLE)
    assert a == b
    if fmt == "pdf":
        assert a.startswith(b"%PDF") and b"CreationDate" not in a and b"Matplotlib" not in a
    if fmt == "png":
        image = matplotlib.image.imread(tmp_path / "a" / "fig.png")
        assert image.shape[:2] == (PAPER_STYLE.pixels[1], PAPER_STYLE.pixels[0])
        assert b"Software" not in a
    if fmt == "svg":
        assert a.lstrip().startswith(b"<?xml") and b"<dc:date>" not in a
        assert b"Matplotlib v" not in a
    if fmt == "pgf":
        text = a.decode()
        assert "\\begin{pgfpicture}" in text
        # the scatter is rasterized: its image sits beside the file, named after it, and
        # the file refers to it by that name; no partial files are left
        assert "fig-img0.png" in text
        for run in ("a", "b"):
            assert sorted(p.name for p in (tmp_path / run).iterdir()) == ["fig-img0.png", "fig.pgf"]
        image_a, image_b = (tmp_path / run / "fig-img0.png" for run in ("a", "b"))
        assert image_a.read_bytes() == image_b.read_bytes()


def test_default_style_is_the_working_figures_size() -> None:
    assert DEFAULT_STYLE.pixels == (700, 500)
    assert DEFAULT_STYLE.titles and PAPER_STYLE.titles is False


# ---------------------------------------------------------------- all outputs


def test_write_paper_writes_every_output_byte_identically(tmp_path: Path) -> None:
    run_dirs = _run_dirs(tmp_path)
    paths = []
    for copy in ("first", "second"):
        outputs = _outputs(tmp_path / copy)
        best = write_paper(run_dirs, outputs, style=PAPER_STYLE)
        assert best == "relu_max"
        paths.append(sorted((tmp_path / copy / "paper").iterdir()))
    expected = {f"{f}.{fmt}" for f in PAPER_FIGURES for fmt in ("pdf", "png")}
    assert {p.name for p in paths[0]} == expected | {"table.tex", "table.md", "table.html"}
    for a, b in zip(*paths, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    # the misclassified figure shows the errors of relu_max's first seed, labelled
    predictions = (run_dirs["relu_max"] / "seed0" / PREDICTIONS_FILE).read_text().splitlines()
    errors = sum(line.split(",")[1] != line.split(",")[2] for line in predictions[1:])
    assert errors > 0
    image = matplotlib.image.imread(tmp_path / "first" / "paper" / "misclassified.png")
    assert image.shape[1] == round(3.5 * PAPER_STYLE.dpi)
