# Shared definitions: config validation, the package's layout and grid, code inputs.
# Names, paths and defaults come from lenet_cpp (layout, setting), never spelled out here.
import os
import re
import sys
import sysconfig
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate


validate(config, "../schemas/config.schema.yaml")

# Conda environment of every rule (used with --software-deployment-method conda).
ENV = "../environment.yml"
USES_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


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
IMPORT_DIR = SOURCE if BUILDS_EXTENSION else ""
if BUILDS_EXTENSION:
    sys.path.insert(0, str(SOURCE_DIR))  # the checkout's lenet_cpp (pure Python: no extension)

import lenet_cpp  # pure Python: the extension loads on first use only
from lenet_cpp.datasets import DATASET_NAMES
from lenet_cpp.imports import code_files
from lenet_cpp.layout import (
    DATA_MANIFEST,
    dataset_dir,
    FIGURE_FORMATS,
    EPOCHS_FILE,
    LOSSES_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    PROGRESS_EVERY,
    ResultsLayout,
)
from lenet_cpp.setting import grid_settings


# Defaults that the package owns (the schema documents these keys without a default).
config.setdefault("progress_every", PROGRESS_EVERY)


def source_file(relative):
    """A file of the source checkout, as Snakemake should name it."""
    return str(Path(SOURCE) / relative)


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
PACKAGE_DIR = Path(lenet_cpp.__file__).parent  # the lenet_cpp the jobs import
if BUILDS_EXTENSION:
    EXTENSION = source_file(f"lenet_cpp/_C{extension_suffix()}")
else:
    EXTENSION = str(PACKAGE_DIR / f"_C{extension_suffix()}")
CPP_SOURCES = sorted(
    source_file(p.relative_to(SOURCE_DIR))
    for pattern in ("cpp/*.h", "cpp/*.cpp")
    for p in SOURCE_DIR.glob(pattern)
)


def code_inputs(script):
    """What a rule's script runs: the script and its helper, the package modules it imports
    (transitively, read from the sources) and, when those load it, the compiled extension."""
    scripts = [Path(workflow.basedir) / "scripts" / name for name in (script, "_job.py")]
    files, uses_extension = code_files(scripts[0])
    if BUILDS_EXTENSION:
        modules = [source_file(f.relative_to(SOURCE_DIR)) for f in files]
    else:  # the installed package's modules
        modules = [str(f) for f in files]
    extension = [EXTENSION] if uses_extension else []
    return [workdir_relative(p) for p in scripts] + modules + extension


def manifest(dataset):
    """The data rule's output for a dataset: the MD5 of each verified file (the files are
    not declared outputs, so --forceall never deletes data; see scripts/download_data.py)."""
    return f"{dataset_dir(config['data']['dir'], dataset)}/{DATA_MANIFEST}"


def data_source(dataset):
    """data.source for a dataset: one path for every dataset, or a path per dataset."""
    source = config["data"]["source"]
    return source.get(dataset) if isinstance(source, dict) else source


LAYOUT = ResultsLayout(config["results_dir"], paper_formats=tuple(config["paper"]["formats"]))
SEEDS = config["seeds"]
SETTINGS = grid_settings(
    config["grid"],
    config["epochs"],
    schedule_options=config.get("schedule_options"),
    augment_ranges=config.get("augment_ranges"),
)


def figure_outputs(path_of, caption, labels, **category):
    """One report() output per figure format; ``path_of(fmt)`` gives the file."""
    outputs = []
    for fmt in FIGURE_FORMATS:
        flags = dict(caption=f"../report/{caption}", labels={**labels, "format": fmt.upper()})
        outputs.append(report(path_of(fmt), **flags, **category))
    return outputs


def paper_figure_outputs(figure, caption, name):
    """One report() output per paper format (config's paper.formats) of a paper figure."""
    outputs = []
    for fmt in config["paper"]["formats"]:
        labels = {"figure": name, "format": fmt.upper()}
        path = LAYOUT.paper_figure(figure, fmt)
        outputs.append(report(path, caption=f"../report/{caption}", category="Paper", labels=labels))
    return outputs
