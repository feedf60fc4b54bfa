"""The fused CPU path gives the same bits on every CPU: builds pinned to other instruction sets,
another compiler, and the library switches that change libtorch's, MKL's and glibc's code paths
all reproduce the default build's losses, weights, predictions and evaluation exactly.

Each build compiles the extension into a scratch copy of the sources (a few minutes on 2 cores),
so these tests are marked slow; .ci/run runs them (LENET_REQUIRE_CLANG=1 makes a missing clang++
a failure there instead of a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from portability import LIBRARY_SWITCHES

from lenet_cpp.provenance import cpu_flags

ROOT = Path(__file__).resolve().parent.parent

# Trains, evaluates and predicts with the fused kernels (tanh and avg pooling exercise the own
# exp/tanh/log; several threads exercise the shard order; lenet5-1998 its own layers) and
# prints the SHA-256 of every result.
PROBE = """
import hashlib, json, sys, torch, lenet_cpp, lenet_cpp._C
from lenet_cpp.synthetic import make_synthetic_mnist

def digest(*tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]

train, test = make_synthetic_mnist(300, seed=1), make_synthetic_mnist(100, seed=2)
out = {"module": lenet_cpp._C.__file__}
for activation, pooling, architecture, output in (
    ("relu", "max", "lenet5", "softmax"), ("tanh", "avg", "lenet5", "softmax"),
    ("relu", "max", "lenet5-1998", "softmax"), ("relu", "max", "lenet5-1998", "rbf"),
):
    r = lenet_cpp.train(*train, 2, 0.05 if output == "softmax" else 0.002, batch_size=50,
                        momentum=0.9, weight_decay=1e-4, activation=activation, pooling=pooling,
                        seed=7, threads=2, test_data=test[0], test_targets=test[1],
                        architecture=architecture, output=output)
    m = r.model
    ev = m.evaluate(*test)
    key = f"{activation}-{pooling}-{architecture}-{output}"
    out[key] = {
        "losses": digest(r.step_losses),
        "weights": digest(*m.state_dict().values()),
        "predictions": digest(m.predict(test[0])),
        "logits": digest(m(test[0])),
        "evaluation": [ev["loss"], ev["accuracy"], r.test_loss, r.test_accuracy, r.train_loss],
    }
print(json.dumps(out))
"""


def probe(package_root: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    run_env = {**os.environ, "PYTHONPATH": str(package_root), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=run_env,
        cwd=package_root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert Path(report.pop("module")).is_relative_to(package_root)
    return report


def build_variant(tmp_path: Path, env: dict[str, str]) -> Path:
    """The extension built from a scratch copy of the sources with the given build variables."""
    root = tmp_path / "src"
    for name in ("cpp", "lenet_cpp"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("_C*.so"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    built = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=root,
        env={**os.environ, "MAX_JOBS": "2", **env},
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def default_build() -> dict[str, object]:
    return probe(ROOT)


#: The probe's digests as recorded on an Intel Xeon with AVX-512 and by every build variant
#: below (x86-64 baseline, whose FMAs go through libm; AVX2 with FMA; -march=native; clang)
#: since the kernels' product-sums became explicit FMAs. Any machine must print exactly these:
#: a change here changes every published number, so it needs a reason in the commit that
#: makes it.
RECORDED_DIGESTS = {
    "relu-max-lenet5-softmax": {
        "losses": "3ed1bcd8a29b5ece",
        "weights": "324f430405a501bd",
        "predictions": "d503abd69091bb11",
        "logits": "f9b61c74d15a99e1",
    },
    "tanh-avg-lenet5-softmax": {
        "losses": "5283609a46ee4edc",
        "weights": "7c47a7992c1019a5",
        "predictions": "cde3c10778e8f33f",
        "logits": "70b28ee53598d78b",
    },
    "relu-max-lenet5-1998-softmax": {
        "losses": "00dc4cdbba728db6",
        "weights": "41cdf7258a3721c2",
        "predictions": "f792c7a9d04d3480",
        "logits": "bcdd1db6eaecb2d6",
    },
    "relu-max-lenet5-1998-rbf": {
        "losses": "c7e594f5757c12b0",
        "weights": "e954f64bdca736e2",
        "predictions": "cc006a4e1fdfb69d",
        "logits": "bde724832cc52c58",
    },
}


def test_bits_match_those_recorded_on_other_cpus(default_build):
    digests = {
        key: {name: value for name, value in entry.items() if name != "evaluation"}
        for key, entry in default_build.items()
        if isinstance(entry, dict)
    }
    assert digests == RECORDED_DIGESTS


def test_library_switches_change_nothing(default_build):
    assert probe(ROOT, LIBRARY_SWITCHES) == default_build


@pytest.mark.parametrize("threads", ["1", "3"])
def test_process_thread_settings_change_nothing(default_build, threads):
    assert probe(ROOT, {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}) == default_build


@pytest.mark.slow
@pytest.mark.parametrize("isa", ["baseline", "avx2", "native"])
def test_builds_pinned_to_one_instruction_set_match(tmp_path, default_build, isa):
    """baseline: x86-64's SSE2 only (libm's fmaf for every FMA); avx2: 8-lane vectors and the
    FMA instruction; native: this CPU's widest vectors (AVX2 or AVX-512)."""
    if isa == "avx2" and not {"avx2", "fma"} <= set(cpu_flags() or ()):
        pytest.skip("this CPU has no AVX2 and FMA")
    assert probe(build_variant(tmp_path, {"LENET_CPP_ISA": isa})) == default_build


@pytest.mark.slow
def test_clang_build_matches(tmp_path, default_build):
    if shutil.which("clang++") is None:
        if os.environ.get("LENET_REQUIRE_CLANG") == "1":
            pytest.fail("clang++ is required here (LENET_REQUIRE_CLANG=1) but not installed")
        pytest.skip("clang++ is not installed (apt-get install clang)")
    root = build_variant(tmp_path, {"CC": "clang", "CXX": "clang++", "LDSHARED": "clang++ -shared"})
    assert probe(root) == default_build
    nm = subprocess.run(
        ["nm", "-D", "--undefined-only", *root.glob("lenet_cpp/_C*.so")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sgemm" not in nm.stdout
    assert "MKL" not in nm.stdout


def test_extension_needs_no_blas():
    """No BLAS symbol and no weak-symbol tricks: the products are our own loops."""
    (module,) = (ROOT / "lenet_cpp").glob("_C*.so")
    undefined = subprocess.run(
        ["nm", "-D", "--undefined-only", str(module)], capture_output=True, text=True, check=True
    ).stdout
    assert "sgemm" not in undefined
    assert "MKL" not in undefined
    weak = subprocess.run(
        ["nm", "-D", str(module)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert not [line for line in weak if " w " in line and ("MKL" in line or "gemm" in line)]
