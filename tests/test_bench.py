"""The benchmark runs end to end on tiny synthetic data and reports every section (no speeds
are asserted). Its strongest Python contender, lenet_cpp.reference.train_loop, is tested in
test_reference.py."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(name: str) -> object:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, Path]:
    bench = load("bench")
    out = tmp_path_factory.mktemp("bench")
    argv = ["--synthetic", "--quick", "--train-limit", "128", "--test-limit", "64"]
    argv += ["--batch-sizes", "32", "--max-epochs", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        return bench.main(argv), out
    finally:
        torch.set_num_threads(threads)


def test_report_has_every_section(report):
    result, out = report
    assert result["machine"]["data"] == "synthetic"
    assert result["machine"]["train_images"] == 128
    saved = json.loads((out / "latest.json").read_text())
    assert set(saved) >= {"machine", "single", "grid", "gil", "target", "table"}
    contenders = {row["contender"] for row in saved["single"]["rows"]}
    assert contenders == {
        "cpp",
        "cpp_augment",
        "python_strong",
        "python_strong_1thread",
        "python_dataloader",
    }
    assert set(saved["single"]["ratios"]["32"]) == {
        "cpp_vs_python_strong",
        "cpp_vs_python_strong_1thread",
        "cpp_vs_python_dataloader",
        "cpp_vs_strongest_python",
        "accuracy_gap_points",
        "augment_slowdown",
    }
    assert set(saved["grid"]["rows"]) == {
        "cpp_threads",
        "python_threads",
        "cpp_sequential",
        "python_sequential",
    }
    assert "cpp_threads_vs_python_threads" in saved["grid"]["ratios"]
    assert set(saved["gil"]) == {"idle", "cpp_training", "python_training"}
    assert all({"p99_ms", "max_ms", "ticks"} <= set(v) for v in saved["gil"].values())
    assert {"cpp", "python_strong", "target"} <= set(saved["target"])
    for row in saved["single"]["rows"]:
        assert row["images_per_second"] > 0 and 0.0 <= row["test_accuracy"] <= 1.0


def test_csv_and_table_are_written(report):
    _, out = report
    with (out / "latest.csv").open() as handle:
        keys = {row["key"] for row in csv.DictReader(handle)}
    assert "grid.ratios.cpp_threads_vs_python_threads" in keys
    table = (out / "latest.md").read_text()
    assert table.startswith("| section |") and "python_dataloader" in table
