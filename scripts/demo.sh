#!/usr/bin/env bash
# The main job on the built-in default, end to end, with nothing downloaded and no GPU:
# synthetic GSM8K-style data, a SentencePiece tokenizer trained on it, a small random Llama in
# Hugging Face layout, fine-tuning for a few epochs (perplexity falls), and the fine-tuned model
# answering a held-out question. About 4 minutes on 2 idle cores.
# Usage: scripts/demo.sh [OUT]   (default runs/demo; an existing OUT is reused, never overwritten)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_setup
bash "$ROOT/scripts/build.sh" >/dev/null
Z="$ROOT/build/zerotune"
OUT="${1:-$ROOT/runs/demo}"
mkdir -p "$OUT"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
threads="$(nproc)"

step() { printf '\n== %s\n' "$*"; }

if [ ! -f "$OUT/data/train.jsonl" ]; then
  step "synthetic grade-school word problems (GSM8K format)"
  "$Z" data synth --out "$OUT/data" --train 3000 --test 200 --seed 0
fi
if [ ! -f "$OUT/tokenizer/tokenizer.model" ]; then
  step "SentencePiece tokenizer trained on them"
  "$Z" tokenizer train --input "$OUT/data/train.jsonl" --vocab-size 1000 --out "$OUT/tokenizer" \
    --special_token_path "$OUT/data/tokens.json"
fi
if [ ! -f "$OUT/model/config.json" ]; then
  step "a randomly initialised Llama (D256, 4 layers, GQA 8:4) in Hugging Face layout"
  "$Z" init --out "$OUT/model" --dim 256 --n-layers 4 --n-heads 8 --n-kv-heads 4 --hidden 688 \
    --tokenizer "$OUT/tokenizer" --special_token_path "$OUT/data/tokens.json" --max-positions 512
fi

n=1
while [ -e "$OUT/train-$n" ]; do n=$((n + 1)); done
RUN="$OUT/train-$n"
step "fine-tuning into $RUN (single process: -nd 2 needs the MPI launch, not built yet)"
"$Z" train --model_name "$OUT/model" --train_path "$OUT/data/train.jsonl" \
  --test_path "$OUT/data/test.jsonl" --special_token_path "$OUT/data/tokens.json" \
  --output_dir "$RUN" -bs 16 --eval-batch-size-per-device 32 --num-epochs 4 --lr 2e-3 \
  --ctx-len 256 --warmup-steps 20 --weight-decay 0.01 --packing --no-grad-ckpt \
  --num-checkpoints-to-keep 1 -nd 1

step "eval perplexity per epoch"
/usr/bin/env python3 - "$RUN/metrics.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["type"] == "eval":
        print(f"epoch {row['epoch']}: eval loss {row['eval_loss']:.4f}  perplexity {row['perplexity']:.3f}")
PY

best="$(ls -d "$RUN"/epoch-* | head -n 1)"
question="$(head -n 1 "$OUT/data/test.jsonl")"
prompt="$(printf '%s' "$question" | /usr/bin/env python3 -c 'import json,sys; t=json.load(sys.stdin)["input"]; print(t[:t.index("<START_A>")+len("<START_A>")], end="")')"
expected="$(printf '%s' "$question" | /usr/bin/env python3 -c 'import json,sys; t=json.load(sys.stdin)["input"]; print(t[t.index("####"):t.index("<END_A>")], end="")')"
step "held-out question, answered by $best"
printf '%s\n\n' "$prompt"
"$Z" generate --model "$best" --prompt "$prompt" --stop "<END_A>" --max-new-tokens 160 \
  --threads "$threads"
printf '\n(the reference answer ends with %s)\n' "$expected"
