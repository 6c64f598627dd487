#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: unit tests, the PyTorch
# reference checks, then the unit tests again under AddressSanitizer + UBSan.
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

if [ "${1:-}" != "--no-sanitize" ]; then
  cmake --preset sanitize >/dev/null
  cmake --build --preset sanitize -j "$jobs" --target zerotune_tests
  ASAN_OPTIONS=detect_leaks=1 ctest --preset sanitize -j 1
fi
