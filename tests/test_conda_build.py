"""End-to-end package tests, offline (marker ``conda``): conda package and pip sdist.

The conda test is a SMOKE BUILD, not a conda-forge build: the local channel holds stub packages
that borrow this machine's Python, virtual environment (torch and friends) and gcc, see
``tests/conda/smoke_build.py``. It builds the sdist (as ``make sdist``), builds recipe/recipe.yaml
from it with rattler-build (no experimental features), passes rattler-build's test phase
(imports of ``lenet_cpp._C``, pip check, the training script, ``lenet-cpp pipeline --help``,
package_contents), installs the ``.conda`` with py-rattler into a fresh prefix, and there, from
an empty directory with only the prefix's bin/ and the system's on PATH, runs ``lenet-cpp
pipeline`` on the packaged test configuration: figures, summary and report. The pip test
installs the same sdist into a fresh venv (no index, no build isolation) and runs the same
command. Neither proves that conda-forge's pytorch, compilers and sysroot resolve or link:
that needs a conda channel.

Each compiles the extension once (4-8 minutes on two busy cores), so pyproject.toml's pytest
options deselect them (``-m 'not conda'``); ``pytest -m conda`` runs them (as .ci/run does).
Any network access fails: proxies point at a dead port.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.conda

rattler_build = pytest.importorskip(
    "rattler_build",
    reason="py-rattler-build is not installed (pip install py-rattler-build py-rattler)",
)
pytest.importorskip("rattler", reason="py-rattler is not installed (pip install py-rattler)")

SMOKE_SCRIPT = Path(__file__).resolve().parent / "conda" / "smoke_build.py"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEAD_PROXY = "http://127.0.0.1:9"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def _load_smoke_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lenet_cpp_conda_smoke_build", SMOKE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep rattler's package cache in tmp_path and make every network access fail."""
    monkeypatch.setenv("RATTLER_CACHE_DIR", str(tmp_path / "rattler-cache"))
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, DEAD_PROXY)
        monkeypatch.setenv(name.upper(), DEAD_PROXY)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


def _check_pipeline_outputs(workdir: Path, package_root: Path, output: str) -> None:
    """The packaged workflow ran in ``workdir`` with the lenet_cpp installed under
    ``package_root``: every figure, the summary and the report, and no trace of the source."""
    from workflow_utils import expected_outputs, load_config

    config = load_config(REPO_ROOT)  # config.yaml + config/test.yaml, as the run used them
    missing = [name for name in expected_outputs(config) if not (workdir / name).is_file()]
    assert not missing, missing
    results = workdir / config["results_dir"]
    for figure in results.rglob("*.png"):
        assert figure.read_bytes().startswith(b"\x89PNG"), figure
    summary = (results / "grid" / "summary.csv").read_text().splitlines()
    assert "setting" in summary[0].split(","), summary[0]
    assert len(summary) == 1 + 2  # two settings in config/test.yaml
    report = (workdir / "report.html").read_text()
    assert "<html" in report.lower() and "summary.csv" in report and "confusion_best.png" in report
    snakefile = re.search(r"Snakefile: (\S+)", output)
    assert snakefile and Path(snakefile[1]).is_relative_to(package_root), output[-3000:]
    assert "build_extension" not in output  # the installed workflow builds nothing
    for metrics in results.glob("runs/*/metrics.json"):
        module = json.loads(metrics.read_text())["provenance"]["environment"]["lenet_cpp_module"]
        assert Path(module).resolve().is_relative_to(package_root.resolve()), module
    logs = "".join(p.read_text(errors="replace") for p in results.rglob("*.log"))
    assert logs  # the jobs' logs (under the results directory)
    assert str(REPO_ROOT) not in logs + output


def _site_packages(prefix: Path) -> Path:
    (site,) = prefix.glob("lib/python3.*/site-packages")
    return site


@pytest.mark.usefixtures("offline_env")
def test_conda_package_from_sdist_installs_trains_and_runs_the_pipeline(tmp_path: Path) -> None:
    smoke = _load_smoke_module()
    work = tmp_path / "smoke"
    result = smoke.run_smoke_build(work)
    print("timings (s):", result.timings)  # shown with -s / in the CI log on failure

    package = rattler_build.Package.from_file(result.package)
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert package.name == "lenet-cpp"
    assert re.fullmatch(rf"cpu_{python_tag}h[0-9a-f]{{7}}_0", package.build_string)
    compiled = r"lib/python3\.\d+/site-packages/lenet_cpp/_C\.cpython-[^/]+\.so"
    assert any(re.fullmatch(compiled, path) for path in package.files), package.files
    assert any(path.endswith("lenet_cpp/workflow/Snakefile") for path in package.files)
    assert "pytorch * cpu*" in package.depends
    torch = smoke.borrowed_version("torch")
    major, minor = (int(part) for part in torch.split(".")[:2])
    # the run pin came from the pytorch stub's run_exports, as from conda-forge's pytorch
    assert f"pytorch >={torch},<{major}.{minor + 1}.0a0" in package.depends, package.depends
    assert result.sdist.name == f"lenet_cpp-{package.version}.tar.gz"

    log = "\n".join(result.build_log)  # rattler-build's own test phase
    assert re.search(
        r'files: "lib/python\*/site-packages/lenet_cpp/_C\.cpython-\*\.so" matched', log
    )
    assert "python imports test passed" in log
    assert "pip check passed" in log
    assert re.search(r"\+ python test_train\.py\n.*: 4 steps, loss", log)
    assert "usage: lenet-cpp" in log  # the entry point runs
    assert "usage: lenet-cpp pipeline" in log
    assert "all tests passed" in log

    assert f"lenet_cpp._C imported from {result.prefix}" in result.check_output
    assert re.search(r": 4 steps, loss \d", result.check_output), result.check_output
    _check_pipeline_outputs(
        work / "pipeline-run", _site_packages(result.prefix) / "lenet_cpp", result.check_output
    )
    shutil.rmtree(work)  # kept (in pytest's tmp dirs) only when the test fails


@pytest.mark.usefixtures("offline_env")
def test_pip_install_of_the_sdist_runs_the_pipeline(tmp_path: Path) -> None:
    smoke = _load_smoke_module()
    tools = smoke.detect_toolchain()
    sdist = smoke.build_sdist(tmp_path / "dist")
    borrowed = smoke.make_borrowed_site(tools, tmp_path / "borrowed-site-packages")
    venv = tmp_path / "venv"
    smoke.pip_install_sdist(sdist, venv, borrowed)
    output = smoke.run_pipeline(venv / "bin", tmp_path / "pipeline-run")
    _check_pipeline_outputs(tmp_path / "pipeline-run", _site_packages(venv) / "lenet_cpp", output)
