#!/usr/bin/env bash
# Training-step throughput of zerotune against PyTorch, measured in the same run.
#
#   bench/bench_vs_pytorch.sh [--threads 2] [--presets "tiny small gqa"] [--steps 5]
#                             [--warmup 1] [--repeat 1] [--plain-malloc]
#   (ZEROTUNE=path overrides build/zerotune, for testing this script)
#
# For each preset runs `build/zerotune bench` and then the PyTorch reference
# (tests/reference/llama_ref.py bench, torch fp32: forward, backward, torch.optim.AdamW),
# both under the same environment, alternating --repeat times, and prints a table of
# medians over the repeats with the ratio. Builds nothing.
set -euo pipefail

threads=2
presets="tiny small gqa"
steps=5
warmup=1
repeat=1
plain_malloc=0

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --presets) presets="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --plain-malloc) plain_malloc=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_vs_pytorch: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for n in "$threads" "$steps" "$warmup" "$repeat"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "bench_vs_pytorch: '$n' is not a non-negative integer" >&2; exit 2; }
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
zerotune="${ZEROTUNE:-$root/build/zerotune}"
reference="$root/tests/reference/llama_ref.py"
py=/usr/bin/python3  # Debian's python: the one with python3-torch

if [[ ! -x "$zerotune" ]]; then
  echo "bench_vs_pytorch: $zerotune not found; run scripts/build.sh first" >&2
  exit 1
fi
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
  echo "bench_vs_pytorch: $py cannot import torch and numpy (apt-get install python3-torch python3-numpy)" >&2
  exit 1
fi

# PyTorch's best configuration on this kind of machine, applied to both programs alike:
# - OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning. PyTorch's best
#   configuration here: reported 36-48% faster than the default policy on the shared
#   2-core development machine (spinning threads likely lose time slices to other work);
#   with the machine otherwise idle the two policies measured within noise.
# - glibc.malloc.hugetlb=1: large malloc'd blocks get transparent huge pages. PyTorch's
#   CPU allocator returns its big activation and logits buffers to the OS every step,
#   and page faults are expensive in a VM; without it PyTorch's steps were 2-3x slower
#   on the 2-core development VM (pass --plain-malloc to measure that).
export OMP_NUM_THREADS="$threads"
export OMP_WAIT_POLICY=PASSIVE
if [[ "$plain_malloc" == 0 ]]; then
  export GLIBC_TUNABLES="glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0

# Runs a command, echoes its output to stderr, appends "<impl> <preset> <last JSON line>".
run_one() {
  local impl="$1" preset="$2"; shift 2
  local out line
  if out="$("$@" 2>&1)"; then
    line="$(printf '%s\n' "$out" | grep '^[[:space:]]*{' | tail -n 1 || true)"
  else
    line=""
    echo "bench_vs_pytorch: $impl --preset $preset failed:" >&2
    printf '%s\n' "$out" | tail -n 5 >&2
    status=1
  fi
  [[ -n "$line" ]] || line='{}'
  echo "$impl $preset: $line" >&2
  printf '%s %s %s\n' "$impl" "$preset" "$line" >>"$results"
}

echo "threads=$threads steps=$steps warmup=$warmup OMP_WAIT_POLICY=$OMP_WAIT_POLICY" \
  "GLIBC_TUNABLES=${GLIBC_TUNABLES:-}" >&2
for preset in $presets; do
  for ((r = 0; r < repeat; r++)); do
    run_one zerotune "$preset" "$zerotune" bench --preset "$preset" --threads "$threads" \
      --steps "$steps" --warmup "$warmup" --dtype fp32
    run_one pytorch "$preset" "$py" "$reference" bench --preset "$preset" --threads "$threads" \
      --steps "$steps" --warmup "$warmup"
  done
done

"$py" - "$results" "$threads" "$repeat" <<'EOF' || status=1
import json, statistics, sys

rows = {}
order = []
for line in open(sys.argv[1]):
    impl, preset, text = line.rstrip("\n").split(" ", 2)
    try:
        rec = json.loads(text)
    except ValueError:
        rec = {}
    if preset not in rows:
        rows[preset] = {}
        order.append(preset)
    rows[preset].setdefault(impl, []).append(rec)

def median_record(records):
    """Field-wise median over the repeats; a failed repeat (no tokens_per_s) fails all."""
    if not records or any(not isinstance(r.get("tokens_per_s"), (int, float)) for r in records):
        return {}
    keys = set.intersection(*(set(r) for r in records))
    return {k: statistics.median(r[k] for r in records) for k in keys
            if all(isinstance(r[k], (int, float)) for r in records)}

def num(rec, key, fmt):
    v = rec.get(key)
    return fmt.format(v) if isinstance(v, (int, float)) else "-"

header = ["preset", "params", "zerotune tok/s", "pytorch tok/s", "ratio", "zerotune mfu",
          "zerotune MB", "pytorch MB"]
table = []
bad = False
for preset in order:
    zt = median_record(rows[preset].get("zerotune", []))
    pt = median_record(rows[preset].get("pytorch", []))
    zt_tps, pt_tps = zt.get("tokens_per_s"), pt.get("tokens_per_s")
    ratio = f"{zt_tps / pt_tps:.2f}x" if zt_tps and pt_tps else "-"
    params = num(pt, "params", "{:,.0f}")
    if zt.get("params") is not None and pt.get("params") is not None and zt["params"] != pt["params"]:
        params = f"{zt['params']:,.0f} vs {pt['params']:,.0f} (MISMATCH)"
        bad = True
    if not zt_tps or not pt_tps:
        bad = True
    table.append([preset, params, num(zt, "tokens_per_s", "{:.1f}"), num(pt, "tokens_per_s", "{:.1f}"),
                  ratio, num(zt, "mfu", "{:.4g}"), num(zt, "peak_rss_mb", "{:.0f}"),
                  num(pt, "peak_rss_mb", "{:.0f}")])

widths = [max(len(r[i]) for r in [header] + table) for i in range(len(header))]
print(f"fp32 training step (forward + backward + AdamW), {sys.argv[2]} threads, "
      f"median of {sys.argv[3]} alternating run(s); ratio = zerotune / pytorch")
for r in [header, ["-" * w for w in widths]] + table:
    print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
sys.exit(1 if bad else 0)
EOF
exit "$status"
