#!/usr/bin/python3
"""GSM8K evaluation throughput: `zerotune eval` examples/s decoding one sequence at a time
(--batch-size 1) and --batch N together, on the same rows, model and threads, one after the other
in the same invocation; prints both and their ratio, and checks that the predictions are the same
token for token (else the two runs did not do the same work).

  bench/eval_speed.py [--zerotune build/zerotune] [--preset small] [--batch 8] [--limit 16]
                      [--max-new-tokens 64] [--threads 2] [--repeat 1] [--workdir DIR]

The model is `zerotune init --preset P` with the Llama-2 tokenizer (../shared/data) and the GSM8K
special tokens, rows from `zerotune data synth`. Its weights are random, so every completion runs
to --max-new-tokens: the same amount of decoding per row in both runs. Run it with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, as both sides then see the same library settings.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(ROOT, "..", "shared", "data", "llama2-tokenizer", "tokenizer.model")


def run(cmd, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))}: {r.stderr.strip()[-400:]}")
    return r


def prepare(z, preset, w):
    data, model = f"{w}/data", f"{w}/model-{preset}"
    if not os.path.exists(f"{data}/test.jsonl"):
        run([z, "data", "synth", "--out", data, "--train", "8", "--test", "64", "--seed", "3"])
    if not os.path.exists(f"{model}/config.json"):
        run([z, "init", "--out", model, "--preset", preset, "--tokenizer", TOKENIZER,
             "--special_token_path", f"{data}/tokens.json", "--max-positions", "512"])
    return data, model


def timed_eval(z, model, data, batch, a, w, env):
    out = f"{w}/pred-b{batch}.jsonl"
    r = run([z, "eval", "--model", model, "--data", f"{data}/test.jsonl", "--limit", a.limit,
             "--batch-size", batch, "--max-new-tokens", a.max_new_tokens, "--threads", a.threads,
             "--out", out, "--json"], env)
    summary = json.loads(r.stdout)
    with open(out) as f:
        ids = [json.loads(line)["completion_ids"] for line in f]
    return summary["examples"] / summary["seconds"], ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zerotune", default=os.path.join(ROOT, "build", "zerotune"))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zerotune-eval-speed"))
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OMP_NUM_THREADS"] = str(a.threads)
    data, model = prepare(a.zerotune, a.preset, a.workdir)
    one, many = [], []
    for _ in range(a.repeat):  # alternating, so that both see the same machine
        rate_one, ids_one = timed_eval(a.zerotune, model, data, 1, a, a.workdir, env)
        rate_many, ids_many = timed_eval(a.zerotune, model, data, a.batch, a, a.workdir, env)
        if ids_one != ids_many:
            sys.exit("the batched predictions differ from the one-at-a-time ones")
        one.append(rate_one)
        many.append(rate_many)
    m1, mn = statistics.median(one), statistics.median(many)
    print(f"zerotune eval, preset {a.preset}, {a.limit} rows x {a.max_new_tokens} new tokens, "
          f"{a.threads} threads, median of {a.repeat}")
    print(f"  one at a time : {m1:8.3f} examples/s")
    print(f"  batch {a.batch:<7d} : {mn:8.3f} examples/s")
    print(f"  ratio         : {mn / m1:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
