# Each dataset of the grid: the verified acquisition chain of lenet_cpp.acquire.ensure_dataset
# into its own directory (data.dir/<dataset>). The declared output is the manifest of MD5s,
# not the data files: Snakemake deletes a job's outputs before it reruns it, and data that
# verified once must survive --forceall (refetching needs the network). Jobs that read the
# data verify it against the manifest or the official MD5s.
rule download_data:
    input:
        code=code_inputs("download_data.py"),
    output:
        manifest("{dataset}"),
    params:
        data_dir=lambda wildcards, output: os.path.dirname(output[0]),
        source=lambda wildcards: data_source(wildcards.dataset),
        verify=config["data"]["verify"],
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("download_data", "{dataset}"),
    benchmark:
        LAYOUT.benchmark("download_data", "{dataset}")
    localrule: True
    threads: 1
    resources:
        mem_mb=1024,
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/download_data.py"
