#!/usr/bin/python3
"""`zerotune generate --adapter` on a tiny model made here, against `zerotune merge`:

  same      generate --model BASE --adapter A gives the ids and text of generate --model MERGED,
            MERGED = zerotune merge --base BASE --adapter A (greedy, several prompts)
  changes   the adapter (nonzero B) changes the continuation: it differs from the base's, and
            two adapters differ from each other
  refusals  an adapter of another base (names the tensor) or of another peft_type (names the
            field): exit status 1, one line

  check_lora_generate.py --zerotune BIN --workdir DIR
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, write_random_adapter  # noqa: E402

report = Report(52)
check = report.check
PROMPTS = ["<START_Q>Tom has 3 apples and buys 5 more.<END_Q><START_A>", "The farmer", "12 + 7 = "]
NEW_TOKENS = 20


def generate(z, model, prompt, adapter=None):
    """(text, new ids) of greedy `zerotune generate`; raises RuntimeError with its stderr."""
    cmd = [z, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens",
           str(NEW_TOKENS), "--print-ids"] + (["--adapter", adapter] if adapter else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])}: {r.stderr.strip()[-300:]}")
    return r.stdout[:-1], json.loads(r.stderr.strip().splitlines()[-1])["ids"]


def merge(z, model, adapter, out):
    r = subprocess.run([z, "merge", "--base", model, "--adapter", adapter, "--out", out],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"merge {adapter}: {r.stderr.strip()[-300:]}")
    return out


def check_same_as_merged(z, model, w):
    adapters = [write_random_adapter(model, f"{w}/adapter_{i}", seed=i + 1) for i in range(2)]
    base = [generate(z, model, p) for p in PROMPTS]
    per_adapter = []
    for i, adapter in enumerate(adapters):
        merged = merge(z, model, adapter, f"{w}/merged_{i}")
        got = [generate(z, model, p, adapter) for p in PROMPTS]
        want = [generate(z, merged, p) for p in PROMPTS]
        check(got == want, f"adapter {i}: generate --adapter == merged model",
              f"{got[0][0]!r} vs {want[0][0]!r}" if got != want else "")
        differ = sum(g[1] != b[1] for g, b in zip(got, base))
        check(differ == len(PROMPTS), f"adapter {i}: continuation differs from the base's",
              f"{differ} of {len(PROMPTS)} prompts differ")
        per_adapter.append(got)
    check(per_adapter[0] != per_adapter[1], "two adapters give different continuations")


def check_refusals(z, model, w):
    wrong = write_random_adapter(model, f"{w}/wrong_shape", seed=5, wrong_shape="v_proj")
    other = write_random_adapter(model, f"{w}/other_type", seed=6)
    with open(f"{other}/adapter_config.json", "w") as f:
        json.dump({"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM"}, f)
    cases = [("an adapter of another base", wrong, ("layers.0.self_attn.v_proj.lora_B.weight",
                                                    "expected")),
             ("another peft_type", other, ("peft_type", "PREFIX_TUNING")),
             ("a missing adapter folder", f"{w}/no_such_adapter", ("no_such_adapter",))]
    for name, adapter, needles in cases:
        r = subprocess.run([z, "generate", "--model", model, "--prompt", "x", "--adapter",
                            adapter], capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and not r.stdout and
              all(n in lines[0] for n in needles), f"generate refuses {name}",
              f"{r.returncode}: {r.stderr.strip()[-200:]!r}")


def main():
    _, z, w = check_args()
    try:
        _, model = make_tiny_model(z, w)
        check_same_as_merged(z, model, w)
        check_refusals(z, model, w)
    except RuntimeError as e:
        check(False, "generate checks ran to the end", str(e))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
