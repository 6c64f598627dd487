#!/usr/bin/env bash
# The main job on the built-in default, end to end, with nothing downloaded.
# Today: builds zerotune and times training steps of the built-in tiny Llama on random tokens;
# the fine-tuning job itself (`zerotune train` on built-in data) replaces this as it lands.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_setup
bash "$ROOT/scripts/build.sh"
cd "$ROOT"
threads="$(nproc)"
echo "demo: training steps of the tiny preset (D288 L6 V32000, batch 8 x 256 tokens) on $threads threads"
OMP_WAIT_POLICY=PASSIVE ./build/zerotune bench --preset tiny --threads "$threads" --steps 3 --warmup 1
