#!/usr/bin/env bash
# The prepared device check for a lent GPU machine (its image: Python 3.12, torch with CUDA, nvcc, OpenCV, scikit-image;
# no OpenImageIO/OpenColorIO/dlib). Builds both native modules in place there (cp311 builds from CI do not load on
# 3.12), runs every test marked `gpu` (`pytest -m gpu`; test files that need the image libraries fail to collect
# there and are listed, the rest run) and the merge benchmark, whose JSON then holds the CUDA figures.
# Run from the repo root:  OUT=$OUT bash bench/gpu_check.sh
set -uo pipefail
OUT=${OUT:-build/gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
start=$(date +%s)
if [ -z "${SKIP_BUILD:-}" ]; then
    DFL_CUDA_ARCHS=${DFL_CUDA_ARCHS:-90} $PY setup.py -q build_ext --inplace > "$OUT/build.log" 2>&1
    echo "build: exit $? in $(( $(date +%s) - start )) s" | tee -a "$OUT/build.log"
fi
$PY -c "from dfl_vfx import native; print('cuda_available', native.cuda_available(), native.cuda_build_info())" \
    2>&1 | tee -a "$OUT/build.log"
$PY -m pytest -q -p no:cacheprovider -m gpu --continue-on-collection-errors -rs tests 2>&1 \
    | tee "$OUT/tests.log" | grep -E "passed|failed|error|SKIPPED" | tail -25
$PY bench/merge_bench.py --repeats 5 --out "$OUT" 2>&1 | tail -4
