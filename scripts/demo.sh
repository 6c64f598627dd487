#!/usr/bin/env bash
# The main job on the built-in default, end to end, with nothing downloaded and no GPU:
# synthetic GSM8K-style data, a SentencePiece tokenizer trained on it, a small random Llama in
# Hugging Face layout, fine-tuning for a few epochs (perplexity falls), and the fine-tuned model
# answering a held-out question; then the first steps of the same job on 2 MPI ranks with ZeRO-3,
# whose losses match the one-process run's, and the memory each rank holds. About 4 minutes on
# 2 idle cores, nearly all of it the one-process fine-tuning (the 2-rank run takes ~8 CPU seconds).
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
while [ -e "$OUT/train-$n" ] || [ -e "$OUT/train-$n-zero3" ]; do n=$((n + 1)); done
RUN="$OUT/train-$n"
# Flags shared by the one-process run and the 2-rank run below.
common=(--model_name "$OUT/model" --train_path "$OUT/data/train.jsonl"
  --test_path "$OUT/data/test.jsonl" --special_token_path "$OUT/data/tokens.json"
  --eval-batch-size-per-device 32 --num-epochs 4 --lr 2e-3 --ctx-len 256 --warmup-steps 20
  --weight-decay 0.01 --packing --no-grad-ckpt --num-checkpoints-to-keep 1)
step "fine-tuning into $RUN (one process)"
"$Z" train "${common[@]}" --output_dir "$RUN" -bs 16 -nd 1

step "eval perplexity per epoch"
/usr/bin/env python3 - "$RUN/metrics.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["type"] == "eval":
        print(f"epoch {row['epoch']}: eval loss {row['eval_loss']:.4f}  perplexity {row['perplexity']:.3f}")
PY

# --num-checkpoints-to-keep 1 leaves one epoch folder: the best by perplexity.
checkpoints=("$RUN"/epoch-*)
if [ "${#checkpoints[@]}" -ne 1 ] || [ ! -d "${checkpoints[0]}" ]; then
  echo "demo: expected one epoch-* folder in $RUN, found: ${checkpoints[*]}" >&2
  exit 1
fi
best="${checkpoints[0]}"
question="$(head -n 1 "$OUT/data/test.jsonl")"
prompt="$(printf '%s' "$question" | /usr/bin/env python3 -c 'import json,sys; t=json.load(sys.stdin)["input"]; print(t[:t.index("<START_A>")+len("<START_A>")], end="")')"
expected="$(printf '%s' "$question" | /usr/bin/env python3 -c 'import json,sys; t=json.load(sys.stdin)["input"]; print(t[t.index("####"):t.index("<END_A>")], end="")')"
step "held-out question, answered by $best"
printf '%s\n\n' "$prompt"
stats="$RUN/generate-stats.json"
if ! "$Z" generate --model "$best" --prompt "$prompt" --stop "<END_A>" --max-new-tokens 160 \
  --threads "$threads" 2>"$stats"; then
  cat "$stats" >&2
  exit 1
fi
printf '\n(the reference answer ends with %s)\n(generate statistics, from stderr: %s)\n' \
  "$expected" "$(cat "$stats")"

# The same job on 2 MPI ranks with ZeRO-3 (parameters, gradients and AdamW state divided
# between the ranks), 8 examples per rank: the same global batch of 16 in the same order, so its
# first steps give the one-process run's losses up to float rounding.
ZRUN="$OUT/train-$n-zero3"
step "the same start on 2 ranks with ZeRO-3 (-nd 2 --zero-stage 3 -bs 8), 3 steps, into $ZRUN"
echo "(then its evaluation, far from trained after 3 steps, and a checkpoint gathered from both" \
  "ranks)"
OMP_NUM_THREADS="$(((threads + 1) / 2))" "$Z" train "${common[@]}" --output_dir "$ZRUN" -bs 8 \
  -nd 2 --zero-stage 3 --max-steps 3

step "losses of the first steps and memory per rank: 1 process vs 2 ranks with ZeRO-3"
/usr/bin/env python3 - "$RUN" "$ZRUN" <<'PY'
import json, os, sys
one, two = sys.argv[1], sys.argv[2]
def losses(run):
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    return {r["step"]: r for r in rows if r["type"] == "train"}
a, b = losses(one), losses(two)
print("step  loss (1 process)  loss (2 ranks)  relative difference  all-gathered MiB"
      "  reduce-scattered MiB")
for s in sorted(b):
    rel = abs(a[s]["loss"] - b[s]["loss"]) / abs(a[s]["loss"])
    print(f"{s:4d}  {a[s]['loss']:16.6f}  {b[s]['loss']:14.6f}  {rel:19.1e}"
          f"  {b[s]['comm_all_gather_bytes'] / 2**20:16.1f}"
          f"  {b[s]['comm_reduce_scatter_bytes'] / 2**20:20.1f}")
print("(the same global batch of 16 in the same order: equal up to float rounding; MiB: what "
      "rank 0 handed to each collective in the step)")
mib = lambda v: f"{v / 2**20:.1f}"
for run in (one, two):
    m = json.load(open(os.path.join(run, "memory.json")))
    print(f"\n{os.path.basename(run)}/memory.json: {m['world_size']} rank(s),"
          f" ZeRO stage {m['zero_stage']}")
    print("rank  params MiB  grads MiB  AdamW MiB  gathered slots MiB  held MiB  peak RSS MiB")
    for r in range(m["world_size"]):
        print(f"{r:4d}  {mib(m['params_bytes'][r]):>10}  {mib(m['grads_bytes'][r]):>9}"
              f"  {mib(m['optimizer_bytes'][r]):>9}  {mib(m['slot_bytes'][r]):>18}"
              f"  {mib(m['held_bytes'][r]):>8}  {mib(m['peak_rss_bytes'][r]):>12}")
PY
