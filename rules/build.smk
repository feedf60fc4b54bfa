# Compile cpp/ into lenet_cpp/_C*.so in the source checkout (ninja rebuilds only what changed).
rule build_extension:
    input:
        sources=CPP_SOURCES,
        setup=source_file("setup.py"),
        code=code_inputs("build_extension.py"),
    output:
        EXTENSION,
    params:
        source_dir=SOURCE,
    log:
        LAYOUT.log("build_extension"),
    benchmark:
        LAYOUT.benchmark("build_extension")
    threads: 2
    resources:
        mem_mb=4096,
        runtime=30,
    conda:
        ENV
    script:
        "../scripts/build_extension.py"
