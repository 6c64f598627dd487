#!/usr/bin/env bash
# Installs every Debian package zerotune needs to build, test and benchmark. Non-interactive and
# idempotent; uses sudo when not root. Usage: scripts/setup.sh [--check]
# --check only reports (exit 1 when something is missing).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libopenblas-openmp-dev  # BLAS sharing OpenMP's thread pool with our kernels
  libsentencepiece-dev    # Llama's tokenizer.model
  libpcre2-dev libicu-dev # tokenizer.json: Unicode regexes (pre-tokenizers), NFC
  libgtest-dev            # unit tests
  python3 python3-numpy python3-torch  # the PyTorch reference for numerical tests and benchmarks
  python3-sentencepiece                # the reference for tokenizer parity
  python3-jinja2                       # the reference for chat template rendering
  openmpi-bin libopenmpi-dev  # multi-process training (mpirun, MPI collectives)
  liburing-dev                # asynchronous optimizer-state paging (--offload-optimizer nvme)
  libcurl4-openssl-dev libssl-dev  # S3 and Hugging Face Hub transfers, SigV4 signing
  python3-botocore            # the reference SigV4 signer for storage tests
  nodejs                      # the loopback S3 server used by storage tests (npm package s3rver)
  libcpp-httplib-dev          # HTTP/1.1 for `zerotune serve`
  chromium python3-pil        # the run report rendered by a headless browser, its PNG inspected
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's nodejs ships npm separately; other builds of the nodejs package include it.
if ! command -v npm >/dev/null && [[ " ${missing[*]} " != *" nodejs "* ]]; then missing+=(npm); fi
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
if ! command -v npm >/dev/null; then $SUDO apt-get install -y -qq --no-install-recommends npm; fi
