# Shared definitions: config validation, paths, the grid. Functions live here only.
import itertools
import os
import re
import shlex
import sys
import sysconfig
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

# Conda environment of every rule (used with --software-deployment-method conda).
ENV = "../environment.yml"
# The Python of the shell rules: the environment's own under conda, else the one running us.
USES_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = "python" if USES_CONDA else sys.executable


def workdir_relative(path):
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


SOURCE_DIR = Path(config["source_dir"] or workflow.basedir).resolve()
SOURCE = workdir_relative(SOURCE_DIR)
# A source checkout (cpp/ beside the Snakefile, or config source_dir) builds lenet_cpp._C in
# place and its jobs import lenet_cpp from there. The workflow shipped inside the installed
# package (lenet_cpp/workflow, run by `lenet-cpp pipeline`) builds nothing: its jobs import the
# installed lenet_cpp and its compiled module.
BUILDS_EXTENSION = (SOURCE_DIR / "cpp").is_dir()
# Where the jobs import lenet_cpp from ("" = the installed package).
IMPORT_DIR = str(SOURCE_DIR) if BUILDS_EXTENSION else ""
PACKAGE_DIR = SOURCE_DIR / "lenet_cpp" if BUILDS_EXTENSION else Path(workflow.basedir).parent


def source_file(relative):
    """A file of the source checkout, as Snakemake should name it."""
    return os.path.normpath(os.path.join(SOURCE, relative))


def job_python_version():
    """``3.11``: the Python the jobs run. Under --sdm conda that is environment.yml's (its
    ``python X.Y.*`` pin), which need not be the one running Snakemake."""
    if not USES_CONDA:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    environment = Path(workflow.basedir, "environment.yml").read_text()
    match = re.search(r"^\s*-\s*python\s+(\d+)\.(\d+)\.\*\s*$", environment, re.MULTILINE)
    if match is None:
        raise WorkflowError("environment.yml must pin python as `python X.Y.*`")
    return f"{match[1]}.{match[2]}"


def extension_suffix():
    """EXT_SUFFIX (``.cpython-311-x86_64-linux-gnu.so``) of the Python the jobs run."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    tag = job_python_version().replace(".", "")
    return re.sub(r"cpython-\d+", f"cpython-{tag}", suffix)


# The compiled module that build_extension writes (source checkout) or that the installed
# package carries, and that every job imports.
if BUILDS_EXTENSION:
    EXTENSION = source_file(f"lenet_cpp/_C{extension_suffix()}")
else:
    EXTENSION = str(PACKAGE_DIR / f"_C{extension_suffix()}")
CPP_SOURCES = sorted(
    source_file(os.path.relpath(p, SOURCE_DIR))
    for pattern in ("cpp/*.h", "cpp/*.cpp")
    for p in SOURCE_DIR.glob(pattern)
)


def package_modules(*names):
    """Python modules of lenet_cpp a job runs (so that editing one reruns the job)."""
    if BUILDS_EXTENSION:
        return [source_file(f"lenet_cpp/{name}.py") for name in names]
    return [str(PACKAGE_DIR / f"{name}.py") for name in names]


DATA_DIR = config["data"]["dir"].rstrip("/")
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST = [f"{DATA_DIR}/{name}" for name in MNIST_FILES]



def download_options(data):
    """Command-line options of `lenet_cpp download` for the config's data section."""
    options = [] if data["verify"] else ["--no-verify"]
    if data["source"]:
        options += ["--source", data["source"]]
    return shlex.join(options)


RESULTS = config["results_dir"].rstrip("/")
SEEDS = config["seeds"]
GRID_KEYS = ("activation", "pooling", "learning_rate", "batch_size", "momentum", "weight_decay")


def setting_name(point):
    """Same rule as lenet_cpp.runner.Hyperparameters.name (the train job checks they agree)."""
    return (
        f"{point['activation']}_{point['pooling']}_lr{point['learning_rate']:g}"
        f"_bs{point['batch_size']}_mom{point['momentum']:g}_wd{point['weight_decay']:g}"
    )


def grid_settings(grid, epochs):
    """Setting name -> hyperparameters, for every combination of the grid's values."""
    settings = {}
    for values in itertools.product(*(grid[key] for key in GRID_KEYS)):
        point = dict(zip(GRID_KEYS, values))
        settings[setting_name(point)] = {**point, "epochs": epochs}
    return settings


SETTINGS = grid_settings(config["grid"], config["epochs"])


def run_dir(setting):
    return f"{RESULTS}/runs/{setting}"


def seed_files(name):
    """One file per seed of a setting's run directory (``{setting}`` stays a wildcard)."""
    return [f"{RESULTS}/runs/{{setting}}/seed{seed}/{name}" for seed in SEEDS]


def all_seed_files(name):
    """One file per seed of every setting."""
    return [pattern.format(setting=s) for s in SETTINGS for pattern in seed_files(name)]


def all_settings(pattern):
    """``pattern`` (with a ``{setting}`` wildcard) for every setting of the grid."""
    return [pattern.format(setting=name) for name in SETTINGS]


FORMATS = ("png", "pdf")


def figure_targets():
    """Every figure and table of the workflow (the default target)."""
    per_setting = [
        f"{RESULTS}/figures/{name}/{figure}.{fmt}"
        for name in SETTINGS
        for figure in ("predictions", "loss")
        for fmt in FORMATS
    ]
    grid = [
        f"{RESULTS}/grid/{figure}.{fmt}"
        for figure in ("loss_curves", "confusion_best")
        for fmt in FORMATS
    ]
    return [*per_setting, *grid, f"{RESULTS}/grid/summary.csv"]
