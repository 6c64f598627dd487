#!/usr/bin/python3
"""ZeRO stages side by side: tokens/s, memory per rank and communication per step.

  bench/bench_zero.py [--zerotune build/zerotune] [--ranks "1 2 4"] [--stages "0 1 2 3"]
                      [--preset small] [--steps 4] [--ctx-len 256] [--cores 2] [--workdir DIR]

Runs `zerotune train` on the preset's randomly initialised model and built-in data for a few
optimizer steps per (ranks, stage), each rank with cores/ranks OpenMP threads (at least 1), and
prints a Markdown table: global tokens/s (median of the steps after the first), the largest
per-rank parameter + gradient + optimizer + gather-slot bytes and peak RSS, and the bytes rank 0
handed to collectives per step as a multiple of the model's fp32 parameter bytes, next to ZeRO's
theory (stage 0: one all-reduce = 1x, here counted once; stages 1-2: reduce-scatter + all-gather =
2x; stage 3: two all-gathers + one reduce-scatter = 3x). One rank is always stage 0.
Uses ../shared/data/llama2-tokenizer when present (the real 32000-token vocabulary), else trains
a small tokenizer.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"bench_zero: {' '.join(map(str, cmd))} failed:\n{r.stderr[-2000:]}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zerotune", default=os.path.join(ROOT, "build", "zerotune"))
    ap.add_argument("--ranks", default="1 2 4")
    ap.add_argument("--stages", default="0 1 2 3")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--ctx-len", type=int, default=256)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    z = os.path.abspath(args.zerotune)
    w = args.workdir or tempfile.mkdtemp(prefix="bench-zero-")
    os.makedirs(w, exist_ok=True)
    data, model = f"{w}/data", f"{w}/model"
    if not os.path.exists(f"{model}/config.json"):
        run([z, "data", "synth", "--out", data, "--train", "64", "--test", "4", "--seed", "1"])
        shared = os.path.join(ROOT, "..", "shared", "data", "llama2-tokenizer", "tokenizer.model")
        tok = shared if os.path.exists(shared) else f"{w}/tok"
        if tok != shared:
            run([z, "tokenizer", "train", "--input", f"{data}/train.jsonl", "--vocab-size", "400",
                 "--out", tok])
        run([z, "init", "--out", model, "--preset", args.preset, "--tokenizer", tok,
             "--max-positions", str(max(512, args.ctx_len))])
    with open(f"{model}/config.json") as f:
        c = json.load(f)
    d, f_, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    hkv = c["num_key_value_heads"] * d // c["num_attention_heads"]
    layer = 2 * d * d + 2 * d * hkv + 3 * d * f_ + 2 * d
    params = V * d * (1 if c.get("tie_word_embeddings") else 2) + L * layer + d
    pbytes = 4 * params
    print(f"model: {args.preset} D={d} F={f_} L={L} V={V}, {params / 1e6:.1f}M parameters "
          f"({pbytes / 2**20:.0f} MiB fp32); ctx {args.ctx_len}, one packed row per rank per step; "
          f"{args.cores} cores", flush=True)
    theory = {0: 1.0, 1: 2.0, 2: 2.0, 3: 3.0}
    rows = []
    for n in [int(x) for x in args.ranks.split()]:
        for stage in [int(x) for x in args.stages.split()]:
            if n == 1 and stage != 0:
                continue
            out = f"{w}/run-n{n}-s{stage}"
            shutil.rmtree(out, ignore_errors=True)
            env = dict(os.environ, OMP_NUM_THREADS=str(max(1, args.cores // n)),
                       OMP_WAIT_POLICY="PASSIVE", OMPI_ALLOW_RUN_AS_ROOT="1",
                       OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
            cmd = [z, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
                   "--test_path", f"{data}/test.jsonl", "--output_dir", out, "-bs", "1",
                   "--ctx-len", str(args.ctx_len), "--max-steps", str(args.steps), "--mx", "no",
                   "--zero-stage", str(stage), "--param-persistence-threshold", "0",
                   "--save-dtype", "bf16", "--no-shuffle", "--packing"]
            if n > 1:
                cmd = ["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none",
                       "-x", "OMP_NUM_THREADS", "-x", "OMP_WAIT_POLICY"] + cmd
            run(cmd, env)
            with open(f"{out}/metrics.jsonl") as fh:
                train = [json.loads(x) for x in fh if '"train"' in x]
            with open(f"{out}/memory.json") as fh:
                mem = json.load(fh)
            later = train[1:] or train
            tps = statistics.median(r["tokens"] / r["step_time_s"] for r in later)
            held = max(mem["held_bytes"])
            rss = max(mem["peak_rss_bytes"])
            comm = (train[-1].get("comm_all_gather_bytes", 0) +
                    train[-1].get("comm_reduce_scatter_bytes", 0) +
                    train[-1].get("comm_all_reduce_bytes", 0))
            rows.append((n, stage, tps, held, rss, comm))
            print(f"  ranks {n} stage {stage}: {tps:.0f} tok/s, held {held / 2**20:.0f} MiB, "
                  f"peak RSS {rss / 2**20:.0f} MiB, comm {comm / pbytes:.2f}x params", flush=True)
    print()
    print("| ranks | stage | tokens/s | held per rank (MiB) | peak RSS per rank (MiB) | "
          "comm per step / param bytes | ZeRO theory |")
    print("|---|---|---|---|---|---|---|")
    for n, stage, tps, held, rss, comm in rows:
        th = "-" if n == 1 else f"{theory[stage]:.0f}x"
        cm = "-" if n == 1 else f"{comm / pbytes:.2f}x"
        print(f"| {n} | {stage} | {tps:.0f} | {held / 2**20:.0f} | {rss / 2**20:.0f} | {cm} | {th} |")


if __name__ == "__main__":
    main()
