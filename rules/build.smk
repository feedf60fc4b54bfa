# Compile cpp/ into lenet_cpp/_C*.so in the source checkout (ninja rebuilds only what changed).
rule build_extension:
    input:
        sources=CPP_SOURCES,
        setup=source_file("setup.py"),
    output:
        EXTENSION,
    params:
        source_dir=lambda wildcards: str(SOURCE_DIR),
        python=PYTHON,
    log:
        "logs/build_extension.log",
    benchmark:
        "benchmarks/build_extension.tsv"
    threads: 2
    resources:
        mem_mb=4096,
        runtime=30,
    conda:
        ENV
    shell:
        "(cd {params.source_dir:q} && MAX_JOBS={threads} "
        "{params.python:q} setup.py build_ext --inplace) > {log:q} 2>&1"
