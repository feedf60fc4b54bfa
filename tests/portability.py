"""Environment switches that change which code paths libtorch, MKL and glibc take on this CPU;
results of the fused CPU path must not change under them (tests/test_portable.py,
tests/test_pipeline.py)."""

LIBRARY_SWITCHES = {
    "MKL_CBWR": "COMPATIBLE",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "ATEN_CPU_CAPABILITY": "default",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F,-AVX2_Usable,-FMA_Usable",
}
