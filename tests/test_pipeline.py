"""The Snakemake workflow end to end, on tiny synthetic MNIST in throw-away directories.

Each workflow directory is a clone-like copy (see ``workflow_utils``), so touching a
C++ source or killing a job never affects the real checkout. The full runs use
``config/test.yaml``: 2 settings x 2 seeds, 1 epoch, 512/128 images.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import matplotlib.image
import pytest
import yaml
from portability import LIBRARY_SWITCHES
from workflow_utils import (
    OVERRIDES,
    assert_same_results,
    expected_outputs,
    extension_path,
    job_counts,
    load_config,
    make_workflow_dir,
    results_layout,
    run_snakemake,
    setting_names,
    snakemake_command,
)

from lenet_cpp.layout import (
    DATA_MANIFEST,
    DEFAULT_DATASET,
    MNIST_FILES,
    PAPER_FIGURES,
    dataset_dir,
    run_files,
)
from lenet_cpp.plotting import PIXELS
from lenet_cpp.results import read_losses, read_predictions
from lenet_cpp.style import FigureStyle
from lenet_cpp.synthetic import write_synthetic_mnist

pytestmark = pytest.mark.slow

N_TRAIN, N_TEST = 512, 128


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_mnist(tmp_path_factory.mktemp("synthetic"), N_TRAIN, N_TEST, seed=0)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, synthetic_source: Path) -> Path:
    """A workflow directory after one complete run of the test configuration."""
    workdir = make_workflow_dir(tmp_path_factory.mktemp("run_a"), synthetic=synthetic_source)
    run_snakemake(workdir)
    return workdir


@pytest.fixture(scope="module")
def finished_again(tmp_path_factory: pytest.TempPathFactory, synthetic_source: Path) -> Path:
    """A second, independent complete run from scratch (for reproducibility)."""
    workdir = make_workflow_dir(tmp_path_factory.mktemp("run_b"), synthetic=synthetic_source)
    run_snakemake(workdir)
    return workdir


@pytest.fixture
def fresh(tmp_path: Path, synthetic_source: Path) -> Path:
    return make_workflow_dir(tmp_path / "fresh", synthetic=synthetic_source)


def _files_under(root: Path, sub: str) -> list[str]:
    """Result files under ``root/sub``: every file but the jobs' logs and benchmarks."""
    bookkeeping = {root / sub / "logs", root / sub / "benchmarks"}
    return sorted(
        str(p.relative_to(root))
        for p in (root / sub).rglob("*")
        if p.is_file() and not bookkeeping & set(p.parents)
    )


def _results_dir(workdir: Path) -> str:
    return load_config(workdir)["results_dir"]


def _nothing_to_do(workdir: Path) -> bool:
    done = run_snakemake(workdir, "--dry-run")
    return "Nothing to be done" in done.stdout + done.stderr


# ---------------------------------------------------------------- static checks


def test_lint_is_clean(fresh: Path) -> None:
    done = run_snakemake(fresh, "--lint")
    output = done.stdout + done.stderr
    assert "Congratulations, your workflow is in a good condition!" in output
    assert "Lints for" not in output


@pytest.mark.parametrize("datasets", [None, ["mnist", "fashion-mnist"]])
def test_dry_run_lists_one_train_job_per_setting_and_a_data_job_per_dataset(
    fresh: Path, datasets: list[str] | None
) -> None:
    if datasets is not None:
        (fresh / OVERRIDES).write_text(yaml.safe_dump({"grid": {"dataset": datasets}}))
    n_settings = len(setting_names(load_config(fresh)))
    done = run_snakemake(fresh, "--dry-run", "--quiet", "rules")
    assert job_counts(done.stdout) == {
        "download_data": len(datasets or [DEFAULT_DATASET]),
        "train": n_settings,
        "plot_setting": n_settings,
        "summarize_grid": 1,
        "paper_outputs": 1,
        "all": 1,
    }


def test_each_dataset_of_the_grid_has_its_own_settings_and_directory(fresh: Path) -> None:
    (fresh / OVERRIDES).write_text("grid:\n  dataset: [mnist, fashion-mnist]\n", encoding="utf-8")
    config = load_config(fresh)
    names = setting_names(config)
    assert len(names) == 4 and sum(n.startswith("fashion-mnist_") for n in names) == 2
    root = config["data"]["dir"]
    manifests = [f"{dataset_dir(root, d)}/{DATA_MANIFEST}" for d in ("mnist", "fashion-mnist")]
    run_snakemake(fresh, *manifests)  # the synthetic source serves both (data.verify is off)
    for manifest in manifests:
        files = sorted(p.name for p in (fresh / manifest).parent.iterdir())
        assert files == sorted([*MNIST_FILES, DATA_MANIFEST])


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("grid:\n  activation: [sigmoid]\n", ["activation", "sigmoid"]),
        ("epochs: 0\n", ["epochs"]),
        ("seeds: [1, 1]\n", ["seeds"]),
        ("epoch: 3\n", ["epoch"]),
        ("grid:\n  learning_rate: [-0.1]\n", ["learning_rate", "-0.1"]),
    ],
)
def test_invalid_config_is_rejected_naming_the_key(
    fresh: Path, override: str, named: list[str]
) -> None:
    bad = fresh / "bad.yaml"
    bad.write_text(override, encoding="utf-8")
    done = run_snakemake(fresh, "--dry-run", "--configfile", str(bad), check=False)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "Error validating config file" in message
    for word in named:
        assert word in message
    assert not (fresh / _results_dir(fresh)).exists()


def test_nested_config_keys_come_from_a_second_file(fresh: Path) -> None:
    """As the README says: nested keys via a layered --configfile; --config passes them on as
    strings, which the schema refuses naming the value."""
    extra = fresh / "my.yaml"
    extra.write_text("grid:\n  activation: [tanh]\n", encoding="utf-8")
    done = run_snakemake(fresh, "--dry-run", "--configfile", "config.yaml", str(extra))
    planned = done.stdout + done.stderr
    assert "tanh_" in planned and "relu_" not in planned
    refused = run_snakemake(fresh, "--dry-run", "--config", "data={verify: false}", check=False)
    assert refused.returncode != 0
    assert "'false' is not of type 'boolean'" in refused.stdout + refused.stderr


def test_schedule_and_augment_axes_reach_the_plan(fresh: Path) -> None:
    """The speedrun config (a schedule axis and its options) plans its one setting; an
    augment axis doubles the settings with _aug names."""
    done = run_snakemake(fresh, "--dry-run", "--configfile", "config.yaml", "config/speedrun.yaml")
    assert "relu_max_lr0.08_bs128_mom0.9_wd0.0005_onecycle" in done.stdout + done.stderr
    extra = fresh / "aug.yaml"
    extra.write_text("grid:\n  augment: [false, true]\naugment_ranges: {rotate: 5}\n")
    done = run_snakemake(fresh, "--dry-run", "--configfile", "config.yaml", str(extra))
    planned = done.stdout + done.stderr
    names = set(re.findall(r"relu_max_lr0\.01_bs64_mom0\.9_wd0\w*", planned))
    assert names == {"relu_max_lr0.01_bs64_mom0.9_wd0", "relu_max_lr0.01_bs64_mom0.9_wd0_aug"}


# ---------------------------------------------------------------- a full run


def test_full_run_writes_every_declared_output(finished: Path) -> None:
    config = load_config(finished)
    results = config["results_dir"]
    assert _files_under(finished, results) == expected_outputs(config)
    layout = results_layout(config)
    for name in setting_names(config):
        assert (finished / layout.log("train", name)).stat().st_size > 0
        assert (finished / layout.benchmark("train", name)).is_file()
    assert not (finished / "logs").exists() and not (finished / "benchmarks").exists()


def test_metrics_hold_sane_numbers_and_provenance(finished: Path) -> None:
    config = load_config(finished)
    steps = -(-N_TRAIN // config["grid"]["batch_size"][0]) * config["epochs"]
    for name in setting_names(config):
        run = finished / config["results_dir"] / "runs" / name
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["setting"]["name"] == name
        assert metrics["seeds"] == config["seeds"]
        assert metrics["data"] == {
            "train_size": N_TRAIN,
            "test_size": N_TEST,
            "dir": dataset_dir(config["data"]["dir"], DEFAULT_DATASET),
            "md5": metrics["data"]["md5"],
        }
        assert len(metrics["data"]["md5"]) == 4
        accuracy = metrics["results"]["test_accuracy"]
        assert 0.0 <= accuracy["min"] <= accuracy["mean"] <= accuracy["max"] <= 1.0
        for seed in config["seeds"]:
            numbers = metrics["results"]["per_seed"][str(seed)]
            assert numbers["steps"] == steps
            assert len(numbers["test_loss"]) == config["epochs"]
            assert sum(map(sum, numbers["confusion"])) == N_TEST
            losses = read_losses(run / f"seed{seed}" / "losses.csv")
            assert losses.shape == (steps,)
            assert losses[-1] == pytest.approx(numbers["final_step_loss"])
            labels, predictions = read_predictions(run / f"seed{seed}" / "predictions.csv")
            assert labels.shape == predictions.shape == (N_TEST,)
            assert numbers["test_accuracy"][-1] == pytest.approx((labels == predictions).mean())
            assert (run / f"seed{seed}" / "model.pt").stat().st_size > 10_000
        run_info = metrics["run"]
        assert run_info["job_threads"] == config["threads"]
        assert run_info["concurrent_runs"] == min(len(config["seeds"]), config["threads"])
        assert run_info["threads_per_run"] * run_info["concurrent_runs"] <= config["threads"]
        env = metrics["provenance"]["environment"]
        assert env["torch"] and env["lenet_cpp"] and env["python"]
        assert Path(env["lenet_cpp_module"]) == finished / "lenet_cpp"  # the built module
        assert metrics["timing"]["job_wall_time_s"] > 0
        assert metrics["timing"]["images_per_second"] > 0


def test_summary_has_one_ranked_row_per_setting(finished: Path) -> None:
    config = load_config(finished)
    with open(finished / config["results_dir"] / "grid" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["setting"] for r in rows] == setting_names(config)
    assert sorted(int(r["rank"]) for r in rows) == list(range(1, len(rows) + 1))
    best = min(rows, key=lambda r: int(r["rank"]))
    assert float(best["test_accuracy_mean"]) == max(float(r["test_accuracy_mean"]) for r in rows)
    for row in rows:
        assert 0.0 <= float(row["test_accuracy_mean"]) <= 1.0
        assert float(row["test_accuracy_std"]) >= 0.0
        assert float(row["final_test_loss_mean"]) > 0.0
        assert float(row["images_per_second"]) > 0.0
        assert int(row["n_seeds"]) == len(config["seeds"])


def test_figures_are_images_of_the_expected_size(finished: Path) -> None:
    results = finished / _results_dir(finished)
    paper = results / "paper"  # at the paper style: tests/test_paper.py, test_paper_outputs_...
    pngs = sorted(p for p in results.rglob("*.png") if paper not in p.parents)
    pdfs = sorted(p for p in results.rglob("*.pdf") if paper not in p.parents)
    assert len(pngs) == len(pdfs) == 2 * len(setting_names(load_config(finished))) + 2
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.shape[:2] == (PIXELS[1], PIXELS[0])
        assert image[..., :3].std() > 0.01  # not blank
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF") and len(data) > 5_000
        assert b"CreationDate" not in data


def test_paper_outputs_hold_the_grid_at_the_paper_style(finished: Path) -> None:
    config = load_config(finished)
    layout = results_layout(config)
    style = FigureStyle.from_config(config["paper"])
    names = setting_names(config)
    latex = (finished / layout.paper_file("table.tex")).read_text(encoding="utf-8")
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert len(body) == len(names) and latex.count("\\mathbf{") == 2  # the best, in bold
    markdown = (finished / layout.paper_file("table.md")).read_text(encoding="utf-8")
    assert markdown.count("**") == 4
    for figure in PAPER_FIGURES:
        png = matplotlib.image.imread(finished / layout.paper_figure(figure, "png"))
        assert png.shape[1] == int(style.width_in * style.dpi), figure
        assert png[..., :3].std() > 0.01, figure
        pdf = (finished / layout.paper_figure(figure, "pdf")).read_bytes()
        assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    done = run_snakemake(finished, "--dry-run", "paper")
    assert "Nothing to be done" in done.stdout + done.stderr


def test_second_run_has_nothing_to_do(finished: Path) -> None:
    assert _nothing_to_do(finished)


def test_report_is_self_contained_html(finished: Path) -> None:
    report = finished / "report.html"
    run_snakemake(finished, "--report", str(report))
    html = report.read_text(encoding="utf-8", errors="replace")
    assert report.stat().st_size > 100_000
    assert "<html" in html.lower()
    assert "confusion_best.png" in html and "summary.csv" in html
    for name in ("table.html", "table.tex", "error_vs_epoch.png", "misclassified.pdf"):
        assert name in html
    report.unlink()


def test_touching_a_cpp_source_rebuilds_and_retrains(finished: Path) -> None:
    n_settings = len(setting_names(load_config(finished)))
    source = finished / "cpp" / "trainer.cpp"
    before = source.stat()
    later = extension_path(finished).stat().st_mtime + 60
    os.utime(source, (later, later))
    try:
        done = run_snakemake(finished, "--dry-run", "--quiet", "rules")
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert job_counts(done.stdout) == {
        "build_extension": 1,
        "train": n_settings,
        "plot_setting": n_settings,
        "summarize_grid": 1,
        "paper_outputs": 1,
        "all": 1,
    }
    assert _nothing_to_do(finished)


def test_library_switches_change_no_result(
    tmp_path: Path, synthetic_source: Path, finished: Path
) -> None:
    """MKL's, ATen's and glibc's CPU code-path switches leave metrics, CSVs and figure bytes."""
    workdir = make_workflow_dir(tmp_path / "wf", synthetic=synthetic_source)
    run_snakemake(workdir, env=LIBRARY_SWITCHES)
    assert_same_results(workdir, finished)


def test_two_runs_from_scratch_are_identical(finished: Path, finished_again: Path) -> None:
    config = load_config(finished)
    results = config["results_dir"]
    assert expected_outputs(config) == _files_under(finished_again, results)
    assert_same_results(finished_again, finished)


# ---------------------------------------------------------------- a killed job


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_training_job_is_rerun_cleanly(tmp_path: Path, synthetic_source: Path) -> None:
    overrides = {
        "grid": {"activation": ["relu"], "pooling": ["max"]},
        "epochs": 40,
        "progress_every": 5,
    }
    workdir = make_workflow_dir(tmp_path / "wf", overrides=overrides, synthetic=synthetic_source)
    config = load_config(workdir)
    (name,) = setting_names(config)
    run = workdir / config["results_dir"] / "runs" / name
    log = workdir / results_layout(config).log("train", name)

    with open(tmp_path / "snakemake.out", "w") as out:
        proc = subprocess.Popen(
            snakemake_command(workdir),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(lambda: log.is_file() and "Progress(" in log.read_text(), 120, "training")
        # what a kill can leave behind: a half-written file and a temporary one
        (run / "seed0").mkdir(parents=True, exist_ok=True)
        (run / "seed0" / "losses.csv").write_text("step,epoch,loss\n1,1,")
        (run / "seed1").mkdir(parents=True, exist_ok=True)
        (run / "seed1" / "model.pt.partial").write_bytes(b"\0" * 100)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    killed_at = time.time()
    assert not (run / "metrics.json").exists()

    refused = run_snakemake(workdir, "--dry-run", check=False)
    assert refused.returncode != 0
    assert "incomplete" in (refused.stdout + refused.stderr).lower()

    run_snakemake(workdir, "--unlock")  # the killed Snakemake left its lock behind
    run_snakemake(workdir, "--rerun-incomplete")
    assert not list((workdir / config["results_dir"]).rglob("*.partial"))
    assert _files_under(workdir, config["results_dir"]) == expected_outputs(config)
    steps = -(-N_TRAIN // config["grid"]["batch_size"][0]) * config["epochs"]
    for seed in config["seeds"]:
        for rel in ("losses.csv", "model.pt"):
            assert (run / f"seed{seed}" / rel).stat().st_mtime >= killed_at
        assert read_losses(run / f"seed{seed}" / "losses.csv").shape == (steps,)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["results"]["per_seed"]["0"]["steps"] == steps
    assert _nothing_to_do(workdir)


def test_config_files_are_valid_yaml_with_a_grid() -> None:
    root = Path(__file__).resolve().parents[1]
    main = yaml.safe_load((root / "config.yaml").read_text())
    assert len(setting_names(main)) >= 4 and len(main["seeds"]) >= 3
    assert main["data"]["verify"] is True and main["data"]["source"] is None


# ---------------------------------------------------------------- results and data damaged later


@pytest.fixture
def finished_copy(tmp_path: Path, finished: Path) -> Path:
    """A private copy of the finished workflow directory (timestamps kept)."""
    return Path(shutil.copytree(finished, tmp_path / "copy", symlinks=True))


@pytest.mark.parametrize("damage", ["empty_run_dir", "delete_metrics", "delete_one_model"])
def test_a_damaged_run_directory_reschedules_its_job(finished_copy: Path, damage: str) -> None:
    config = load_config(finished_copy)
    name = setting_names(config)[0]
    run = finished_copy / results_layout(config).run_dir(name)
    if damage == "empty_run_dir":  # what a killed forced rerun leaves: Snakemake emptied it
        shutil.rmtree(run)
        run.mkdir()
    elif damage == "delete_metrics":
        (run / "metrics.json").unlink()
    else:
        (run / "seed1" / "model.pt").unlink()
    done = run_snakemake(finished_copy, "--dry-run", "--quiet", "rules")
    assert job_counts(done.stdout) == {
        "train": 1,
        "plot_setting": 1,
        "summarize_grid": 1,
        "paper_outputs": 1,
        "all": 1,
    }
    run_snakemake(finished_copy)
    assert sorted(map(str, run_files(run, config["seeds"]))) == sorted(
        str(p) for p in run.rglob("*") if p.is_file()
    )
    assert _nothing_to_do(finished_copy)


def test_a_corrupted_data_file_fails_the_train_job_naming_the_checksums(
    finished_copy: Path,
) -> None:
    config = load_config(finished_copy)
    data = finished_copy / dataset_dir(config["data"]["dir"], DEFAULT_DATASET)
    images = data / MNIST_FILES[0]
    blob = bytearray(images.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size, one byte flipped
    images.write_bytes(bytes(blob))
    # --keep-going: every train job runs and fails, whichever the scheduler starts first
    done = run_snakemake(finished_copy, "--forcerun", "train", "--keep-going", check=False)
    assert done.returncode != 0
    name = setting_names(config)[0]
    log = (finished_copy / results_layout(config).log("train", name)).read_text()
    manifest = json.loads((data / DATA_MANIFEST).read_text())
    expected = manifest["md5"][MNIST_FILES[0]]
    assert f"{images.relative_to(finished_copy)} has MD5 " in log
    assert f"expected MD5 {expected}" in log
    assert "--forcerun download_data" in log
    assert not (finished_copy / results_layout(config).metrics(name)).exists()


def test_forceall_keeps_the_verified_data(finished_copy: Path) -> None:
    config = load_config(finished_copy)
    data = finished_copy / dataset_dir(config["data"]["dir"], DEFAULT_DATASET)
    before = {name: (data / name).stat().st_mtime_ns for name in MNIST_FILES}
    manifest = (data / DATA_MANIFEST).stat().st_mtime_ns
    shutil.rmtree(finished_copy / config["data"]["source"])  # nowhere to fetch it again from
    run_snakemake(finished_copy, "--forceall", str(data.relative_to(finished_copy) / DATA_MANIFEST))
    assert {name: (data / name).stat().st_mtime_ns for name in MNIST_FILES} == before
    assert (data / DATA_MANIFEST).stat().st_mtime_ns > manifest


# ---------------------------------------------------------------- resume and divergence

RESUME_OVERRIDES = {
    "grid": {"activation": ["tanh"], "pooling": ["avg"]},
    "epochs": 4,
    "progress_every": 2,
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, synthetic_source: Path) -> Path:
    workdir = make_workflow_dir(
        tmp_path_factory.mktemp("uninterrupted"),
        overrides=RESUME_OVERRIDES,
        synthetic=synthetic_source,
    )
    run_snakemake(workdir)
    return workdir


def _reset_sigint() -> None:
    """The child takes Ctrl-C even when the tests run with SIGINT ignored (nohup, CI)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("how", "forced"), [(signal.SIGKILL, False), (signal.SIGINT, True)], ids=["kill-9", "ctrl-c"]
)
def test_killed_job_resumes_from_its_checkpoint_bit_identically(
    tmp_path: Path, synthetic_source: Path, uninterrupted: Path, how: int, forced: bool
) -> None:
    """Kill a first run (kill -9) or a forced retrain (Ctrl-C) after an epoch's checkpoint;
    the README's recovery recipe then resumes every seed and ends with the uninterrupted
    run's results, figures included."""
    workdir = make_workflow_dir(
        tmp_path / "wf", overrides=RESUME_OVERRIDES, synthetic=synthetic_source
    )
    config = load_config(workdir)
    (name,) = setting_names(config)
    layout = results_layout(config)
    checkpoints = workdir / layout.checkpoint_dir(name)
    extra = ()
    if forced:
        run_snakemake(workdir)
        extra = ("--forcerun", "train")
    with open(tmp_path / "snakemake.out", "w") as out:
        proc = subprocess.Popen(
            snakemake_command(workdir, *extra),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_reset_sigint,
        )
    try:
        _wait_for(lambda: (checkpoints / "seed0.ckpt").is_file(), 120, "a checkpoint")
        os.killpg(proc.pid, how)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not (workdir / layout.metrics(name)).exists()

    run_snakemake(workdir, "--unlock")
    run_snakemake(workdir, "--rerun-incomplete")
    metrics = json.loads((workdir / layout.metrics(name)).read_text())
    resumed = [t["resumed_from_epoch"] for t in metrics["timing"]["per_seed"].values()]
    assert max(resumed) >= 1, resumed
    assert not checkpoints.exists()
    assert_same_results(workdir, uninterrupted)
    assert _nothing_to_do(workdir)


def test_a_diverging_setting_is_recorded_and_the_grid_completes(
    tmp_path: Path, synthetic_source: Path
) -> None:
    overrides = {"grid": {"activation": ["relu"], "pooling": ["max"], "learning_rate": [0.05, 1e4]}}
    workdir = make_workflow_dir(tmp_path / "wf", overrides=overrides, synthetic=synthetic_source)
    config = load_config(workdir)
    run_snakemake(workdir)
    rows = {
        row["learning_rate"]: row
        for row in csv.DictReader(open(workdir / results_layout(config).summary))
    }
    assert rows["10000.0"]["status"] == "diverged"
    assert rows["0.05"]["status"] == "ok"
    assert rows["0.05"]["rank"] == "1"
    assert _files_under(workdir, config["results_dir"]) == expected_outputs(config)
