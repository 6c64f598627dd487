# Sourced by the run_*.sh scripts: GSM8K in the fine-tuning format, made once.
#
#   prepare_gsm8k DATA_DIR FORMAT ZEROTUNE PROG
#
# FORMAT markers: train.jsonl, test.jsonl and tokens.json ({"input": "<START_Q>...<END_A>"});
# chat: train.jsonl and test.jsonl of {"messages": [user, assistant]}. Converted from GSM8K_DIR
# (GSM8K's own train.jsonl/test.jsonl, default data/gsm8k-raw), downloaded there when absent.
prepare_gsm8k() {
  local data_dir="$1" format="$2" zerotune="$3" prog="$4"
  local need=("$data_dir/train.jsonl" "$data_dir/test.jsonl")
  [[ "$format" == markers ]] && need+=("$data_dir/tokens.json")
  local missing=0 f
  for f in "${need[@]}"; do [[ -f "$f" ]] || missing=1; done
  [[ "$missing" -eq 0 ]] && return 0
  local raw="${GSM8K_DIR:-data/gsm8k-raw}"
  if [[ ! -f "$raw/train.jsonl" || ! -f "$raw/test.jsonl" ]]; then
    local base="https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data"
    echo "$prog: downloading GSM8K into $raw" >&2
    mkdir -p "$raw"
    local split
    for split in train test; do
      if ! curl -fsSL --retry 3 -o "$raw/$split.jsonl.part" "$base/$split.jsonl"; then
        rm -f "$raw/$split.jsonl.part"
        echo "$prog: cannot download GSM8K ($base/$split.jsonl): no network here?" >&2
        echo "  copy GSM8K's train.jsonl and test.jsonl into $raw (or set GSM8K_DIR), or use" >&2
        echo "  '$zerotune data synth --format $format --out $data_dir' for the built-in offline problems" >&2
        return 1
      fi
      mv "$raw/$split.jsonl.part" "$raw/$split.jsonl"
    done
  fi
  "$zerotune" data gsm8k --input "$raw" --out "$data_dir" --format "$format"
}
