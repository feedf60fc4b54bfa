"""SMOKE BUILD of the conda package with rattler-build, offline (marker ``conda``).

This is a smoke build, not a conda-forge build: the local channel holds stub packages that
borrow this machine's Python, virtual environment (torch 2.14.1 and friends) and gcc, see
``tests/conda/smoke_build.py``. It proves that recipe/recipe.yaml builds from the working tree,
that rattler-build's test phase passes (imports of ``lenet_cpp._C``, pip check, the training
script, package_contents) and that the ``.conda`` installs with py-rattler into a fresh prefix
where ``lenet_cpp._C`` imports from that prefix and trains. It does not prove that conda-forge's
pytorch, compilers and sysroot resolve or link: that needs a conda channel.

It compiles the extension once (2-4 minutes on two cores), so pyproject.toml's pytest options
deselect it (``-m 'not conda'``); ``pytest -m conda`` runs it (as .ci/run does). Any network
access fails: proxies point at a dead port.
"""

from __future__ import annotations

import importlib.util
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


@pytest.mark.usefixtures("offline_env")
def test_smoke_build_installs_and_trains(tmp_path: Path) -> None:
    smoke = _load_smoke_module()
    work = tmp_path / "smoke"
    result = smoke.run_smoke_build(work)

    package = rattler_build.Package.from_file(result.package)
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert package.name == "lenet-cpp"
    assert re.fullmatch(rf"cpu_{python_tag}h[0-9a-f]{{7}}_0", package.build_string)
    compiled = r"lib/python3\.\d+/site-packages/lenet_cpp/_C\.cpython-[^/]+\.so"
    assert any(re.fullmatch(compiled, path) for path in package.files), package.files
    assert "pytorch ==2.14.1 cpu*" in package.depends

    log = "\n".join(result.build_log)  # rattler-build's own test phase
    assert re.search(
        r'files: "lib/python\*/site-packages/lenet_cpp/_C\.cpython-\*\.so" matched', log
    )
    assert "python imports test passed" in log
    assert "pip check passed" in log
    assert re.search(r"\+ python test_train\.py\n.*: 4 steps, loss", log)
    assert "usage: lenet-cpp" in log  # the entry point runs
    assert "all tests passed" in log

    assert f"lenet_cpp._C imported from {result.prefix}" in result.check_output
    assert re.search(r": 4 steps, loss \d", result.check_output), result.check_output
    shutil.rmtree(work)  # ~30 MB; kept (in pytest's tmp dirs) only when the test fails
