# Figures of each setting, then the grid-level summary, overlay and confusion matrix.
rule plot_setting:
    input:
        code=code_inputs("plot_setting.py"),
        metrics=LAYOUT.metrics("{setting}"),
        losses=LAYOUT.seed_files("{setting}", LOSSES_FILE, SEEDS),
        predictions=LAYOUT.seed_files("{setting}", PREDICTIONS_FILE, SEEDS),
    output:
        predictions=figure_outputs(
            lambda fmt: LAYOUT.setting_figure("{setting}", "predictions", fmt),
            "predictions.rst",
            {"figure": "predictions vs true labels"},
            category="Settings",
            subcategory="{setting}",
        ),
        loss=figure_outputs(
            lambda fmt: LAYOUT.setting_figure("{setting}", "loss", fmt),
            "loss.rst",
            {"figure": "loss curve"},
            category="Settings",
            subcategory="{setting}",
        ),
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("plot_setting", "{setting}"),
    benchmark:
        LAYOUT.benchmark("plot_setting", "{setting}")
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/plot_setting.py"


rule summarize_grid:
    input:
        code=code_inputs("summarize_grid.py"),
        metrics=[LAYOUT.metrics(name) for name in SETTINGS],
        losses=[path for name in SETTINGS for path in LAYOUT.seed_files(name, LOSSES_FILE, SEEDS)],
    output:
        summary=report(
            LAYOUT.summary,
            caption="../report/summary.rst",
            category="Grid",
            labels={"figure": "summary table", "format": "CSV"},
        ),
        loss=figure_outputs(
            lambda fmt: LAYOUT.grid_figure("loss_curves", fmt),
            "loss_curves.rst",
            {"figure": "loss curves of all settings"},
            category="Grid",
        ),
        confusion=figure_outputs(
            lambda fmt: LAYOUT.grid_figure("confusion_best", fmt),
            "confusion.rst",
            {"figure": "confusion matrix of the best setting"},
            category="Grid",
        ),
    params:
        settings=list(SETTINGS),
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("summarize_grid"),
    benchmark:
        LAYOUT.benchmark("summarize_grid")
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/summarize_grid.py"
