# One job per grid point; its seed replicates train concurrently in Python threads.
rule train:
    input:
        extension=EXTENSION,
        code=package_modules("runner", "results"),
        data=MNIST,
    output:
        metrics=f"{RESULTS}/runs/{{setting}}/metrics.json",
        losses=seed_files("losses.csv"),
        epochs=seed_files("epochs.csv"),
        predictions=seed_files("predictions.csv"),
        models=seed_files("model.pt"),
    params:
        hyperparameters=lambda wildcards: SETTINGS[wildcards.setting],
        seeds=SEEDS,
        data_dir=lambda wildcards, input: os.path.dirname(input.data[0]),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
        train_subset=config["train_subset"],
        test_subset=config["test_subset"],
        device=config["device"],
        progress_every=config["progress_every"],
        source_dir=IMPORT_DIR,
    log:
        "logs/train/{setting}.log",
    benchmark:
        "benchmarks/train/{setting}.tsv"
    threads: config["threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
    conda:
        ENV
    script:
        "../scripts/train.py"
