"""Offline smoke build of the lenet-cpp conda package with rattler-build, from the sdist.

``make sdist``'s command builds the sdist of the working tree; ``recipe/`` is copied with only
its ``source`` (url, sha256) pointed at that file, so the recipe under test is the one a
feedstock would hold, rendered and built without ``--experimental``. Conda channels cannot be
reached here, so it builds against a local channel of *stub* packages. Each stub carries the
name and version of a real dependency (python, pip, setuptools, wheel, pybind11, pytorch,
torchvision, numpy, matplotlib-base, tqdm, snakemake-minimal, pyyaml, jsonschema, the compilers
and the sysroot) but no payload of its own:

- the ``python`` stub is a venv-style prefix layout (``bin/python3.X`` pointing at this
  machine's interpreter, ``pyvenv.cfg``) whose site-packages borrows this machine's virtual
  environment through a ``.pth`` file (everything except the editable lenet-cpp install);
- the compiler stubs point ``CC``/``CXX`` at this machine's gcc/g++ through activation scripts;
- the ``pytorch`` stub (build ``cpu_...``) carries run_exports like conda-forge's pytorch
  (``pytorch >=X.Y.Z,<X.(Y+1).0a0``), so the package's run pin comes from there, as on a feedstock;
- every other stub is empty: the solver sees the real version, the files come from the venv.

What it proves: the recipe renders, rattler-build runs the build script (pip compiles
``lenet_cpp._C``), packages it and runs the recipe's tests (imports, pip check, the training
script, package_contents) without a network; the built ``.conda`` then installs with py-rattler
into a fresh prefix where ``lenet_cpp._C`` imports from that prefix and trains, and where
``lenet-cpp pipeline`` runs the packaged workflow from an empty directory (``run_pipeline``).
What it does not prove: that conda-forge's pytorch, compilers and sysroot resolve and link
(that needs a channel).

Usable from the test (``tests/test_conda_build.py``) or by hand:
``python tests/conda/smoke_build.py WORK_DIR`` (WORK_DIR must not exist; it is kept).
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rattler_build import RenderedVariant

LOG = logging.getLogger("lenet_cpp.smoke_build")

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipe" / "recipe.yaml"
GLOBAL_PINNING = Path(__file__).resolve().parent / "global_pinning.yaml"
TEST_CONFIG = "config/test.yaml"  # of the packaged workflow
SUBDIR = "linux-64"
STUB_BUILD = "smoke_stub"
STUB_NOTE = "share/lenet-cpp-smoke-stubs"
# entries of the borrowed site-packages that must not leak into the stub prefixes: the
# editable install of this source tree would otherwise shadow the packaged lenet_cpp
EXCLUDED_SITE_ENTRIES = re.compile(r"^(__editable__|lenet_cpp)", re.IGNORECASE)
# conda name -> distribution whose installed version the stub carries
BORROWED_DISTRIBUTIONS = {
    "pip": "pip",
    "setuptools": "setuptools",
    "wheel": "wheel",
    "pybind11": "pybind11",
    "pytorch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "matplotlib-base": "matplotlib",
    "tqdm": "tqdm",
    "snakemake-minimal": "snakemake",
    "pyyaml": "PyYAML",
    "jsonschema": "jsonschema",
}


@dataclass(frozen=True)
class Stub:
    """One stand-in package: name, version, build string and the files it carries."""

    name: str
    version: str
    build: str = STUB_BUILD
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    symlinks: dict[str, str] = field(default_factory=dict)  # relative path -> target
    run_exports: tuple[str, ...] = ()  # weak run_exports, as info/run_exports.json


@dataclass(frozen=True)
class Toolchain:
    """What this machine provides and the stubs stand in for."""

    python_version: str  # e.g. 3.11.7
    base_python: Path  # the interpreter behind the venv
    site_packages: Path  # the venv's site-packages that the stubs borrow
    gcc: Path
    gxx: Path
    gcc_version: str  # e.g. 12.2.0
    glibc_version: str  # e.g. 2.36

    @property
    def python_short(self) -> str:
        return ".".join(self.python_version.split(".")[:2])


@dataclass(frozen=True)
class SmokeResult:
    """Where the smoke build left its outputs."""

    package: Path
    prefix: Path
    build_log: list[str]  # rattler-build's log: build script, packaging, recipe tests
    check_output: str  # what the import + training check printed in the fresh prefix
    sdist: Path
    timings: dict[str, float]  # seconds per step


def detect_toolchain() -> Toolchain:
    """Describe the interpreter, venv and compilers running this process."""
    gcc = shutil.which("gcc")
    gxx = shutil.which("g++")
    if gcc is None or gxx is None:
        raise RuntimeError("the smoke build borrows this machine's gcc and g++; none on PATH")
    gcc_version = subprocess.run(
        [gcc, "-dumpfullversion"], check=True, capture_output=True, text=True
    ).stdout.strip()
    libc_name, glibc_version = platform.libc_ver()
    if libc_name != "glibc":
        raise RuntimeError(f"the smoke build needs glibc, found {libc_name!r}")
    return Toolchain(
        python_version=platform.python_version(),
        base_python=Path(
            sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}"
        ),
        site_packages=Path(sysconfig.get_paths()["purelib"]),
        gcc=Path(gcc),
        gxx=Path(gxx),
        gcc_version=gcc_version,
        glibc_version=glibc_version,
    )


def variant_overrides(tools: Toolchain) -> dict[str, list[str]]:
    """Variant keys for the one variant this machine can build: its Python, gcc, glibc, torch."""
    gcc_major = tools.gcc_version.split(".")[0]
    torch_minor = ".".join(borrowed_version("torch").split(".")[:2])
    return {
        "python": [tools.python_short],
        "c_compiler_version": [gcc_major],
        "cxx_compiler_version": [gcc_major],
        "c_stdlib_version": [tools.glibc_version],
        "pytorch": [torch_minor],
    }


def make_borrowed_site(tools: Toolchain, target: Path) -> Path:
    """Mirror the venv's site-packages as symlinks, minus the editable lenet-cpp install."""
    target.mkdir(parents=True)
    for entry in sorted(tools.site_packages.iterdir()):
        if not EXCLUDED_SITE_ENTRIES.match(entry.name):
            (target / entry.name).symlink_to(entry)
    return target


def _note(name: str) -> dict[str, str]:
    text = (
        f"Stub of {name} for the offline smoke build of lenet-cpp: no payload, "
        "it stands in for the real conda package and borrows this machine's toolchain.\n"
    )
    return {f"{STUB_NOTE}/{name}.txt": text}


def python_stub(tools: Toolchain, borrowed_site: Path) -> Stub:
    """A venv-style python: this machine's interpreter, site-packages borrowing the venv."""
    short = tools.python_short
    pyvenv = (
        f"home = {tools.base_python.parent}\n"
        "include-system-site-packages = false\n"
        f"version = {tools.python_version}\n"
    )
    pth = f"import site; site.addsitedir({str(borrowed_site)!r})\n"
    files = {
        "pyvenv.cfg": pyvenv,
        f"lib/python{short}/site-packages/zz_lenet_smoke_borrowed.pth": pth,
        **_note("python"),
    }
    symlinks = {
        f"bin/python{short}": str(tools.base_python),
        "bin/python3": f"python{short}",
        "bin/python": f"python{short}",
    }
    return Stub("python", tools.python_version, files=files, symlinks=symlinks)


def compiler_stub(name: str, version: str, variable: str, executable: Path) -> Stub:
    """A compiler package whose activation script points at this machine's compiler."""
    script = f'export {variable}="{executable}"\n'
    files = {f"etc/conda/activate.d/{name}_smoke_stub.sh": script, **_note(name)}
    return Stub(name, version, files=files)


def borrowed_version(distribution: str) -> str:
    """The installed version of a distribution, without a local label (2.14.1+cu130 -> 2.14.1)."""
    return importlib.metadata.version(distribution).split("+")[0]


def all_stubs(tools: Toolchain, borrowed_site: Path) -> list[Stub]:
    """Every stub the cpu variant needs for its build, host, run and test environments."""
    stubs = [
        python_stub(tools, borrowed_site),
        compiler_stub(f"gcc_{SUBDIR}", tools.gcc_version, "CC", tools.gcc),
        compiler_stub(f"gxx_{SUBDIR}", tools.gcc_version, "CXX", tools.gxx),
        Stub(f"sysroot_{SUBDIR}", tools.glibc_version, files=_note(f"sysroot_{SUBDIR}")),
    ]
    for conda_name, distribution in BORROWED_DISTRIBUTIONS.items():
        version = borrowed_version(distribution)
        if conda_name == "pytorch":
            stubs.append(pytorch_stub(version))
        else:
            stubs.append(Stub(conda_name, version, files=_note(conda_name)))
    return stubs


def pytorch_stub(version: str) -> Stub:
    """The cpu pytorch, with conda-forge pytorch's run_exports (same major.minor)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    pin = f"pytorch >={version},<{major}.{minor + 1}.0a0"
    return Stub("pytorch", version, "cpu_" + STUB_BUILD, files=_note("pytorch"), run_exports=(pin,))


def add_run_exports(package: Path, run_exports: tuple[str, ...]) -> None:
    """Write ``info/run_exports.json`` into a ``.tar.bz2`` package (assemble_package has no
    parameter for it); the channel index and rattler-build read it from there."""
    with tarfile.open(package, "r:bz2") as archive:
        members = [(m, archive.extractfile(m) if m.isfile() else None) for m in archive]
        contents = [(m, None if f is None else f.read()) for m, f in members]
    data = json.dumps({"weak": list(run_exports)}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member, payload in contents:
            archive.addfile(member, None if payload is None else io.BytesIO(payload))
        info = tarfile.TarInfo("info/run_exports.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    package.write_bytes(bz2.compress(buffer.getvalue(), compresslevel=1))


def write_stub(stub: Stub, staging: Path, subdir_dir: Path) -> Path:
    """Assemble one stub into a .conda file under the channel's subdir."""
    from rattler_build import ArchiveType, assemble_package

    root = staging / stub.name
    for relative, text in stub.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for relative, target in stub.symlinks.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    output = assemble_package(
        name=stub.name,
        version=stub.version,
        target_platform=SUBDIR,
        build_string=stub.build,
        output_dir=subdir_dir,
        files_dir=root,
        summary=f"smoke-build stub of {stub.name} (borrows this machine's toolchain)",
        compression_level=1,
        detect_prefix=False,
        archive_type=ArchiveType.TarBz2 if stub.run_exports else ArchiveType.Conda,
    )
    if stub.run_exports:
        add_run_exports(Path(output.path), stub.run_exports)
    return Path(output.path)


def make_stub_channel(tools: Toolchain, work: Path) -> Path:
    """Create and index a local channel holding all stubs; return its directory."""
    from rattler.index import index_fs

    channel = work / "stub-channel"
    subdir_dir = channel / SUBDIR
    subdir_dir.mkdir(parents=True)
    (channel / "noarch").mkdir()
    borrowed = make_borrowed_site(tools, work / "borrowed-site-packages")
    for stub in all_stubs(tools, borrowed):
        write_stub(stub, work / "stub-staging", subdir_dir)
    asyncio.run(index_fs(channel, write_zst=False, write_shards=False))
    return channel


def build_sdist(output: Path) -> Path:
    """The sdist of the working tree, built as ``make sdist`` does; returns its path."""
    output.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(output)]
    subprocess.run([*command, str(REPO_ROOT)], check=True, capture_output=True, text=True)
    (sdist,) = output.glob("lenet_cpp-*.tar.gz")
    return sdist


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def local_recipe(sdist: Path, target: Path) -> Path:
    """recipe/ copied to ``target`` with its source (url, sha256) pointed at ``sdist``."""
    shutil.copytree(RECIPE.parent, target)
    recipe = target / RECIPE.name
    text = recipe.read_text()
    for key, value in (("url", sdist.resolve().as_uri()), ("sha256", sha256_of(sdist))):
        text, count = re.subn(rf"^(  {key}: ).*$", rf"\g<1>{value}", text, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"recipe.yaml should have one source {key}, found {count}")
    recipe.write_text(text)
    return recipe


def render_smoke_variant(tools: Toolchain, recipe: Path = RECIPE) -> RenderedVariant:
    """Render the recipe for the one variant this machine builds, without experimental
    features, as conda-forge's build scripts do."""
    from rattler_build import PlatformConfig, RenderConfig, Stage0Recipe, VariantConfig

    variants = (
        VariantConfig.from_file(recipe.parent / "variants.yaml")
        .merge(VariantConfig.from_file(GLOBAL_PINNING))
        .merge(VariantConfig(variant_overrides(tools)))
    )
    render_config = RenderConfig(
        platform=PlatformConfig(target_platform=SUBDIR, experimental=False)
    )
    rendered = Stage0Recipe.from_file(recipe).render(variants, render_config)
    if len(rendered) != 1:
        raise RuntimeError(f"expected one smoke variant, rendered {len(rendered)}")
    return rendered[0]


class LogCollector:
    """rattler-build progress callback that keeps every log line (written out on failure too)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_download_start(self, event: object) -> None:
        """Downloads cannot happen here (file:// channels only); nothing to keep."""

    def on_download_progress(self, event: object) -> None:
        """See on_download_start."""

    def on_download_complete(self, event: object) -> None:
        """See on_download_start."""

    def on_build_step(self, event: object) -> None:
        self.lines.append(f"[{getattr(event, 'step_name', '')}] {getattr(event, 'message', '')}")

    def on_log(self, event: object) -> None:
        self.lines.append(str(getattr(event, "message", event)))


def build_package(
    tools: Toolchain, recipe: Path, channel: Path, output: Path
) -> tuple[Path, list[str]]:
    """Build, package and test (recipe tests) the cpu variant against the stub channel only.

    Returns the package and rattler-build's log (also written to ``output/smoke-build.log``).
    """
    from rattler_build import ToolConfiguration

    variant = render_smoke_variant(tools, recipe)
    collector = LogCollector()
    log_file = output / "smoke-build.log"
    output.mkdir(parents=True, exist_ok=True)
    try:
        result = variant.run_build(
            tool_config=ToolConfiguration(test_strategy="native", compression_threads=1),
            output_dir=output,
            channels=[channel.as_uri()],
            progress_callback=collector,
        )
    finally:
        log_file.write_text("\n".join(collector.lines) + "\n")
    LOG.info("rattler-build log: %s", log_file)
    if len(result.packages) != 1:
        raise RuntimeError(f"expected one package, got {result.packages}")
    LOG.info("built %s in %.0f s", result.packages[0].name, result.build_time)
    return Path(result.packages[0]), collector.lines or list(result.log)


async def _solve_and_install(channels: list[str], spec: str, prefix: Path, cache: Path) -> None:
    from rattler import install, solve

    records = await solve(sources=channels, specs=[spec], platforms=[SUBDIR, "noarch"])
    await install(records, target_prefix=prefix, cache_dir=cache, show_progress=False)


def install_into_fresh_prefix(package: Path, channel: Path, prefix: Path, cache: Path) -> None:
    """Install the built package (and its stub dependencies) into a new prefix with py-rattler."""
    from rattler_build import Package

    built = Package.from_file(package)
    spec = f"{built.name} =={built.version} {built.build_string}"
    output_channel = package.parent.parent  # <output>/<subdir>/<file>
    channels = [output_channel.as_uri(), channel.as_uri()]
    asyncio.run(_solve_and_install(channels, spec, prefix, cache))


_CHECK_PREFIX = """
import sys
from pathlib import Path
import torch  # lenet_cpp._C needs libtorch loaded (as lenet_cpp's lazy import does)
import lenet_cpp, lenet_cpp._C
prefix = Path(sys.prefix).resolve()
for module in (lenet_cpp, lenet_cpp._C):
    path = Path(module.__file__).resolve()
    assert path.is_relative_to(prefix), f"{module.__name__} comes from {path}, not {prefix}"
print(f"lenet_cpp._C imported from {lenet_cpp._C.__file__}")
"""


def check_installed(prefix: Path, scratch: Path) -> str:
    """Import lenet_cpp._C from the prefix and train a few steps there; return the output."""
    python = prefix / "bin" / "python"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch)}
    commands = [
        [str(python), "-c", _CHECK_PREFIX],
        [str(python), str(RECIPE.parent / "test_train.py")],
    ]
    outputs = []
    for command in commands:
        done = subprocess.run(
            command, cwd=scratch, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[1:]} failed in {prefix}:\n{done.stdout}{done.stderr}")
        outputs.append(done.stdout)
    return "".join(outputs)


def user_env(bin_dir: Path, home: Path) -> dict[str, str]:
    """A user's environment with only the installed package: its bin/ first on PATH, the
    system's after it, no PYTHONPATH and nothing of the source tree."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {done.returncode}) in {cwd}:\n{output}"
        )
    return output


def run_pipeline(bin_dir: Path, workdir: Path) -> str:
    """From an empty ``workdir``: synthetic MNIST, then ``lenet-cpp pipeline`` on the packaged
    workflow's test configuration. Returns what the commands printed."""
    workdir.mkdir(parents=True)
    env = user_env(bin_dir, workdir.parent / f"{workdir.name}-home")
    lenet = str(bin_dir / "lenet-cpp")
    output = _run(
        [lenet, "synthetic", "data/synthetic-source", "--n-train", "512", "--n-test", "128"],
        workdir,
        env,
    )
    workflow = _run([lenet, "pipeline", "--print-workflow-dir"], workdir, env).strip()
    command = [lenet, "pipeline", "--cores", "2", "--configfile", f"{workflow}/{TEST_CONFIG}"]
    return output + _run(command, workdir, env)


def run_smoke_build(work: Path, *, pipeline: bool = True) -> SmokeResult:
    """sdist -> stub channel -> rattler-build (build + recipe tests) -> fresh prefix -> import
    and train there -> (``pipeline``) the packaged workflow from an empty directory.

    ``work`` must be an empty or missing directory; everything is written below it (set
    ``RATTLER_CACHE_DIR`` below it too, so the stubs never reach the user's package cache).
    """
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.monotonic()

    def lap(step: str) -> None:
        nonlocal start
        timings[step] = round(time.monotonic() - start, 1)
        start = time.monotonic()
        LOG.info("%s: %.0f s", step, timings[step])

    tools = detect_toolchain()
    LOG.info("toolchain: %s", tools)
    sdist = build_sdist(work / "dist")
    recipe = local_recipe(sdist, work / "recipe")
    lap("sdist")
    channel = make_stub_channel(tools, work)
    lap("stub channel")
    package, build_log = build_package(tools, recipe, channel, work / "output")
    lap("rattler-build (build + recipe tests)")
    prefix = work / "fresh-prefix"
    install_into_fresh_prefix(package, channel, prefix, work / "install-cache")
    lap("install into a fresh prefix")
    scratch = work / "scratch"
    scratch.mkdir()
    check_output = check_installed(prefix, scratch)
    lap("import and train in the prefix")
    if pipeline:
        check_output += run_pipeline(prefix / "bin", work / "pipeline-run")
        lap("lenet-cpp pipeline (conda prefix)")
    return SmokeResult(package, prefix, build_log, check_output, sdist, timings)


def pip_install_sdist(sdist: Path, venv: Path, borrowed_site: Path) -> str:
    """``pip install`` the sdist into a fresh venv whose dependencies come from ``borrowed_site``
    (no index, no build isolation: offline); returns pip's output."""
    tools = detect_toolchain()
    subprocess.run([str(tools.base_python), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{tools.python_short}" / "site-packages"
    (site / "zz_lenet_borrowed.pth").write_text(
        f"import site; site.addsitedir({str(borrowed_site)!r})\n"
    )
    # the build needs a compiler and ninja (beside this interpreter); the pipeline run does not
    path = [str(venv / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "/bin")]
    env = {
        "PATH": ":".join(path),
        "HOME": str(venv.parent / "pip-home"),
        "MAX_JOBS": "2",
    }
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index"]
    command += ["--no-build-isolation", "--no-cache-dir", str(sdist)]
    return _run(command, venv.parent, env)


def main(argv: list[str]) -> int:
    """Run the smoke build by hand: ``python tests/conda/smoke_build.py WORK_DIR``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if len(argv) != 1 or Path(argv[0]).exists():
        LOG.error("usage: smoke_build.py WORK_DIR (a directory that does not exist yet)")
        return 2
    work = Path(argv[0]).resolve()
    os.environ.setdefault("RATTLER_CACHE_DIR", str(work / "rattler-cache"))
    result = run_smoke_build(work)
    LOG.info("package: %s\nprefix: %s\n%s", result.package, result.prefix, result.check_output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
