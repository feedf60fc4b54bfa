#!/usr/bin/env bash
# Build script shared by recipe.yaml (rattler-build) and meta.yaml (conda-build).
# torch.utils.cpp_extension compiles lenet_cpp._C against the host environment's pytorch.
set -euxo pipefail

export MAX_JOBS="${CPU_COUNT:-2}"

"${PYTHON}" -m pip install . --no-deps --no-build-isolation -vv
