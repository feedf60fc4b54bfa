"""Offline smoke build of the lenet-cpp conda package with rattler-build.

Conda channels cannot be reached here, so this builds ``recipe/recipe.yaml`` against a local
channel of *stub* packages. Each stub carries the name and version of a real dependency
(python, pip, setuptools, pybind11, pytorch, torchvision, numpy, matplotlib-base, tqdm, the
compilers and the sysroot) but no payload of its own:

- the ``python`` stub is a venv-style prefix layout (``bin/python3.X`` pointing at this
  machine's interpreter, ``pyvenv.cfg``) whose site-packages borrows this machine's virtual
  environment through a ``.pth`` file (everything except the editable lenet-cpp install);
- the compiler stubs point ``CC``/``CXX`` at this machine's gcc/g++ through activation scripts;
- every other stub is empty: the solver sees the real version, the files come from the venv.

What it proves: the recipe renders, rattler-build runs the build script (pip compiles
``lenet_cpp._C``), packages it and runs the recipe's tests (imports, pip check, the training
script, package_contents) without a network; the built ``.conda`` then installs with py-rattler
into a fresh prefix where ``lenet_cpp._C`` imports from that prefix and trains. What it does not
prove: that conda-forge's pytorch, compilers and sysroot resolve and link (that needs a channel).

Usable from the test (``tests/test_conda_build.py``) or by hand:
``python tests/conda/smoke_build.py WORK_DIR`` (WORK_DIR must not exist; it is kept).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rattler_build import RenderedVariant

LOG = logging.getLogger("lenet_cpp.smoke_build")

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE = REPO_ROOT / "recipe" / "recipe.yaml"
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
    "pybind11": "pybind11",
    "pytorch": "torch",
    "torchvision": "torchvision",
    "numpy": "numpy",
    "matplotlib-base": "matplotlib",
    "tqdm": "tqdm",
}


@dataclass(frozen=True)
class Stub:
    """One stand-in package: name, version, build string and the files it carries."""

    name: str
    version: str
    build: str = STUB_BUILD
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    symlinks: dict[str, str] = field(default_factory=dict)  # relative path -> target


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
    """Variant keys for the one variant this machine can build: cpu, its Python, its gcc."""
    gcc_major = tools.gcc_version.split(".")[0]
    return {
        "python": [tools.python_short],
        "cuda_compiler_version": ["None"],
        "c_compiler_version": [gcc_major],
        "cxx_compiler_version": [gcc_major],
        "c_stdlib_version": [tools.glibc_version],
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
        build = "cpu_" + STUB_BUILD if conda_name == "pytorch" else STUB_BUILD
        stubs.append(
            Stub(conda_name, borrowed_version(distribution), build, files=_note(conda_name))
        )
    return stubs


def write_stub(stub: Stub, staging: Path, subdir_dir: Path) -> Path:
    """Assemble one stub into a .conda file under the channel's subdir."""
    from rattler_build import assemble_package

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
    )
    return output.path


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


def render_smoke_variant(tools: Toolchain) -> RenderedVariant:
    """Render recipe.yaml for the one variant this machine can build (cpu, its Python, its gcc)."""
    from rattler_build import PlatformConfig, RenderConfig, Stage0Recipe, VariantConfig

    variants = VariantConfig.from_file(RECIPE.parent / "variants.yaml").merge(
        VariantConfig(variant_overrides(tools))
    )
    render_config = RenderConfig(platform=PlatformConfig(target_platform=SUBDIR, experimental=True))
    rendered = Stage0Recipe.from_file(RECIPE).render(variants, render_config)
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


def build_package(tools: Toolchain, channel: Path, output: Path) -> tuple[Path, list[str]]:
    """Build, package and test (recipe tests) the cpu variant against the stub channel only.

    Returns the package and rattler-build's log (also written to ``output/smoke-build.log``).
    """
    from rattler_build import ToolConfiguration

    variant = render_smoke_variant(tools)
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


def run_smoke_build(work: Path) -> SmokeResult:
    """Stub channel -> rattler-build (build + recipe tests) -> fresh prefix -> import and train.

    ``work`` must be an empty or missing directory; everything is written below it (set
    ``RATTLER_CACHE_DIR`` below it too, so the stubs never reach the user's package cache).
    """
    work.mkdir(parents=True, exist_ok=True)
    tools = detect_toolchain()
    LOG.info("toolchain: %s", tools)
    channel = make_stub_channel(tools, work)
    package, build_log = build_package(tools, channel, work / "output")
    prefix = work / "fresh-prefix"
    install_into_fresh_prefix(package, channel, prefix, work / "install-cache")
    scratch = work / "scratch"
    scratch.mkdir()
    return SmokeResult(package, prefix, build_log, check_installed(prefix, scratch))


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
