#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit tests, the PyTorch
# reference checks, the multi-process and storage checks, the CUDA build (its tests skip without a
# GPU), then the unit tests again under AddressSanitizer + UBSan.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_setup
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
jobs="$(nproc)"

cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j 1
# The CPU binary stays free of CUDA.
if ldd build/zerotune | grep -q -E "libcudart|libcublas"; then
  echo "test: build/zerotune links CUDA libraries" >&2
  exit 1
fi

# The CUDA backend compiles and links wherever the toolkit is (its tests skip without a GPU); for
# one architecture, sm_90 (scripts/build.sh --cuda builds all three). Files outside the backend
# compile as in the CPU build above, so the compiler cache serves them.
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake --preset cuda-check >/dev/null
  cmake --build --preset cuda-check -j "$jobs" --target zerotune zerotune_cuda_tests gpu_bench gpu_fit
  ctest --preset cuda-check -j 1
else
  echo "test: no CUDA toolkit under /usr/local/cuda; the CUDA backend was not compiled"
fi

if [ "${1:-}" != "--no-sanitize" ]; then
  cmake --preset sanitize >/dev/null
  cmake --build --preset sanitize -j "$jobs" --target zerotune_tests
  ASAN_OPTIONS=detect_leaks=1 ctest --preset sanitize -j 1
fi
