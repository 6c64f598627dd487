#!/usr/bin/env bash
# Configures and builds the release binary at build/zerotune (incremental).
# Usage: scripts/build.sh [--cuda]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_setup
cd "$ROOT"
if [ "${1:-}" = "--cuda" ]; then
  # The CPU binary plus the CUDA backend (sm_80, sm_86, sm_90), in build-cuda/.
  [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null ||
    { echo "build: --cuda needs the CUDA toolkit (nvcc) under /usr/local/cuda" >&2; exit 1; }
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda
  echo "build: $ROOT/build-cuda/zerotune"
  exit 0
fi
cmake --preset release >/dev/null
cmake --build --preset release
echo "build: $ROOT/build/zerotune"
