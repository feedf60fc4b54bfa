"""The command line (``lenet-cpp`` / ``python -m lenet_cpp``) on synthetic MNIST."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import pytest
from fake_sources import FakeWeb, write_script

from lenet_cpp.cli import EXIT_INTERRUPTED, main
from lenet_cpp.layout import MNIST_FILES, SETTING_FIGURES, figure_paths, run_files
from lenet_cpp.plotting import PIXELS


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--data-dir",
        str(data),
        "--no-verify",
        "--out-dir",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--no-progress",
        *extra,
    ]


def test_train_prints_accuracy_and_writes_metrics_and_figures(
    synthetic_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(_train_args(synthetic_mnist_dir, out, "--seeds", "4")) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    accuracy = metrics["results"]["per_seed"]["4"]["test_accuracy"][-1]
    assert f"seed 4: test accuracy {accuracy:.2%}" in printed
    figures = [path for figure in SETTING_FIGURES for path in figure_paths(out, figure)]
    expected = {*run_files(out, [4]), *figures}
    assert {p for p in out.rglob("*") if p.is_file()} == expected
    assert metrics["setting"]["learning_rate"] == 0.05 and metrics["setting"]["batch_size"] == 32
    assert metrics["data"]["source"] == "present"
    image = matplotlib.image.imread(out / "loss.png")
    assert image.shape[:2] == (PIXELS[1], PIXELS[0])


def test_train_several_seeds_concurrently(
    synthetic_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = _train_args(synthetic_mnist_dir, out, "--seeds", "0", "1", "--threads", "2")
    assert main(args) == 0
    assert "mean test accuracy" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1]
    assert metrics["run"]["concurrent_runs"] == 2 and metrics["run"]["threads_per_run"] == 1


def test_train_reports_a_bad_argument_without_a_traceback(
    synthetic_mnist_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    assert main(_train_args(synthetic_mnist_dir, out, "--batch-size", "0")) == 1
    assert "batch_size" in caplog.text
    assert not out.exists() or not any(out.rglob("*.*"))


def test_download_copies_from_a_local_source(
    synthetic_mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    argv = ["download", "--data-dir", str(data), "--source", str(synthetic_mnist_dir)]
    assert main([*argv, "--no-verify"]) == 0
    assert sorted(p.name for p in data.iterdir()) == sorted(MNIST_FILES)
    assert "local:" in capsys.readouterr().out


def test_download_fashion_mnist_checks_its_own_checksums(
    synthetic_mnist_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    web: FakeWeb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(tmp_path / "apt-get", "exit 100\n")  # offline: Debian's package is out of reach
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    data = tmp_path / "fashion"
    argv = ["download", "--dataset", "fashion-mnist", "--data-dir", str(data)]
    argv += ["--source", str(synthetic_mnist_dir)]
    assert main(argv) == 1  # synthetic files are not Fashion-MNIST
    assert main([*argv, "--no-verify"]) == 0
    assert "Fashion-MNIST ready in" in capsys.readouterr().out


def test_download_puts_each_dataset_in_its_own_directory(
    synthetic_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["download", "--source", str(synthetic_mnist_dir), "--no-verify"]
    assert main([*argv, "--dataset", "fashion-mnist"]) == 0
    assert sorted(p.name for p in (tmp_path / "data" / "fashion-mnist").iterdir()) == sorted(
        MNIST_FILES
    )
    assert not (tmp_path / "data" / "mnist").exists()


def test_synthetic_writes_idx_files(tmp_path: Path) -> None:
    assert main(["synthetic", str(tmp_path / "s"), "--n-train", "20", "--n-test", "10"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(MNIST_FILES)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "lenet-cpp"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "train" in done.stdout and "download" in done.stdout


@pytest.mark.slow
def test_ctrl_c_stops_training_and_writes_no_result(
    synthetic_mnist_dir: Path, tmp_path: Path
) -> None:
    """Ctrl-C leaves no result file; only the resumable checkpoints (out/checkpoints)."""
    out = tmp_path / "out"
    log = tmp_path / "stderr.txt"
    argv = _train_args(synthetic_mnist_dir, out, "--epochs", "500", "--progress-every", "5")
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lenet_cpp", *argv],
            stdout=subprocess.DEVNULL,
            stderr=err,
            # Python installs its Ctrl-C handler only where SIGINT is not ignored (nohup, CI)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 120
        while "training " not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == EXIT_INTERRUPTED
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted" in log.read_text()
    checkpoints = out / "checkpoints"
    results = [p for p in out.rglob("*") if p.is_file() and checkpoints not in p.parents]
    assert not results
