#!/usr/bin/env bash
# Tokenization speed: zerotune's tokenizer.json reader against Hugging Face's tokenizers (the Rust
# library through its npm binding) on the same rows, in the same run, both on the same thread
# count. Usage (after building; the npm package comes from tests/tokenizer_json):
#   bench/tokenizer_bench.sh [--tokenizer DIR] [--rows 8792] [--threads 2] [--repeat 3]
# Rows are synthetic GSM8K rows (`zerotune data synth`: GSM8K's train + test size by default).
# Prints one JSON line per side and a line with the ratio (zerotune rows/s / library rows/s).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tokenizer="$root/../shared/data/llama3.1-tokenizer" rows=8792 threads=2 repeat=3
while [ $# -gt 0 ]; do
  case "$1" in
    --tokenizer) tokenizer="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "tokenizer_bench.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
[ -f "$tokenizer/tokenizer.json" ] || { echo "tokenizer_bench.sh: no $tokenizer/tokenizer.json" >&2; exit 1; }
build="$root/build"
node_dir="$build/tokenizer_json/node"
bash "$root/tests/tools/npm_install.sh" "$root/tests/tokenizer_json" "$node_dir" tokenizers >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$build/zerotune" data synth --out "$work/data" --train "$rows" --test 1 --seed 7 >/dev/null
# The rows' "input" texts, NUL-separated, as both programs read them.
python3 - "$work/data/train.jsonl" "$work/texts.bin" <<'PY'
import json, sys
rows = [json.loads(l)["input"].encode() for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
open(sys.argv[2], "wb").write(b"\0".join(rows))
PY
# Both sides: the same threads, no OpenBLAS tuning variables.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
ours=$(OMP_NUM_THREADS="$threads" "$build/tokenizer_bench" --tokenizer "$tokenizer" \
  --texts "$work/texts.bin" --threads "$threads" --repeat "$repeat")
theirs=$(RAYON_NUM_THREADS="$threads" TOKENIZERS_PARALLELISM=true node \
  "$root/tests/tokenizers/hf_reference.js" "$node_dir/node_modules" "$tokenizer/tokenizer.json" \
  "$work/texts.bin" --bench "$repeat")
echo "zerotune:   $ours"
echo "tokenizers: $theirs"
python3 - "$ours" "$theirs" "$threads" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = a["rows_per_s"] / b["rows_per_s"]
print(f"rows {a['rows']}, {sys.argv[3]} threads: zerotune {a['rows_per_s']:.0f} rows/s, "
      f"tokenizers ({b['method']}) {b['rows_per_s']:.0f} rows/s, ratio {ratio:.2f}x")
PY
