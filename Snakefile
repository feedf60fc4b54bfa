# lenet-cpp pipeline: build the extension -> datasets -> training grid -> figures, report.
# Run `snakemake --cores 2` (or `make`); the grid is in config.yaml; see README.md.
from snakemake.utils import min_version


min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"


report: "report/workflow.rst"


wildcard_constraints:
    setting="|".join(re.escape(name) for name in SETTINGS),
    dataset="|".join(re.escape(name) for name in DATASET_NAMES),


# The complete result set: every figure and every run file a figure is made from, so a run
# directory that was emptied or half-deleted (a killed forced rerun) reschedules its job.
rule all:
    default_target: True
    localrule: True
    input:
        LAYOUT.targets(list(SETTINGS), SEEDS),


if BUILDS_EXTENSION:

    include: "rules/build.smk"


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/figures.smk"
include: "rules/paper.smk"
