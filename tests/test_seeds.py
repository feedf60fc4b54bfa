"""lenet_cpp.setting, lenet_cpp.seeds (concurrent seed replicates), lenet_cpp.job and
lenet_cpp.results (their files)."""

from __future__ import annotations

import _thread
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import lenet_cpp
from lenet_cpp.integrity import DataIntegrityError, read_manifest, verify_files, write_manifest
from lenet_cpp.job import JobSpec, run_job, run_setting
from lenet_cpp.layout import DATA_MANIFEST, MNIST_FILES, PARTIAL_SUFFIX, run_files
from lenet_cpp.results import (
    atomic_path,
    best_row,
    confusion_matrix,
    load_metrics,
    read_losses,
    read_predictions,
    read_summary,
    remove_partials,
    stats,
    summarize,
    write_summary,
)
from lenet_cpp.seeds import THREAD_PREFIX, RunCancelled, ThreadPlan, train_seeds
from lenet_cpp.setting import Hyperparameters, TrainData, grid_settings

HP = Hyperparameters(learning_rate=0.05, momentum=0.9, batch_size=32, epochs=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TrainData:
    from lenet_cpp.synthetic import write_synthetic_mnist

    return TrainData.load(write_synthetic_mnist(tmp_path_factory.mktemp("syn"), 512, 128))


def _assert_same_results(a: lenet_cpp.TrainResult, b: lenet_cpp.TrainResult) -> None:
    assert torch.equal(a.step_losses, b.step_losses)
    assert a.train_loss == b.train_loss and a.test_loss == b.test_loss
    assert a.test_accuracy == b.test_accuracy
    assert torch.equal(a.test_predictions, b.test_predictions)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- settings and threads


def test_setting_name_is_stable_and_distinguishes_grid_values() -> None:
    hp = Hyperparameters("tanh", "avg", 0.01, 64, 0.9, 1e-4, epochs=3)
    assert hp.name == "tanh_avg_lr0.01_bs64_mom0.9_wd0.0001"
    assert Hyperparameters(learning_rate=0.1).name != Hyperparameters(learning_rate=0.01).name
    assert Hyperparameters(epochs=1).name == Hyperparameters(epochs=9).name  # not a grid key


def test_grid_settings_name_every_combination() -> None:
    grid = {"activation": ["relu", "tanh"], "pooling": ["max"], "learning_rate": [0.1, 0.01]}
    settings = grid_settings({**grid, "batch_size": [8]}, epochs=2)
    assert list(settings) == [
        "relu_max_lr0.1_bs8_mom0_wd0",
        "relu_max_lr0.01_bs8_mom0_wd0",
        "tanh_max_lr0.1_bs8_mom0_wd0",
        "tanh_max_lr0.01_bs8_mom0_wd0",
    ]
    assert all(hp.name == name and hp.epochs == 2 for name, hp in settings.items())


def test_a_subset_larger_than_the_data_is_an_error(data: TrainData) -> None:
    train = (torch.zeros(10, 28, 28, dtype=torch.uint8), torch.zeros(10, dtype=torch.uint8))
    assert TrainData.from_arrays(train, train, train_subset=10, test_subset=3).n_test == 3
    with pytest.raises(ValueError, match=r"train_subset=11 but the train split has 10 samples"):
        TrainData.from_arrays(train, train, train_subset=11)
    with pytest.raises(ValueError, match="test_subset=0"):
        TrainData.from_arrays(train, train, test_subset=0)


def test_hyperparameters_from_mapping_rejects_unknown_keys() -> None:
    assert Hyperparameters.from_mapping({"pooling": "avg"}).pooling == "avg"
    with pytest.raises(ValueError, match="lr"):
        Hyperparameters.from_mapping({"lr": 0.1})


@pytest.mark.parametrize(
    ("job_threads", "n_seeds", "expected"),
    [(2, 3, (2, 1)), (4, 2, (2, 2)), (8, 3, (3, 2)), (1, 3, (1, 1)), (6, 1, (1, 6))],
)
def test_thread_plan_fits_the_job(job_threads: int, n_seeds: int, expected: tuple) -> None:
    plan = ThreadPlan.for_job(job_threads, n_seeds)
    assert (plan.concurrent_runs, plan.threads_per_run) == expected
    assert plan.concurrent_runs * plan.threads_per_run <= job_threads


def test_thread_plan_sequential_uses_all_threads() -> None:
    assert ThreadPlan.for_job(4, 3, concurrent=False) == ThreadPlan(1, 4)
    with pytest.raises(ValueError):
        ThreadPlan.for_job(0, 3)


# ---------------------------------------------------------------- concurrency


def test_concurrent_replicates_equal_sequential_ones(data: TrainData) -> None:
    seeds = [3, 0, 1]
    together = train_seeds(data, HP, seeds, threads_per_run=1)
    alone = train_seeds(data, HP, seeds, threads_per_run=1, concurrent_runs=1)
    assert list(together) == list(alone) == seeds
    for seed in seeds:
        _assert_same_results(together[seed], alone[seed])
    assert not torch.equal(together[0].step_losses, together[1].step_losses)


def test_replicates_really_run_at_the_same_time(data: TrainData) -> None:
    """Both seeds must be inside training at once to pass the barrier: run one after the
    other, the first would wait alone and time out (BrokenBarrierError)."""
    both_training = threading.Barrier(2, timeout=60)
    threads: dict[int, str] = {}

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        if p.step == 4:  # the first report, mid-training for both seeds
            threads[seed] = threading.current_thread().name
            both_training.wait()

    train_seeds(data, HP, [0, 1], progress=progress, progress_every=4)
    assert len(set(threads.values())) == 2
    assert all(name.startswith(THREAD_PREFIX) for name in threads.values())


def test_one_at_a_time_never_overlaps(data: TrainData) -> None:
    """The barrier above does detect sequential runs."""
    barrier = threading.Barrier(2, timeout=2)

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        if p.step == 4:
            barrier.wait()

    with pytest.raises(threading.BrokenBarrierError):
        train_seeds(data, HP, [0, 1], concurrent_runs=1, progress=progress, progress_every=4)


def test_a_failing_replicate_stops_the_others_and_propagates(data: TrainData) -> None:
    hp = Hyperparameters(batch_size=16, epochs=20)
    total = hp.epochs * hp.steps_per_epoch(data.n_train)
    seen: dict[int, int] = {}
    failed = threading.Event()

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        seen[seed] = p.step
        if seed == 1:
            failed.set()
            raise ValueError("boom from seed 1")
        failed.wait(timeout=30)

    with pytest.raises(ValueError, match="boom from seed 1"):
        train_seeds(data, hp, [0, 1, 2], progress=progress, progress_every=1)
    assert seen[1] == 1
    assert seen.get(0, 0) < total and seen.get(2, 0) < total  # stopped early, maybe at once
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_setting_the_stop_event_cancels_every_run(data: TrainData) -> None:
    stop = threading.Event()

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        if p.step >= 3:
            stop.set()

    with pytest.raises(RunCancelled):
        train_seeds(
            data, Hyperparameters(epochs=50), [0, 1], progress=progress, progress_every=1, stop=stop
        )


def test_ctrl_c_in_the_calling_thread_stops_the_replicates(data: TrainData) -> None:
    hp = Hyperparameters(batch_size=16, epochs=400)
    total = hp.epochs * hp.steps_per_epoch(data.n_train)
    started = threading.Event()
    seen: dict[int, int] = {}

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        seen[seed] = p.step
        started.set()

    def interrupt() -> None:
        if started.wait(timeout=60):
            _thread.interrupt_main()  # what Ctrl-C does, delivered to the main thread

    sender = threading.Thread(target=interrupt)
    sender.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train_seeds(data, hp, [0, 1], progress=progress, progress_every=1)
    finally:
        sender.join()
    assert seen and all(seen.get(s, 0) < total for s in (0, 1))
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_seeds_must_be_distinct_and_non_empty(data: TrainData) -> None:
    with pytest.raises(ValueError, match="distinct"):
        train_seeds(data, HP, [1, 1])
    with pytest.raises(ValueError, match="empty"):
        train_seeds(data, HP, [])


# ---------------------------------------------------------------- result files


def test_run_setting_writes_consistent_files(data: TrainData, tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "seed0").mkdir(parents=True)
    stale = out / "seed0" / f"model.pt{PARTIAL_SUFFIX}"
    stale.write_bytes(b"half")
    record = run_setting(HP, [0, 1], data, out, job_threads=2, data_info={"dir": "x"})
    assert not stale.exists()
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(run_files(out, [0, 1]))
    assert load_metrics(out / "metrics.json") == json.loads(json.dumps(record))
    steps = HP.epochs * HP.steps_per_epoch(data.n_train)
    for seed in (0, 1):
        per_seed = record["results"]["per_seed"][str(seed)]
        losses = read_losses(out / f"seed{seed}" / "losses.csv")
        assert losses.shape == (steps,) and per_seed["steps"] == steps
        labels, predictions = read_predictions(out / f"seed{seed}" / "predictions.csv")
        assert np.array_equal(labels, data.test_labels.numpy())
        assert per_seed["test_accuracy"][-1] == pytest.approx((labels == predictions).mean())
        assert np.array_equal(per_seed["confusion"], confusion_matrix(labels, predictions))
        model = lenet_cpp.LeNet5.load(str(out / f"seed{seed}" / "model.pt"))
        assert torch.equal(model.predict(data.test_images), torch.from_numpy(predictions))
    assert record["run"] == {
        "job_threads": 2,
        "threads_per_run": 1,
        "concurrent_runs": 2,
        "device": "cpu",
        "kernels": "fused",
    }
    assert record["data"] == {"train_size": 512, "test_size": 128, "dir": "x"}
    assert {"git", "environment", "started_at", "finished_at"} <= set(record["provenance"])


def test_metrics_results_are_reproducible(data: TrainData, tmp_path: Path) -> None:
    a = run_setting(HP, [0, 1], data, tmp_path / "a", job_threads=2)
    b = run_setting(HP, [0, 1], data, tmp_path / "b", job_threads=2)
    assert a["results"] == b["results"]
    for name in ("losses.csv", "epochs.csv", "predictions.csv"):
        assert (tmp_path / "a/seed1" / name).read_bytes() == (
            tmp_path / "b/seed1" / name
        ).read_bytes()


def test_atomic_path_leaves_nothing_behind_on_error(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and not remove_partials(tmp_path)


def test_stats_and_confusion() -> None:
    assert stats([1.0]) == {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    s = stats([1.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(np.sqrt(2.0))
    m = confusion_matrix(np.array([0, 0, 9]), np.array([0, 1, 9]))
    assert m.shape == (10, 10) and m[0, 0] == m[0, 1] == m[9, 9] == 1 and m.sum() == 3


def _record(name: str, accuracy: float, test_loss: float) -> dict:
    numbers = {"mean": accuracy, "std": 0.01, "min": accuracy, "max": accuracy}
    loss = {"mean": test_loss, "std": 0.0, "min": test_loss, "max": test_loss}
    return {
        "setting": {"name": name, **Hyperparameters().as_dict()},
        "seeds": [0, 1],
        "results": {"test_accuracy": numbers, "final_train_loss": loss, "final_test_loss": loss},
        "timing": {
            "job_wall_time_s": 2.0,
            "images_per_second": 100.0,
            "per_seed": {"0": {"train_time_s": 1.0}, "1": {"train_time_s": 3.0}},
        },
    }


def test_summary_ranks_by_accuracy_then_loss(tmp_path: Path) -> None:
    rows = summarize([_record("a", 0.9, 0.3), _record("b", 0.95, 0.5), _record("c", 0.95, 0.2)])
    assert [r["setting"] for r in rows] == ["a", "b", "c"]
    assert [r["rank"] for r in rows] == [3, 2, 1]
    assert best_row(rows)["setting"] == "c"
    assert rows[0]["train_time_s_mean"] == 2.0
    write_summary(tmp_path / "s.csv", rows)
    back = read_summary(tmp_path / "s.csv")
    assert [r["setting"] for r in back] == ["a", "b", "c"]
    assert float(back[2]["test_accuracy_mean"]) == 0.95


def test_queued_replicates_do_not_start_after_a_failure(data: TrainData) -> None:
    started: list[int] = []

    def progress(seed: int, p: lenet_cpp.Progress) -> None:
        started.append(seed)
        raise ValueError(f"stop at seed {seed}")

    with pytest.raises(ValueError, match="stop at seed"):
        train_seeds(data, HP, [0, 1, 2], concurrent_runs=2, progress=progress, progress_every=1)
    assert 2 not in started
    with pytest.raises(ValueError, match="stop at seed 0"):
        train_seeds(data, HP, [0, 1], concurrent_runs=1, progress=progress, progress_every=1)


# ---------------------------------------------------------------- one job, from the data files


def _spec(data_dir: Path, out: Path, **changes: object) -> JobSpec:
    fields = {
        "hyperparameters": Hyperparameters(learning_rate=0.05, batch_size=64, epochs=1),
        "seeds": [0],
        "data_dir": data_dir,
        "out_dir": out,
        "threads": 1,
        "train_subset": 128,
        "test_subset": 64,
    }
    return JobSpec(**{**fields, **changes})  # type: ignore[arg-type]


def test_run_job_verifies_the_data_first(synthetic_mnist_dir: Path, tmp_path: Path) -> None:
    manifest = write_manifest(synthetic_mnist_dir, verified=False)
    expected = json.loads(manifest.read_text())["md5"]
    record = run_job(_spec(synthetic_mnist_dir, tmp_path / "ok", expected_md5=expected))
    assert record["data"]["md5"] == expected and record["data"]["train_size"] == 128

    victim = synthetic_mnist_dir / MNIST_FILES[3]
    blob = bytearray(victim.read_bytes())
    blob[-1] ^= 1
    victim.write_bytes(bytes(blob))
    out = tmp_path / "bad"
    spec = _spec(synthetic_mnist_dir, out, expected_md5=expected, md5_source="in the manifest")
    with pytest.raises(DataIntegrityError) as error:
        run_job(spec)
    message = str(error.value)
    assert str(victim) in message and expected[MNIST_FILES[3]] in message
    assert "in the manifest" in message and "lenet-cpp download" in message
    assert not out.exists()  # nothing trained, nothing written

    victim.unlink()
    with pytest.raises(DataIntegrityError, match="is missing"):
        run_job(spec)


def test_run_job_rejects_a_subset_larger_than_the_data(
    synthetic_mnist_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="train_subset=100000"):
        run_job(_spec(synthetic_mnist_dir, tmp_path / "out", train_subset=100_000))


def test_manifest_round_trip_and_what_a_mismatch_reports(
    synthetic_mnist_dir: Path, synthetic_md5: dict[str, str], tmp_path: Path
) -> None:
    """The data rule's manifest holds every MNIST file's MD5 and whether it was checked against
    the official sums; only a lenet-cpp manifest is accepted; a mismatch names both sums."""
    path = write_manifest(synthetic_mnist_dir, verified=True)
    assert path == synthetic_mnist_dir / DATA_MANIFEST
    assert read_manifest(path) == {name: synthetic_md5[name] for name in MNIST_FILES}
    assert json.loads(path.read_text())["verified_against_official_md5"] is True
    unverified = write_manifest(synthetic_mnist_dir, verified=False)
    assert json.loads(unverified.read_text())["verified_against_official_md5"] is False
    for foreign in ('{"format": "other", "md5": {}}', "[1, 2]"):
        other = tmp_path / "other.json"
        other.write_text(foreign)
        with pytest.raises(ValueError, match="not a data manifest written by lenet-cpp"):
            read_manifest(other)

    name = MNIST_FILES[0]
    wrong = {name: "0" * 32}
    with pytest.raises(DataIntegrityError) as error:
        verify_files(synthetic_mnist_dir, wrong, source="a test")
    assert (error.value.path, error.value.expected, error.value.found) == (
        synthetic_mnist_dir / name,
        "0" * 32,
        synthetic_md5[name],
    )
    assert f"has MD5 {synthetic_md5[name]}, expected MD5 {'0' * 32} (a test)" in str(error.value)
    assert "is missing" not in str(error.value) and str(synthetic_mnist_dir) in str(error.value)
    assert verify_files(synthetic_mnist_dir, {name: synthetic_md5[name]}, source="x") == {
        name: synthetic_md5[name]
    }
