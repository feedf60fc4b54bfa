"""README.md's measured numbers come from records/ (tools/readme_numbers.py), never by hand."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_utils import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import readme_numbers

README = (REPO_ROOT / "README.md").read_text()
BLOCKS = list(readme_numbers._BLOCK.finditer(README))


def test_readme_matches_its_records() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "readme_numbers.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_record_has_a_readme_block() -> None:
    assert sorted(m["name"] for m in BLOCKS) == sorted(readme_numbers.RENDERERS)


@pytest.mark.parametrize("name", sorted(readme_numbers.RENDERERS))
def test_each_block_names_machine_and_command(name: str) -> None:
    body = next(m["body"] for m in BLOCKS if m["name"] == name)
    record = json.loads((readme_numbers.RECORDS / f"{name}.json").read_text())
    machine = record.get("machine", record)
    assert machine["cpu"] in body
    assert re.search(r"\bwith(out)? AVX-512\b", body)
    assert f"`{machine['command']}`" in body
    assert "commit " in body


def test_an_edited_number_is_caught() -> None:
    body = next(m for m in BLOCKS if m["name"] == "main-job")
    edited = README[: body.start("body")] + "98.97 % ± 0.09\n" + README[body.end("body") :]
    assert readme_numbers.render(edited) == README


def test_unknown_block_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="numbers:nope has no renderer"):
        readme_numbers.render("<!-- numbers:nope -->\nx\n<!-- /numbers:nope -->", tmp_path)


def _fake_main_job(results: Path) -> None:
    """A summary.csv and metrics.json files holding just what the record reads."""
    rows = [("relu-max", 2, 0.99, 0.001), ("tanh-max", 1, 0.985, 0.002)]
    (results / "grid").mkdir(parents=True)
    with (results / "grid" / "summary.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["setting", "rank", "n_seeds", "epochs", "test_accuracy_mean", "test_accuracy_std"]
        )
        for name, rank, mean, std in rows:
            writer.writerow([name, rank, 3, 5, mean, std])
    for index, (name, *_rest) in enumerate(rows):
        run = results / "runs" / name
        run.mkdir(parents=True)
        metrics = {
            "timing": {"job_wall_time_s": 30.0 + index},
            "provenance": {
                "started_at": f"2026-12-02T10:0{index}:00+00:00",
                "finished_at": f"2026-12-02T10:0{index}:30+00:00",
                "git": {"commit": "0123456789abcdef"},
                "environment": {"cpu": "Test CPU", "avx512": False, "cpu_count": 2},
            },
        }
        (run / "metrics.json").write_text(json.dumps(metrics))


def test_main_job_record_takes_the_best_setting(tmp_path: Path) -> None:
    _fake_main_job(tmp_path)
    record = readme_numbers.main_job_record(tmp_path)
    assert record["best"]["setting"] == "tanh-max"
    assert record["train_jobs_wall_s"] == 61.0
    assert record["train_jobs_started_at"] == "2026-12-02T10:00:00+00:00"
    text = readme_numbers.render_main_job(record)
    assert "Test CPU, without AVX-512 (2 cores)" in text
    assert "98.50 % ± 0.20" in text and "tanh-max" in text and "1.0 min" in text
