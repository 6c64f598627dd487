#!/usr/bin/env bash
# Fine-tunes the model families people start from today on GSM8K, with the settings of the job
# zerotune replaces (run_llama.sh): 16 ranks (its 16 x A10G 24 GB cluster), ZeRO-3, context 512,
# lr 5e-6, global batch 256, bf16, activation checkpointing, one epoch.
#
#   scripts/run_family.sh --model NAME [--chat] [--as-test] [--dry-run] [-- extra train flags]
#
#   NAME          Hub id (base; --chat: instruct)     params  per device  GPU memory  GSM8K epoch
#   llama3.1-8b   meta-llama/Llama-3.1-8B              8.03B     16         ~19.6 GB   ~16 min
#   llama3.2-3b   meta-llama/Llama-3.2-3B  (tied)      3.21B     16         ~11.4 GB    ~7 min
#   llama3.2-1b   meta-llama/Llama-3.2-1B  (tied)      1.24B     16          ~7.1 GB    ~3 min
#   qwen2.5-7b    Qwen/Qwen2.5-7B          (q/k/v bias) 7.62B     16         ~19.1 GB   ~15 min
#   mistral-7b    mistralai/Mistral-7B-v0.1            7.24B     16         ~16.7 GB   ~15 min
#   (for comparison, Llama-2-7B by the same plan: 6.74B, ~15.9 GB, 14 min as measured)
#
#   GPU memory is the plan of bench/gpu_fit.cc (--plan) divided over 16 ZeRO-3 ranks, 18 bytes per
#   parameter (bf16 copy, f32 gradient, f32 master, two f32 moments), plus what it leaves out:
#   activations with per-layer checkpointing at 16 x 512 tokens (each layer's input, one layer's
#   activations and their gradients, bf16), two gathered layers and the vocabulary matrix in
#   bf16, one group's full f32 gradient before its reduce-scatter, the LM head's 512 MiB logits
#   chunk and its gradient, and 1 GB for the CUDA context. The epoch is the old job's measured
#   14 minutes for Llama-2-7B on those 16 GPUs scaled by training FLOPs per epoch (7,473 rows
#   padded to 512 tokens; 8 FLOPs per weight per token with the recompute, 6 for the LM head,
#   causal attention), i.e. assuming that cluster's efficiency. Neither figure has been measured
#   with zerotune: no GPU run has been made. By this plan a 24 GB GPU holds every row.
#
#   --chat    the -Instruct model, GSM8K as {"messages": [...]} rows rendered with its chat
#             template, loss on the assistant turns only (no tokens.json)
#
# Llama-3.x and Qwen2.5 folders carry a tokenizer.json and no tokenizer.model: training them needs
# the tokenizer.json reader. Environment as run_llama.sh: MODEL (overrides the Hub id), DATA_DIR
# (default data/gsm8k, data/gsm8k-chat with --chat), GSM8K_DIR, OUTPUT_DIR (default runs/NAME),
# HOSTFILE, ZEROTUNE, MPIRUN.
set -euo pipefail
cd "$(dirname "$0")/.."

name=""
chat=0
as_test=()
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) name="$2"; shift 2 ;;
    --chat) chat=1; shift ;;
    --as-test) as_test=(--as-test); shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_family.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

ranks=16
per_device=16
case "$name" in
  llama3.1-8b) hub=meta-llama/Llama-3.1-8B ;;
  llama3.2-3b) hub=meta-llama/Llama-3.2-3B ;;
  llama3.2-1b) hub=meta-llama/Llama-3.2-1B ;;
  qwen2.5-7b) hub=Qwen/Qwen2.5-7B ;;
  mistral-7b) hub=mistralai/Mistral-7B-v0.1 ;;
  *) echo "run_family.sh: --model must be llama3.1-8b, llama3.2-3b, llama3.2-1b, qwen2.5-7b or" \
          "mistral-7b, got '${name}'" >&2; exit 2 ;;
esac
if [[ "$chat" -eq 1 && "$name" == mistral-7b ]]; then
  hub=mistralai/Mistral-7B-Instruct-v0.2  # v0.1's base has no chat template; v0.2 is most used
elif [[ "$chat" -eq 1 ]]; then
  hub="$hub-Instruct"
fi

zerotune="${ZEROTUNE:-build/zerotune}"
model="${MODEL:-$hub}"
format=markers
suffix=""
if [[ "$chat" -eq 1 ]]; then
  format=chat
  suffix=-chat
fi
data_dir="${DATA_DIR:-data/gsm8k$suffix}"
output_dir="${OUTPUT_DIR:-runs/$name$suffix}"
[[ -x "$zerotune" ]] || { echo "run_family.sh: $zerotune not built (scripts/build.sh)" >&2; exit 1; }

source scripts/gsm8k_data.sh
if [[ "$dry_run" -eq 0 ]]; then
  prepare_gsm8k "$data_dir" "$format" "$zerotune" run_family.sh
fi

launcher=(${MPIRUN:-mpirun})
if [[ "${launcher[0]}" == "mpirun" ]]; then
  launcher+=(-np "$ranks" --bind-to none)
  [[ -n "${HOSTFILE:-}" ]] && launcher+=(--hostfile "$HOSTFILE")
  [[ "$(id -u)" -eq 0 ]] && launcher+=(--allow-run-as-root)
fi
tokens=()
[[ "$format" == markers ]] && tokens=(--special_token_path "$data_dir/tokens.json")
cmd=("${launcher[@]}" "$zerotune" train
     --model_name "$model" --train_path "$data_dir/train.jsonl" --test_path "$data_dir/test.jsonl"
     "${tokens[@]}" --output_dir "$output_dir"
     -nd "$ranks" -bs "$per_device" --eval-batch-size-per-device "$per_device"
     --ctx-len 512 --lr 5e-6 --num-epochs 1 --mx bf16 --save-dtype bf16
     --zero-stage 3 "${as_test[@]}" "${extra[@]}")
echo "run_family.sh: ${cmd[*]}" >&2
[[ "$dry_run" -eq 1 ]] && exit 0
exec "${cmd[@]}"
