#!/usr/bin/env bash
# Installs every Debian package zerotune needs to build, test and benchmark. Non-interactive and
# idempotent; uses sudo when not root. Usage: scripts/setup.sh [--check]
# --check only reports (exit 1 when something is missing).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libopenblas-openmp-dev  # BLAS sharing OpenMP's thread pool with our kernels
  libsentencepiece-dev    # Llama's tokenizer.model
  libgtest-dev            # unit tests
  python3 python3-numpy python3-torch  # the PyTorch reference for numerical tests and benchmarks
  python3-sentencepiece                # the reference for tokenizer parity
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "setup: missing ${missing[*]}"
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
