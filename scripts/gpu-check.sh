#!/usr/bin/env bash
# Everything a GPU machine should verify, in one command from the repository root:
#   scripts/gpu-check.sh [--arch 90]
# It needs a C++ compiler, CMake, ninja and the CUDA toolkit there; the other build dependencies
# come from .gpu-vendor/debs (made by scripts/gpu-vendor.sh on a Debian machine, carried with the
# working tree) when the system lacks them. It builds the engine with the CUDA backend for this
# GPU's architecture (build-gpu/), runs the CUDA tests (each CUDA op against the CPU backend, f32
# and bf16 storage), and prints a summary table last. Exit status 0 only when every check ran and
# passed on a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
log_dir="${OUT:-$root/build-gpu/logs}"
mkdir -p "$log_dir"
start=$(date +%s)
arch=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

declare -a rows=()
row() { rows+=("$(printf '| %-34s | %-6s | %s |' "$1" "$2" "$3")"); }
summary() {
  echo
  echo "| check                              | result | detail |"
  echo "|------------------------------------|--------|--------|"
  printf '%s\n' "${rows[@]}"
  echo "total time: $(( $(date +%s) - start )) s"
}

# The machine.
gpu="none"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  [[ -z "$arch" ]] && arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')"
fi
[[ -z "$arch" ]] && arch=90
nvcc_bin="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
row "GPU" "$([[ $gpu == none ]] && echo NONE || echo ok)" "$gpu (sm_$arch)"
row "CUDA toolkit" "$([[ -x $nvcc_bin ]] && echo ok || echo FAIL)" \
    "$("$nvcc_bin" --version 2>/dev/null | tail -1)"

# Vendored dependencies.
deps_root="$root/.gpu-vendor/root"
if compgen -G ".gpu-vendor/debs/*.deb" >/dev/null; then
  mkdir -p "$deps_root"
  for deb in .gpu-vendor/debs/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$deps_root"
    else  # a .deb is an ar archive holding data.tar.*
      (tmp=$(mktemp -d) && cd "$tmp" && ar x "$root/$deb" && tar -xf data.tar.* -C "$deps_root" &&
       rm -rf "$tmp")
    fi
  done
  export LD_LIBRARY_PATH="$deps_root/usr/lib/x86_64-linux-gnu/openblas-openmp:$deps_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  row "vendored packages" "ok" "$(ls .gpu-vendor/debs | wc -l) from .gpu-vendor/debs"
else
  row "vendored packages" "-" "none (scripts/gpu-vendor.sh); using the system's"
fi

# Build.
build_start=$(date +%s)
if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DZEROTUNE_CUDA=ON \
     -DZEROTUNE_ENGINE_ONLY=ON -DZEROTUNE_DEPS_ROOT="$deps_root" \
     -DCMAKE_PREFIX_PATH="$deps_root/usr" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
     -DCMAKE_CUDA_COMPILER="$nvcc_bin" >"$log_dir/configure.log" 2>&1 &&
   cmake --build build-gpu -j "$(nproc)" >"$log_dir/build.log" 2>&1; then
  row "build (engine + CUDA tests)" "ok" "$(( $(date +%s) - build_start )) s, sm_$arch"
else
  row "build (engine + CUDA tests)" "FAIL" "see $log_dir/configure.log, build.log"
  tail -30 "$log_dir/configure.log" "$log_dir/build.log" 2>/dev/null
  summary
  exit 1
fi

# The whole tool's build (build-gpu-full/; needs `scripts/gpu-vendor.sh --full` where the system
# lacks its libraries): configured once, then each call builds the targets it names.
full_build() {
  if [[ ! -f build-gpu-full/build.ninja ]]; then
    PKG_CONFIG_LIBDIR="$deps_root/usr/lib/x86_64-linux-gnu/pkgconfig:$deps_root/usr/share/pkgconfig" \
    PKG_CONFIG_SYSROOT_DIR="$deps_root" \
    cmake -S . -B build-gpu-full -G Ninja -DCMAKE_BUILD_TYPE=Release -DZEROTUNE_CUDA=ON \
      -DZEROTUNE_TESTS=OFF -DZEROTUNE_DEPS_ROOT="$deps_root" -DCMAKE_PREFIX_PATH="$deps_root/usr" \
      -DOPENSSL_ROOT_DIR="$deps_root/usr" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DCMAKE_CUDA_COMPILER="$nvcc_bin" >"$log_dir/configure-full.log" 2>&1 || return 1
  fi
  cmake --build build-gpu-full -j "$(nproc)" --target "$@" >>"$log_dir/build-full.log" 2>&1
}
have_full_deps() {
  compgen -G ".gpu-vendor/debs/libsentencepiece-dev*.deb" >/dev/null || [[ $gpu == none ]]
}

# CUDA ops against the CPU backend.
status=0
ctest --test-dir build-gpu -L cuda --output-on-failure >"$log_dir/ctest.log" 2>&1 || status=1
passed=$(grep -c " Passed " "$log_dir/ctest.log" || true)
failed=$(grep -c -E "\*\*\*Failed|\(Failed\)" "$log_dir/ctest.log" || true)
skipped=$(grep -c "Skipped" "$log_dir/ctest.log" || true)
result=ok
[[ $status -ne 0 || $failed -ne 0 ]] && result=FAIL
[[ $result == ok && $passed -eq 0 ]] && result=SKIP
row "CUDA vs CPU: ops, model, 5-step runs" "$result" \
    "$passed passed, $failed failed, $skipped skipped (log: ctest.log)"
grep -E "\*\*\*Failed|Failure|Expected|Which is" "$log_dir/ctest.log" | head -20

# Throughput against transformers on Llama-2-7B layer shapes (D4096, F11008, H32), T=512.
# gpu_bench runs the trainer's step (train/train_step.h), so it is part of the whole tool's build.
if [[ $gpu != none ]] && ! { have_full_deps && full_build gpu_bench; }; then
  row "tokens/s vs transformers" "FAIL" "gpu_bench did not build (configure-full.log, build-full.log)"
elif [[ $gpu != none ]]; then
  if python3 bench/bench_gpu.py --gpu-bench build-gpu-full/gpu_bench --layers 4 --batch 8 --seq 512 \
       >"$log_dir/bench_gpu.log" 2>&1; then
    cat "$log_dir/bench_gpu.log" | head -8
    line=$(tail -1 "$log_dir/bench_gpu.log")
    mfu=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"{d['zerotune']['mfu']:.3f}\")" "$line")
    ratio=$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"{d['ratio']:.2f}\")" "$line")
    row "MFU, 7B layers x4, T=512 (>= 0.5)" "$(python3 -c "print('ok' if $mfu >= 0.5 else 'LOW')")" "$mfu"
    row "tokens/s vs transformers (>= 1.5x)" "$(python3 -c "print('ok' if $ratio >= 1.5 else 'LOW')")" "${ratio}x (bench_gpu.log)"
    # The attention kernels measured against each other in the same shapes: the tensor-core
    # flash kernel (default) and the CUDA-core one (ZEROTUNE_ATTENTION=simple).
    if ZEROTUNE_ATTENTION=simple build-gpu-full/gpu_bench --layers 4 --batch 8 --seq 512 --steps 5 \
         >"$log_dir/bench_simple_attention.log" 2>&1; then
      row "attention: flash vs simple kernel" "ok" "$(python3 - "$line" \
        "$(tail -1 "$log_dir/bench_simple_attention.log")" <<'PY'
import json, sys
flash = json.loads(sys.argv[1])["zerotune"]["tokens_per_s"]
simple = json.loads(sys.argv[2])["tokens_per_s"]
print(f"{flash:.0f} vs {simple:.0f} tokens/s = {flash / simple:.2f}x (7B layers x4, T=512)")
PY
)"
    else
      row "attention: flash vs simple kernel" "FAIL" "see $log_dir/bench_simple_attention.log"
    fi
  else
    row "tokens/s vs transformers" "FAIL" "see $log_dir/bench_gpu.log"
    tail -20 "$log_dir/bench_gpu.log"
  fi
else
  row "tokens/s vs transformers" "SKIP" "no GPU"
fi

# Our exported checkpoint in transformers: logits and losses.
python3 bench/check_hf_parity.py --hf-parity build-gpu/hf_parity --workdir build-gpu/parity \
  >"$log_dir/hf_parity.log" 2>&1
case $? in
  0) row "checkpoint in transformers: logits" "ok" "$(tail -1 "$log_dir/hf_parity.log")" ;;
  2) row "checkpoint in transformers: logits" "SKIP" "$(tail -1 "$log_dir/hf_parity.log")" ;;
  *) row "checkpoint in transformers: logits" "FAIL" "$(tail -1 "$log_dir/hf_parity.log") (hf_parity.log)"
     grep FAIL "$log_dir/hf_parity.log" | head -10 ;;
esac

# Llama-2-7B-shaped training through the ZeRO engine in one placement (bench/gpu_fit.cc): ok when
# the run completes and its peak GPU memory is at most the card's size (decimal GB, a margin below
# what an 80 GB or 141 GB card offers). Its JSON line goes to $log_dir/fit-<name>.log.
fit_status=0
fit_check() {  # name --offload nominal_gb label
  local name=$1 offload=$2 nominal=$3 label=$4 log="$log_dir/fit-$1.log" rc=0 verdict
  # gpu-check as a whole stays under 9 minutes: each run gets at most 180 s of what is left.
  local left=$(( 530 - ($(date +%s) - start) ))
  if (( left < 60 )); then
    row "$label" "SKIP" "time: ${left} s left of gpu-check's 9 minutes (run build-gpu-full/gpu_fit --offload $offload)"
    fit_status=1  # not verified
    return
  fi
  local limit=$(( left < 180 ? left : 180 ))
  timeout "$limit" build-gpu-full/gpu_fit --offload "$offload" >"$log" 2>&1 || rc=$?
  if [[ $rc == 0 ]] && verdict=$(python3 - "$log" "$nominal" <<'PY'
import json, sys
d = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
nominal = float(sys.argv[2])
peak = d["peak_gpu_bytes"] / 1e9
ok = peak <= nominal
print(("ok" if ok else "FAIL") + f" peak {peak:.1f} GB {'<=' if ok else '>'} {nominal:.0f} GB"
      f" (GPU {d['gpu_total_bytes'] / 1e9:.0f} GB), host RSS {d['peak_rss_bytes'] / 1e9:.0f} GB;"
      f" micro-batch {d['micro_batch_s']:.2f} s, optimizer step {d['optimizer_step_s']:.2f} s")
PY
); then
    row "$label" "${verdict%% *}" "${verdict#* }"
    [[ ${verdict%% *} == ok ]] || fit_status=1
    return
  fi
  fit_status=1
  case $rc in
    3) row "$label" "FAIL" "$(grep -m1 'out of memory' "$log" | cut -c1-200)" ;;
    124) row "$label" "FAIL" "timed out after $limit s (fit-$name.log)" ;;
    137) row "$label" "FAIL" "killed: host out of memory? (fit-$name.log)" ;;
    *) row "$label" "FAIL" "exit $rc: $(tail -1 "$log" | cut -c1-160) (fit-$name.log)" ;;
  esac
  tail -5 "$log"
}
# The GSM8K epoch of a 7B-shaped model, extrapolated from the run with the optimizer on the GPU
# when it completed, else from the offloaded one, against the old job's 14 min on 16 A10G.
fit_epoch_row() {
  local log
  for log in "$log_dir/fit-device.log" "$log_dir/fit-offload.log"; do
    [[ -f $log ]] && grep -q '^{' "$log" || continue
    row "GSM8K epoch, 7B (extrapolated)" "est" "$(python3 - "$log" <<'PY'
import json, sys
d = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
g = d["gsm8k"]
where = "optimizer offloaded" if d["offload"] == "cpu" else "optimizer on GPU"
print(f"1 GPU ({where}): {g['epoch_min_1gpu']:.1f} min vs 14 min on 16 A10G"
      f" = {g['speedup_1gpu']:.2f}x its speed; 16 GPUs, ideal: {g['epoch_min_ideal_16gpu']:.2f} min"
      f" = {g['speedup_ideal_16gpu']:.1f}x; {g['steps']} x ({g['micro_batches_per_step']} x"
      f" {d['micro_batch_s']:.2f} s + {d['optimizer_step_s']:.2f} s)")
PY
)"
    return
  done
  row "GSM8K epoch, 7B (extrapolated)" "SKIP" "no 7B run completed"
}
fit_rows() {  # result detail: the three rows when no 7B run was made
  row "7B fits 80 GB, optimizer offloaded" "$1" "$2"
  row "7B fits 141 GB, optimizer on GPU" "$1" "$2"
  row "GSM8K epoch, 7B (extrapolated)" "$1" "$2"
}

# The whole tool (needs `scripts/gpu-vendor.sh --full` where the system lacks its libraries):
# `zerotune train` on the GPU (bf16, and f32 with --mx no) against the CPU, same data and seed.
if have_full_deps; then
  full_start=$(date +%s)
  if full_build zerotune; then
    row "build (zerotune, CUDA)" "ok" "$(( $(date +%s) - full_start )) s"
    z=build-gpu-full/zerotune
    w=build-gpu-full/train-check
    rm -rf "$w" && mkdir -p "$w"
    if [[ $gpu == none ]]; then
      row "zerotune train --device cuda" "SKIP" "no GPU"
    elif "$z" data synth --out "$w/data" --train 96 --test 16 --seed 3 >"$log_dir/train.log" 2>&1 &&
       "$z" tokenizer train --input "$w/data/train.jsonl" --vocab-size 400 --out "$w/tok" \
         --special_token_path "$w/data/tokens.json" >>"$log_dir/train.log" 2>&1 &&
       "$z" init --out "$w/model" --preset tiny --tokenizer "$w/tok" \
         --special_token_path "$w/data/tokens.json" --max-positions 256 >>"$log_dir/train.log" 2>&1; then
      runs_ok=1
      # cpu, f32 and bf16 on the GPU; bf16 with the optimizer on the host thread (cpu, nvme); and
      # one rank launched torchrun-style (RANK/WORLD_SIZE/MASTER_*), which runs over NCCL. Two
      # micro-batches per step, an evaluation and a checkpoint after each epoch.
      for run in "cpu:--device cpu" "f32:--device cuda --mx no" "bf16:--device cuda --mx bf16" \
                 "offload:--device cuda --offload-optimizer cpu" \
                 "nvme:--device cuda --offload-optimizer nvme --nvme-path $w/nvme" \
                 "nccl:--device cuda"; do
        name=${run%%:*}
        launch=()
        [[ $name == nccl ]] && launch=(env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1
                                        MASTER_PORT=29533)
        # shellcheck disable=SC2086
        "${launch[@]}" "$z" train --model_name "$w/model" --train_path "$w/data/train.jsonl" \
          --test_path "$w/data/test.jsonl" --special_token_path "$w/data/tokens.json" \
          --output_dir "$w/$name" -bs 4 --grad_accum 2 --ctx-len 192 --num-epochs 2 --lr 3e-3 \
          --warmup-steps 2 --seed 7 ${run#*:} >>"$log_dir/train.log" 2>&1 ||
          { runs_ok=0; echo "gpu-check: the $name run failed" >>"$log_dir/train.log"; }
      done
      if [[ $runs_ok == 1 ]]; then
        verdict=$(python3 - "$w" <<'PY'
import json, sys
w = sys.argv[1]
def losses(run):
    rows = [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl") if l.strip()]
    return [r["loss"] for r in rows if r["type"] == "train"]
def diff(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b)) if len(a) == len(b) else float("inf")
cpu, f32, bf16 = losses("cpu"), losses("f32"), losses("bf16")
off, nvme, nccl = losses("offload"), losses("nvme"), losses("nccl")
d32, d16 = diff(f32, cpu), diff(bf16, cpu)
# The host optimizer (CPU AdamW on the f32 master, rounded to bf16 there) against the GPU's fused
# AdamW: the same element math, so the curves agree to bf16 rounding; nvme pages the same moments;
# one NCCL rank computes exactly what the single-rank run does.
doff, dnvme, dnccl = diff(off, bf16), diff(nvme, off), diff(nccl, bf16)
ok = (len(cpu) > 0 and d32 <= 1e-4 and d16 <= 5e-2 and doff <= 1e-2 and dnvme == 0.0
      and dnccl == 0.0)
print(("ok" if ok else "FAIL") + f" {len(cpu)} steps: cuda f32 vs cpu {d32:.1e} (tol 1e-4), "
      f"bf16 {d16:.1e} (5e-2); offload cpu vs bf16 {doff:.1e} (1e-2), nvme vs cpu offload "
      f"{dnvme:.1e} (0), 1 NCCL rank vs bf16 {dnccl:.1e} (0)")
PY
)
        row "zerotune train --device cuda" "${verdict%% *}" "${verdict#* }"
      else
        row "zerotune train --device cuda" "FAIL" "see $log_dir/train.log"
        tail -20 "$log_dir/train.log"
      fi
    else
      row "zerotune train --device cuda" "FAIL" "setup failed: see $log_dir/train.log"
    fi

    # Llama-2-7B shapes through the ZeRO engine (bench/gpu_fit.cc; bench/README.md): 1 warm-up
    # and 2 timed micro-batches of 16 x 512 tokens, then one optimizer step, per placement.
    rm -f "$log_dir"/fit-*.log
    if ! cmake --build build-gpu-full -j "$(nproc)" --target gpu_fit >"$log_dir/build-fit.log" 2>&1; then
      fit_rows FAIL "gpu_fit did not build (build-fit.log)"
      fit_status=1
      tail -20 "$log_dir/build-fit.log"
    elif [[ $gpu == none ]]; then
      fit_rows SKIP "no GPU"
    else
      fit_check offload cpu 80 "7B fits 80 GB, optimizer offloaded"
      gpu_mib="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')"
      [[ $gpu_mib =~ ^[0-9]+$ ]] || gpu_mib=0
      if (( gpu_mib * 1048576 >= 141000000000 )); then
        fit_check device none 141 "7B fits 141 GB, optimizer on GPU"
      else
        need=$(build-gpu-full/gpu_fit --plan --offload none 2>/dev/null | python3 -c \
          "import json,sys; print(f\"{json.loads(sys.stdin.read())['gpu_state_bytes']/1e9:.0f}\")")
        row "7B fits 141 GB, optimizer on GPU" "SKIP" \
            "this GPU has $(( gpu_mib * 1048576 / 1000000000 )) GB (< 141 GB); weights, gradients and AdamW state alone need ${need:-?} GB"
      fi
      fit_epoch_row
    fi
  else
    row "build (zerotune, CUDA)" "FAIL" "see $log_dir/configure-full.log, build-full.log"
    tail -20 "$log_dir/configure-full.log" "$log_dir/build-full.log"
    fit_rows SKIP "the build failed"
  fi
else
  row "zerotune train --device cuda" "SKIP" "no full vendor set (scripts/gpu-vendor.sh --full)"
  fit_rows SKIP "no full vendor set"
fi

# `zerotune serve` on the GPU (the whole tool's build): 16 concurrent greedy completions decoded as
# one batch on the GPU (f32) give the CPU server's text (bench/serve_gpu_check.py, on the model the
# train check trained, else a tiny random one), and the aggregate tokens/s of 1 and 16 clients in
# bf16 on a gqa-preset model (bench/serve_load.py). On the GPU the decode step's products are
# cuBLASLt GEMMs, not batch-invariant to the last bit: the row says how many answers matched.
serve_row="zerotune serve --device cuda"
if [[ $gpu == none ]]; then
  row "$serve_row" "SKIP" "no GPU"
elif [[ ! -x build-gpu-full/zerotune ]]; then
  row "$serve_row" "SKIP" "zerotune was not built (no full vendor set, or its build failed)"
else
  z=build-gpu-full/zerotune
  sdir=build-gpu-full/serve-check
  rm -rf "$sdir" && mkdir -p "$sdir"
  model=build-gpu-full/train-check/cpu/epoch-1
  setup_ok=1
  if [[ ! -f $model/config.json ]]; then
    model="$sdir/model"
    { "$z" data synth --out "$sdir/data" --train 64 --test 8 --seed 5 &&
      "$z" tokenizer train --input "$sdir/data/train.jsonl" --vocab-size 400 --out "$sdir/tok" &&
      "$z" init --out "$model" --preset tiny --tokenizer "$sdir/tok" --max-positions 256; } \
      >"$log_dir/serve.log" 2>&1 || setup_ok=0
  fi
  if [[ $setup_ok == 1 ]] &&
     "$z" init --out "$sdir/gqa" --preset gqa --tokenizer "$model" --max-positions 512 \
       >>"$log_dir/serve.log" 2>&1 &&
     compare=$(timeout 600 python3 bench/serve_gpu_check.py --zerotune "$z" --model "$model" \
       --clients 16 --log-dir "$log_dir" 2>>"$log_dir/serve.log" | tail -1) &&
     load=$(timeout 600 python3 bench/serve_load.py --zerotune "$z" --model "$sdir/gqa" \
       --clients 1,16 --requests-per-client 2 --max-tokens 64 --server-args "--device cuda --dtype bf16" \
       --server-log "$log_dir/serve-load.log" 2>>"$log_dir/serve.log"); then
    verdict=$(python3 - "$compare" "$load" <<'PY'
import json, sys
compare = json.loads(sys.argv[1])
rates = {r["clients"]: r["tokens_per_s"]
         for r in (json.loads(line) for line in sys.argv[2].splitlines() if line.startswith("{"))}
ok = compare["equal_cpu"] == compare["clients"]
print(("ok" if ok else "FAIL") + f" {compare['equal_cpu']}/{compare['clients']} concurrent greedy "
      f"answers == CPU (f32; {compare['equal_alone']} == alone); bf16 tokens/s: 1 client "
      f"{rates.get(1, 0):.0f}, 16 clients {rates.get(16, 0):.0f} "
      f"({rates.get(16, 0) / max(rates.get(1, 0), 1e-9):.1f}x)")
PY
)
    row "$serve_row" "${verdict%% *}" "${verdict#* }"
  else
    row "$serve_row" "FAIL" "see $log_dir/serve.log, serve-*.log"
    tail -20 "$log_dir/serve.log"
  fi
fi

# LoRA on the GPU (the whole tool's build): `train --lora` on CUDA (f32, bf16) against the CPU, and
# with peft and transformers installed, the adapter folder loaded by PeftModel.from_pretrained.
lora_row="zerotune train --lora --device cuda"
if [[ $gpu == none ]]; then
  row "$lora_row" "SKIP" "no GPU"
elif [[ ! -x build-gpu-full/zerotune ]]; then
  row "$lora_row" "SKIP" "zerotune was not built (no full vendor set, or its build failed)"
else
  timeout 900 python3 bench/lora_gpu_check.py --zerotune build-gpu-full/zerotune \
    --workdir build-gpu-full/lora-check >"$log_dir/lora.log" 2>&1
  lora_status=$?
  lora_summary=$(tail -1 "$log_dir/lora.log" | python3 -c \
    "import json,sys; print(json.loads(sys.stdin.read())['summary'])" 2>/dev/null || echo "see lora.log")
  case $lora_status in
    0) row "$lora_row" "ok" "$lora_summary" ;;
    2) row "$lora_row" "SKIP" "$lora_summary" ;;
    *) row "$lora_row" "FAIL" "$lora_summary (lora.log)"; tail -20 "$log_dir/lora.log" ;;
  esac
fi

# Built but not checkable on one GPU (NCCL refuses two ranks on one device): listed so that the
# table says what this run did not check.
row "NCCL over 2+ GPUs (ZeRO stages 1-3)" "N/A" "needs 2+ GPUs; the engine's paths ran on CPU ranks (distributed.zero)"

summary
[[ $gpu == none ]] && { echo "gpu-check: no GPU here: nothing was verified on a GPU" >&2; exit 1; }
[[ $result == ok && $fit_status == 0 ]] || exit 1
exit 0
