#!/usr/bin/env bash
# Installs a test folder's pinned npm packages (its package.json and package-lock.json) into a
# folder of the build tree, once per lock file.
# Usage: npm_install.sh SOURCE_DIR NODE_DIR PACKAGE [--skip-without-npm]
# PACKAGE is the package whose presence shows the install is done (s3rver, openai, tokenizers).
# Exit 0: installed (or already there); 1: the install failed, or npm is missing, which fails the
# check that needs it; 77: npm or node is missing and --skip-without-npm was given (the caller
# skips).
set -euo pipefail
src="$1" dest="$2" package="$3" skip_without_npm="${4:-}"
mkdir -p "$dest"
installed() { [ -f "$dest/node_modules/$package/package.json" ]; }
if installed && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  echo "$package already installed in $dest"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  if [ "$skip_without_npm" = "--skip-without-npm" ]; then
    echo "SKIP: npm or node not found; run scripts/setup.sh (Debian: nodejs npm)" >&2
    exit 77
  fi
  echo "FAIL: npm or node not found; run scripts/setup.sh (Debian: nodejs npm)" >&2
  exit 1
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
# --prefer-offline: a populated npm cache serves the pinned tarballs without the network.
if ! (cd "$dest" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error); then
  echo "FAIL: npm ci in $dest failed (needs the npm registry, or a populated npm cache)" >&2
  exit 1
fi
installed || { echo "FAIL: no $package package after npm ci" >&2; exit 1; }
echo "installed $package into $dest"
