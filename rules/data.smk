# MNIST: the verified acquisition chain of lenet_cpp.mnist.ensure_mnist, via the CLI.
rule download_mnist:
    input:
        # Only to import lenet_cpp: ancient() keeps a rebuild from re-downloading.
        extension=ancient(EXTENSION),
    output:
        MNIST,
    params:
        data_dir=lambda wildcards, output: os.path.dirname(output[0]),
        options=download_options(config["data"]),
        source_dir=IMPORT_DIR,
        python=PYTHON,
    log:
        "logs/download_mnist.log",
    benchmark:
        "benchmarks/download_mnist.tsv"
    localrule: True
    threads: 1
    resources:
        mem_mb=1024,
        runtime=30,
    conda:
        ENV
    shell:
        "PYTHONPATH={params.source_dir:q} {params.python:q} -m lenet_cpp download "
        "--data-dir {params.data_dir:q} {params.options} > {log:q} 2>&1"
