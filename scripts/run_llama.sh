#!/usr/bin/env bash
# Fine-tunes Llama-2 on GSM8K with the settings of the job zerotune replaces, per model size.
#
#   scripts/run_llama.sh --size 7b|13b|70b [--as-test] [--dry-run] [-- extra train flags]
#
#   7b, 13b: 16 per device on 16 ranks, ZeRO-3
#   70b:     8 per device on 32 ranks, ZeRO-3, AdamW state paged to NVMe ($NVME_PATH)
#   All: context 512, lr 5e-6, bf16 checkpoints, activation checkpointing, one epoch checkpoint
#   per epoch in $OUTPUT_DIR.
#
# Environment:
#   MODEL        model folder, s3:// prefix or Hub id (default meta-llama/Llama-2-<size>-hf)
#   DATA_DIR     GSM8K in the fine-tuning format (default data/gsm8k); created when absent from
#                GSM8K_DIR (GSM8K's own train.jsonl/test.jsonl), downloaded when neither exists
#   OUTPUT_DIR   default runs/llama-2-<size>
#   HOSTFILE     an MPI hostfile for several machines (default: every rank on this machine)
#   NVME_PATH    70b: folder on a fast local disk (default /local_disk0/zerotune-nvme)
#   ZEROTUNE     the binary (default build/zerotune)
#   MPIRUN       the launcher (default mpirun; e.g. "srun --mpi=pmix" under Slurm)
set -euo pipefail
cd "$(dirname "$0")/.."

size=""
as_test=()
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --as-test) as_test=(--as-test); shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_llama.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

case "$size" in
  7b|13b) ranks=16; per_device=16; offload=(--offload-optimizer none) ;;
  70b) ranks=32; per_device=8
       offload=(--offload-optimizer nvme --nvme-path "${NVME_PATH:-/local_disk0/zerotune-nvme}") ;;
  *) echo "run_llama.sh: --size must be 7b, 13b or 70b, got '${size}'" >&2; exit 2 ;;
esac

zerotune="${ZEROTUNE:-build/zerotune}"
model="${MODEL:-meta-llama/Llama-2-${size}-hf}"
data_dir="${DATA_DIR:-data/gsm8k}"
output_dir="${OUTPUT_DIR:-runs/llama-2-${size}}"
[[ -x "$zerotune" ]] || { echo "run_llama.sh: $zerotune not built (scripts/build.sh)" >&2; exit 1; }

# GSM8K in the fine-tuning format, made once.
source scripts/gsm8k_data.sh
prepare_gsm8k "$data_dir" markers "$zerotune" run_llama.sh

launcher=(${MPIRUN:-mpirun})
if [[ "${launcher[0]}" == "mpirun" ]]; then
  launcher+=(-np "$ranks" --bind-to none)
  [[ -n "${HOSTFILE:-}" ]] && launcher+=(--hostfile "$HOSTFILE")
  [[ "$(id -u)" -eq 0 ]] && launcher+=(--allow-run-as-root)
fi
cmd=("${launcher[@]}" "$zerotune" train
     --model_name "$model" --train_path "$data_dir/train.jsonl" --test_path "$data_dir/test.jsonl"
     --special_token_path "$data_dir/tokens.json" --output_dir "$output_dir"
     -nd "$ranks" -bs "$per_device" --eval-batch-size-per-device "$per_device"
     --ctx-len 512 --lr 5e-6 --num-epochs 1 --mx bf16 --save-dtype bf16
     --zero-stage 3 "${offload[@]}" "${as_test[@]}" "${extra[@]}")
echo "run_llama.sh: ${cmd[*]}" >&2
[[ "$dry_run" -eq 1 ]] && exit 0
exec "${cmd[@]}"
