"""The grid's results as a table for a paper: LaTeX (booktabs), Markdown and HTML.

One row per setting, grouped by dataset: the hyperparameters that vary across the grid (the
others go into the caption), test accuracy after the last epoch (mean ± standard deviation
over seeds, in %), test error (100 % minus the mean accuracy), epochs and training time per run.
The best setting of each dataset (``lenet_cpp.results.dataset_of``; rank order of
``lenet_cpp.results.summarize``, diverged settings never) is set in bold. The LaTeX table
needs only ``\\usepackage{booktabs}`` and compiles in a plain ``article``.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .layout import DEFAULT_ARCHITECTURE, GRID_KEYS
from .results import SummaryRow, dataset_of

__all__ = [
    "LATEX_LABEL",
    "GridTable",
    "TableRow",
    "grid_table",
    "latex_escape",
    "setting_labels",
    "to_html",
    "to_latex",
    "to_markdown",
]

#: The ``\\label`` of the LaTeX table (``\\ref{tab:lenet-cpp-grid}``).
LATEX_LABEL = "tab:lenet-cpp-grid"
#: Column headings of the hyperparameters (the dataset first).
_KEY_HEADINGS = {
    "dataset": "Dataset",
    "activation": "Activation",
    "pooling": "Pooling",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "momentum": "Momentum",
    "weight_decay": "Weight decay",
    "architecture": "Network",
    "output": "Output",
    "schedule": "Schedule",
    "augment": "Distortions",
}
#: The hyperparameters a row can show, in column order (the dataset first, once, whether or
#: not the grid's keys name it).
_KEYS: tuple[str, ...] = tuple(dict.fromkeys(("dataset", *GRID_KEYS)))
assert set(_KEY_HEADINGS) == set(_KEYS), "a heading for every grid key"
_NUMBER_HEADINGS = ("Test accuracy (%)", "Error (%)", "Epochs", "Time (s)")
_DIVERGED = "†"
_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "±": r"$\pm$",
    _DIVERGED: r"\textsuperscript{\dag}",
}


@dataclass(frozen=True)
class TableRow:
    keys: tuple[str, ...]  # the varying hyperparameters, as text
    accuracy_mean: float  # %
    accuracy_std: float  # %
    epochs: int
    time_s: float
    best: bool
    diverged: bool

    @property
    def error(self) -> float:
        return 100.0 - self.accuracy_mean


@dataclass(frozen=True)
class GridTable:
    key_headings: tuple[str, ...]
    rows: tuple[TableRow, ...]
    caption: str  # plain text (``±``, ``%``, ``†`` as such)

    @property
    def headings(self) -> tuple[str, ...]:
        return (*self.key_headings, *_NUMBER_HEADINGS)


def _value(row: SummaryRow, key: str) -> str:
    value = dataset_of(row) if key == "dataset" else row[key]  # type: ignore[literal-required]
    if isinstance(value, bool):  # distortions
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _best_ranks(rows: Sequence[SummaryRow]) -> set[int]:
    """The rank of the best non-diverged row of each dataset."""
    best: dict[str, int] = {}
    for row in rows:
        if row["status"] == "ok":
            dataset = dataset_of(row)
            best[dataset] = min(best.get(dataset, row["rank"]), row["rank"])
    return set(best.values())


def _seeds_text(rows: Sequence[SummaryRow]) -> str:
    counts = sorted({row["n_seeds"] for row in rows})
    if len(counts) == 1:
        return f"{counts[0]} seed{'s' if counts[0] != 1 else ''}"
    return f"{counts[0]} to {counts[-1]} seeds"


def _caption(rows: Sequence[SummaryRow], constant: Sequence[str]) -> str:
    shared = "; ".join(f"{_KEY_HEADINGS[k].lower()} {_value(rows[0], k)}" for k in constant)
    text = (
        "LeNet-5 test accuracy after the last epoch (mean ± standard deviation over "
        f"{_seeds_text(rows)}, in %), test error (100 % minus the mean accuracy), epochs and "
        "training time per run (mean over seeds, in seconds). Best setting of each dataset "
        "in bold."
    )
    if shared:
        text += f" All settings: {shared}."
    if any(row["status"] != "ok" for row in rows):
        text += f" {_DIVERGED} Training diverged (non-finite loss)."
    return text


def _shown_keys(rows: Sequence[SummaryRow]) -> list[str]:
    """The hyperparameters (dataset included) that differ between rows; else activation and
    pooling, or architecture and output when no row is today's network (the 1998 network
    ignores activation and pooling)."""
    varying = [k for k in _KEYS if len({_value(r, k) for r in rows}) > 1]
    if varying:
        return varying
    if all(row["architecture"] != DEFAULT_ARCHITECTURE for row in rows):
        return ["architecture", "output"]
    return ["activation", "pooling"]


def setting_labels(rows: Sequence[SummaryRow]) -> dict[str, str]:
    """Short legend labels: each setting's values of the hyperparameters that vary, as in the
    table ("relu, max"); diverged settings say so."""
    shown = _shown_keys(rows)
    return {
        row["setting"]: ", ".join(_value(row, k) for k in shown)
        + ("" if row["status"] == "ok" else f" ({row['status']})")
        for row in rows
    }


def grid_table(rows: Sequence[SummaryRow]) -> GridTable:
    """The table of ``summarize``'s rows: grouped by dataset, in grid order within one."""
    if not rows:
        raise ValueError("a table needs at least one summary row")
    shown = _shown_keys(rows)
    datasets = list(dict.fromkeys(dataset_of(r) for r in rows))
    ordered = sorted(rows, key=lambda r: datasets.index(dataset_of(r)))
    best = _best_ranks(rows)
    table_rows = tuple(
        TableRow(
            keys=tuple(_value(r, k) for k in shown),
            accuracy_mean=100.0 * r["test_accuracy_mean"],
            accuracy_std=100.0 * r["test_accuracy_std"],
            epochs=r["epochs"],
            time_s=r["train_time_s_mean"],
            best=r["rank"] in best,
            diverged=r["status"] != "ok",
        )
        for r in ordered
    )
    constant = [k for k in _KEYS if k not in shown]
    return GridTable(tuple(_KEY_HEADINGS[k] for k in shown), table_rows, _caption(rows, constant))


# ---------------------------------------------------------------- renderers


def _cells(
    row: TableRow, accuracy: str, *, bold: Callable[[str], str], escape: Callable[[str], str]
) -> list[str]:
    """The cells of one row; ``accuracy`` already formatted (bold, diverged mark)."""
    error = f"{row.error:.2f}"
    return [
        *(escape(k) for k in row.keys),
        accuracy,
        bold(error) if row.best else error,
        str(row.epochs),
        f"{row.time_s:.1f}",
    ]


def _plain_accuracy(row: TableRow, bold: Callable[[str], str]) -> str:
    text = f"{row.accuracy_mean:.2f} ± {row.accuracy_std:.2f}"
    return (bold(text) if row.best else text) + (_DIVERGED if row.diverged else "")


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters (and ±, †) as commands."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _latex_accuracy(row: TableRow) -> str:
    mean, std = f"{row.accuracy_mean:.2f}", f"{row.accuracy_std:.2f}"
    if row.best:
        mean, std = f"\\mathbf{{{mean}}}", f"\\mathbf{{{std}}}"
    mark = _LATEX_SPECIAL[_DIVERGED] if row.diverged else ""
    return f"${mean} \\pm {std}${mark}"


def to_latex(table: GridTable) -> str:
    """A ``table`` float with a booktabs ``tabular``, caption and label, to ``\\input``."""
    columns = "l" * len(table.key_headings) + "r" * len(_NUMBER_HEADINGS)
    lines = [
        "% The lenet-cpp grid (results/paper/table.tex): \\input it in a document whose",
        "% preamble has \\usepackage{booktabs}.",
        "\\begin{table}[tbp]",
        "  \\centering",
        f"  \\caption{{{latex_escape(table.caption)}}}",
        f"  \\label{{{LATEX_LABEL}}}",
        f"  \\begin{{tabular}}{{{columns}}}",
        "    \\toprule",
        "    " + " & ".join(latex_escape(h) for h in table.headings) + " \\\\",
        "    \\midrule",
    ]
    for row in table.rows:
        cells = _cells(
            row, _latex_accuracy(row), bold=lambda s: f"\\textbf{{{s}}}", escape=latex_escape
        )
        lines.append("    " + " & ".join(cells) + " \\\\")
    lines += ["    \\bottomrule", "  \\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def to_markdown(table: GridTable) -> str:
    """A GitHub-flavoured Markdown table, its caption below it."""
    align = ["---"] * len(table.key_headings) + ["--:"] * len(_NUMBER_HEADINGS)
    lines = ["| " + " | ".join(table.headings) + " |", "|" + "|".join(align) + "|"]

    def bold(text: str) -> str:
        return f"**{text}**"

    for row in table.rows:
        accuracy = _plain_accuracy(row, bold)
        cells = _cells(row, accuracy, bold=bold, escape=lambda s: s.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", table.caption, ""])


def to_html(table: GridTable) -> str:
    """A standalone HTML page holding the table (the report shows it)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headings)

    def bold(text: str) -> str:
        return f"<b>{text}</b>"

    body = []
    for row in table.rows:
        cells = _cells(row, _plain_accuracy(row, bold), bold=bold, escape=html.escape)
        n_keys = len(row.keys)
        tds = [f"<td{' class=num' if i >= n_keys else ''}>{c}</td>" for i, c in enumerate(cells)]
        body.append("<tr>" + "".join(tds) + "</tr>")
    style = (
        "table{border-collapse:collapse;font-family:sans-serif;font-size:14px;"
        "border-top:2px solid #000;border-bottom:2px solid #000}"
        "th,td{padding:2px 10px}thead th{border-bottom:1px solid #000}.num{text-align:right}"
        "caption{caption-side:bottom;text-align:left;max-width:50em;padding-top:6px}"
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8"><title>lenet-cpp grid</title>',
            f"<style>{style}</style></head><body>",
            f"<table><caption>{html.escape(table.caption)}</caption>",
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *body,
            "</tbody></table></body></html>",
            "",
        ]
    )
