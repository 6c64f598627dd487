#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with apt, the Debian packages that scripts/gpu-check.sh needs
# on a GPU machine that has a compiler, CMake, ninja and the CUDA toolkit but no apt and no
# network: OpenBLAS (OpenMP build) with its Fortran runtime, and GoogleTest. They go into
# .gpu-vendor/debs (ignored by git; a few MiB), which travels with the working tree.
# --full adds what the whole tool links (sentencepiece, OpenMPI, liburing, libcurl, OpenSSL, cpp-httplib and
# their libraries, ~17 MB more), so that the GPU machine can also build zerotune itself and run
# `zerotune train --device cuda`.
# Usage: scripts/gpu-vendor.sh [--full]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-vendor/debs
cd .gpu-vendor/debs
packages=(libopenblas0-openmp libopenblas-openmp-dev libopenblas-dev libgfortran5 libgtest-dev)
if [ "${1:-}" = "--full" ]; then
  packages+=(libsentencepiece-dev libsentencepiece0 libopenmpi-dev libopenmpi3 liburing-dev
             liburing2 libcurl4-openssl-dev libcurl4 libssl-dev libssl3 libhwloc15
             libevent-core-2.1-7 libevent-pthreads-2.1-7 libpmix2 libfabric1 libucx0 libibverbs1
             librdmacm1 libpsm2-2 libnl-3-200 libnl-route-3-200 libnghttp2-14 librtmp1 libssh2-1
             libpsl5 libldap-2.5-0 libgssapi-krb5-2 libbrotli1 libidn2-0 libkrb5-3 libk5crypto3
             libkrb5support0 libsasl2-2 libunistring2 libgnutls30 libhogweed6 libnettle8
             libtasn1-6 libp11-kit0 libkeyutils1 libnuma1 libpsm-infinipath1
             libcpp-httplib-dev libcpp-httplib0.11 libbrotli-dev zlib1g-dev)
fi
apt-get download "${packages[@]}"
ls -la
du -sh .
