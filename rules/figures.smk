# Figures of each setting, then the grid-level summary, overlay and confusion matrix.
rule plot_setting:
    input:
        code=package_modules("plotting"),
        metrics=f"{RESULTS}/runs/{{setting}}/metrics.json",
        losses=seed_files("losses.csv"),
        predictions=seed_files("predictions.csv"),
    output:
        predictions_png=report(
            f"{RESULTS}/figures/{{setting}}/predictions.png",
            caption="../report/predictions.rst",
            category="Settings",
            subcategory="{setting}",
            labels={"figure": "predictions vs true labels", "format": "PNG"},
        ),
        predictions_pdf=report(
            f"{RESULTS}/figures/{{setting}}/predictions.pdf",
            caption="../report/predictions.rst",
            category="Settings",
            subcategory="{setting}",
            labels={"figure": "predictions vs true labels", "format": "PDF"},
        ),
        loss_png=report(
            f"{RESULTS}/figures/{{setting}}/loss.png",
            caption="../report/loss.rst",
            category="Settings",
            subcategory="{setting}",
            labels={"figure": "loss curve", "format": "PNG"},
        ),
        loss_pdf=report(
            f"{RESULTS}/figures/{{setting}}/loss.pdf",
            caption="../report/loss.rst",
            category="Settings",
            subcategory="{setting}",
            labels={"figure": "loss curve", "format": "PDF"},
        ),
    params:
        run_dir=lambda wildcards, input: os.path.dirname(input.metrics),
        source_dir=IMPORT_DIR,
    log:
        "logs/plot_setting/{setting}.log",
    benchmark:
        "benchmarks/plot_setting/{setting}.tsv"
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
        code=package_modules("plotting", "results"),
        metrics=all_settings(f"{RESULTS}/runs/{{setting}}/metrics.json"),
        losses=all_seed_files("losses.csv"),
    output:
        summary=report(
            f"{RESULTS}/grid/summary.csv",
            caption="../report/summary.rst",
            category="Grid",
            labels={"figure": "summary table", "format": "CSV"},
        ),
        loss_png=report(
            f"{RESULTS}/grid/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Grid",
            labels={"figure": "loss curves of all settings", "format": "PNG"},
        ),
        loss_pdf=report(
            f"{RESULTS}/grid/loss_curves.pdf",
            caption="../report/loss_curves.rst",
            category="Grid",
            labels={"figure": "loss curves of all settings", "format": "PDF"},
        ),
        confusion_png=report(
            f"{RESULTS}/grid/confusion_best.png",
            caption="../report/confusion.rst",
            category="Grid",
            labels={"figure": "confusion matrix of the best setting", "format": "PNG"},
        ),
        confusion_pdf=report(
            f"{RESULTS}/grid/confusion_best.pdf",
            caption="../report/confusion.rst",
            category="Grid",
            labels={"figure": "confusion matrix of the best setting", "format": "PDF"},
        ),
    params:
        settings=list(SETTINGS),
        source_dir=IMPORT_DIR,
    log:
        "logs/summarize_grid.log",
    benchmark:
        "benchmarks/summarize_grid.tsv"
    threads: 1
    resources:
        mem_mb=1024,
        runtime=10,
    conda:
        ENV
    script:
        "../scripts/summarize_grid.py"
