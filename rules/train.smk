# One job per grid point; its seed replicates train concurrently in Python threads.
rule train:
    input:
        code=code_inputs("train.py"),
        manifest=lambda wildcards: manifest(SETTINGS[wildcards.setting].dataset),
    output:
        metrics=LAYOUT.metrics("{setting}"),
        losses=LAYOUT.seed_files("{setting}", LOSSES_FILE, SEEDS),
        epochs=LAYOUT.seed_files("{setting}", EPOCHS_FILE, SEEDS),
        predictions=LAYOUT.seed_files("{setting}", PREDICTIONS_FILE, SEEDS),
        models=LAYOUT.seed_files("{setting}", MODEL_FILE, SEEDS),
    params:
        hyperparameters=lambda wildcards: SETTINGS[wildcards.setting].as_dict(),
        seeds=SEEDS,
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        verify=config["data"]["verify"],
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
        train_subset=config["train_subset"],
        test_subset=config["test_subset"],
        device=config["device"],
        kernels=config["kernels"],
        checkpoint_dir=lambda wildcards: LAYOUT.checkpoint_dir(wildcards.setting),
        progress_every=config["progress_every"],
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("train", "{setting}"),
    benchmark:
        LAYOUT.benchmark("train", "{setting}")
    threads: config["threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
    conda:
        ENV
    script:
        "../scripts/train.py"
