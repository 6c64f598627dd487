#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with apt, the Debian packages that scripts/gpu-check.sh needs
# on a GPU machine that has a compiler, CMake, ninja and the CUDA toolkit but no apt and no
# network: OpenBLAS (OpenMP build) with its Fortran runtime, and GoogleTest. They go into
# .gpu-vendor/debs (ignored by git; a few MiB), which travels with the working tree.
# Usage: scripts/gpu-vendor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-vendor/debs
cd .gpu-vendor/debs
packages=(libopenblas0-openmp libopenblas-openmp-dev libopenblas-dev libgfortran5 libgtest-dev)
apt-get download "${packages[@]}"
ls -la
du -sh .
