# lenet-cpp pipeline: build the extension -> MNIST -> training grid -> figures, report.
# Run `snakemake --cores 2` (or `make`); the grid is in config.yaml; see README.md.

configfile: "config.yaml"


include: "rules/common.smk"


report: "report/workflow.rst"


wildcard_constraints:
    setting="|".join(re.escape(name) for name in SETTINGS),


rule all:
    default_target: True
    localrule: True
    input:
        figure_targets(),


if BUILDS_EXTENSION:

    include: "rules/build.smk"


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/figures.smk"
