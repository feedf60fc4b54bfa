# MNIST: the verified acquisition chain of lenet_cpp.mnist.ensure_mnist. The declared output
# is the manifest of MD5s, not the data files: Snakemake deletes a job's outputs before it
# reruns it, and data that verified once must survive --forceall (refetching needs the
# network). Jobs that read the data verify it against the manifest or the official MD5s.
rule download_mnist:
    input:
        code=code_inputs("download_mnist.py"),
    output:
        MANIFEST,
    params:
        data_dir=lambda wildcards, output: os.path.dirname(output[0]),
        data=config["data"],
        source_dir=IMPORT_DIR,
    log:
        LAYOUT.log("download_mnist"),
    benchmark:
        LAYOUT.benchmark("download_mnist")
    localrule: True
    threads: 1
    resources:
        mem_mb=1024,
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/download_mnist.py"
