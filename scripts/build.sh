#!/usr/bin/env bash
# Configures and builds the release binary at build/zerotune (incremental).
# Usage: scripts/build.sh [--cuda]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ "${1:-}" = "--cuda" ]; then
  echo "build: the CUDA backend (build-cuda/zerotune) is not part of this version yet" >&2
  exit 1
fi
ensure_setup
cd "$ROOT"
cmake --preset release >/dev/null
cmake --build --preset release
echo "build: $ROOT/build/zerotune"
