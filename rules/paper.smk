# The paper outputs (results/paper/): the grid's table and the figures, in config's paper style.
rule paper_outputs:
    input:
        code=code_inputs("paper.py"),
        metrics=[LAYOUT.metrics(name) for name in SETTINGS],
        predictions=[
            path for name in SETTINGS for path in LAYOUT.seed_files(name, PREDICTIONS_FILE, SEEDS)
        ],
        losses=[path for name in SETTINGS for path in LAYOUT.seed_files(name, LOSSES_FILE, SEEDS)],
        manifests=sorted({manifest(s.dataset) for s in SETTINGS.values()}),
    output:
        table_tex=report(
            LAYOUT.paper_file("table.tex"),
            caption="../report/paper_table.rst",
            category="Paper",
            labels={"figure": "table", "format": "LaTeX"},
        ),
        table_md=report(
            LAYOUT.paper_file("table.md"),
            caption="../report/paper_table.rst",
            category="Paper",
            labels={"figure": "table", "format": "Markdown"},
        ),
        table_html=report(
            LAYOUT.paper_file("table.html"),
            caption="../report/paper_table.rst",
            category="Paper",
            labels={"figure": "table", "format": "HTML"},
        ),
        error_vs_epoch=paper_figure_outputs(
            "error_vs_epoch", "error_vs_epoch.rst", "test and training error per epoch"
        ),
        misclassified=paper_figure_outputs(
            "misclassified", "misclassified.rst", "misclassified test images"
        ),
        predictions=paper_figure_outputs("predictions", "paper_predictions.rst", "predictions"),
        loss_curves=paper_figure_outputs("loss_curves", "loss_curves.rst", "loss curves"),
    params:
        settings=list(SETTINGS),
        style=config["paper"],
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("paper_outputs"),
    benchmark:
        LAYOUT.benchmark("paper_outputs")
    threads: 1
    resources:
        mem_mb=2048,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/paper.py"


# `snakemake paper`: only the paper outputs (and what they are made from).
rule paper:
    localrule: True
    input:
        LAYOUT.paper(),
