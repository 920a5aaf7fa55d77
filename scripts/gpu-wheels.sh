#!/usr/bin/env bash
# Fetch, into .whl/ (git-ignored), the wheels of the harness dependencies the GPU machine lacks
# (Python 3.12, x86-64; see docs/gpu.md), at the versions constraints/ci.txt pins. scripts/gpu-check.sh
# installs them there before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" constraints/ci.txt | cut -d= -f3; }
mkdir -p .whl
# liger-kernel and cut-cross-entropy: the linear_ce bindings (pure-Python wheels; the GPU's torch brings triton)
for pkg in jsonschema referencing rpds-py jsonschema-specifications liger-kernel cut-cross-entropy; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$pkg==$(pin "$pkg")"
done
ls .whl
