#!/usr/bin/env bash
# Installs the pinned npm packages of tests/serve (the official OpenAI client) into a folder of
# the build tree. A failure fails the test run: the serve checks need the client and must not be
# skipped silently.
# Usage: npm_install.sh SOURCE_DIR NODE_DIR
set -euo pipefail
src="$1" dest="$2"
mkdir -p "$dest"
if [ -f "$dest/node_modules/openai/package.json" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  echo "openai already installed in $dest"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "FAIL: npm not found; run scripts/setup.sh (Debian: nodejs npm)" >&2
  exit 1
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
if ! (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error); then
  echo "FAIL: npm ci in $dest failed (needs the npm registry, or a populated npm cache)" >&2
  exit 1
fi
test -f "$dest/node_modules/openai/package.json" || { echo "FAIL: no openai after npm ci" >&2; exit 1; }
echo "installed openai into $dest"
