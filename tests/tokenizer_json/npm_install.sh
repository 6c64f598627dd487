#!/usr/bin/env bash
# Installs the pinned npm package of tests/tokenizer_json (Hugging Face's `tokenizers`, whose
# Node binding runs the Rust library that reads tokenizer.json) into a folder of the build tree.
# Usage: npm_install.sh SOURCE_DIR NODE_DIR
# Exit 0: installed (or already there); 77: npm is not installed (the caller skips); 1: the
# install failed (no registry and no populated npm cache), which fails the check.
set -euo pipefail
src="$1" dest="$2"
mkdir -p "$dest"
if [ -f "$dest/node_modules/tokenizers/package.json" ] &&
   cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  echo "tokenizers already installed in $dest"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "SKIP: npm or node not found; run scripts/setup.sh (Debian: nodejs npm)" >&2
  exit 77
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
# --prefer-offline: a populated npm cache serves the pinned tarball without the network.
if ! (cd "$dest" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error); then
  echo "FAIL: npm ci in $dest failed (needs the npm registry, or a populated npm cache)" >&2
  exit 1
fi
test -f "$dest/node_modules/tokenizers/package.json" ||
  { echo "FAIL: no tokenizers package after npm ci" >&2; exit 1; }
echo "installed tokenizers into $dest"
