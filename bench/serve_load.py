#!/usr/bin/python3
"""Load generator for `zerotune serve` (Python standard library only): N concurrent clients each
send streamed completions back to back; reported per concurrency level: aggregate tokens/s
(completion tokens of all clients over the wall time), time to first token, time per token after
the first (per request) and between streamed chunks (p50/p99; JSON lines), and the mean decode
batch the server ran (from /metrics); then a Markdown table, and with several levels the
throughput ratio of the highest level to the lowest.

Against a running server:
  bench/serve_load.py --url http://127.0.0.1:8000 --clients 1,8
Or starting one (port 0 on 127.0.0.1, stopped at the end; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment, OMP_NUM_THREADS as given):
  zerotune init --out /tmp/small --preset small
  OMP_NUM_THREADS=2 bench/serve_load.py --zerotune build/zerotune --model /tmp/small --clients 1,8
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

WORDS = ("the farmer sells apples and pears at the market each week while his three children "
         "count the coins in a small wooden box").split()


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def one_request(host, port, model, prompt, max_tokens):
    """Streams one completion; returns (tokens, seconds to first text, [seconds between texts],
    seconds per token after the first)."""
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    conn = http.client.HTTPConnection(host, port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    first, last, gaps, tokens = None, None, [], 0  # seconds: first text, last text, between
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
        if any(c.get("text") for c in event.get("choices", [])):
            now = time.perf_counter()
            if first is None:
                first = now - start
            else:
                gaps.append(now - last)
            last = now
    conn.close()
    # Time per output token after the first (vLLM's TPOT): chunks may carry several tokens.
    tpot = (last - start - first) / (tokens - 1) if first is not None and tokens > 1 else None
    return tokens, first, gaps, tpot


def run_level(host, port, model, clients, requests_per_client, max_tokens, prompt_words):
    results, errors = [], []
    lock = threading.Lock()

    def client(c):
        for r in range(requests_per_client):
            words = [WORDS[(c * 7 + r * 3 + i) % len(WORDS)] for i in range(prompt_words)]
            try:
                out = one_request(host, port, model, " ".join(words), max_tokens)
            except (OSError, RuntimeError, ValueError) as e:
                with lock:
                    errors.append(str(e))
                return
            with lock:
                results.append(out)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    tokens = sum(r[0] for r in results)
    ttft = [r[1] for r in results if r[1] is not None]
    gaps = [g for r in results for g in r[2]]
    tpot = [r[3] for r in results if r[3] is not None]
    return {"clients": clients, "requests": len(results), "tokens": tokens, "wall_s": wall,
            "tokens_per_s": tokens / wall, "ttft_p50_s": percentile(ttft, 50),
            "ttft_p99_s": percentile(ttft, 99), "tpot_p50_s": percentile(tpot, 50),
            "tpot_p99_s": percentile(tpot, 99), "itl_p50_s": percentile(gaps, 50),
            "itl_p99_s": percentile(gaps, 99)}


def metrics(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return {line.split()[0]: int(line.split()[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def start_server(args):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    log = open(args.server_log, "w")
    cmd = [args.zerotune, "serve", "--model", args.model, "--host", "127.0.0.1", "--port", "0",
           "--max-batch", str(args.max_batch), "--max-seq-len", str(args.max_seq_len),
           *args.server_args.split()]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 600
    while time.time() < deadline:
        with open(args.server_log) as f:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"zerotune serve exited with {proc.returncode}; see {args.server_log}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("zerotune serve did not start within 600 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="a running server")
    ap.add_argument("--zerotune", help="start `zerotune serve` from this binary ...")
    ap.add_argument("--model", help="... on this model folder")
    ap.add_argument("--served-model", default=None, help="model name in requests (default: none)")
    ap.add_argument("--clients", default="1,8", help="concurrency levels, e.g. 1,8")
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--server-args", default="", help="more flags for the started server, "
                    "e.g. '--device cuda --dtype bf16'")
    ap.add_argument("--server-log", default="serve_load_server.log")
    args = ap.parse_args()
    proc = None
    if args.url:
        u = urllib.parse.urlparse(args.url)
        host, port = u.hostname, u.port or 80
    elif args.zerotune and args.model:
        proc, port = start_server(args)
        host = "127.0.0.1"
    else:
        ap.error("give --url, or --zerotune and --model")
    try:
        levels = [int(c) for c in args.clients.split(",")]
        run_level(host, port, args.served_model, 1, 1, 4, args.prompt_words)  # warm-up
        rows = []
        for clients in levels:
            before = metrics(host, port)
            row = run_level(host, port, args.served_model, clients, args.requests_per_client,
                            args.max_tokens, args.prompt_words)
            after = metrics(host, port)
            steps = after["zerotune_decode_steps_total"] - before["zerotune_decode_steps_total"]
            decoded = after["zerotune_decoded_rows_total"] - before["zerotune_decoded_rows_total"]
            row["mean_batch"] = decoded / steps if steps else 0.0
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"| clients | tokens/s | TTFT p50 | TTFT p99 | per token p50 | per token p99 | "
              f"mean batch |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['clients']} | {r['tokens_per_s']:.1f} | {r['ttft_p50_s']:.2f} s | "
                  f"{r['ttft_p99_s']:.2f} s | {r['tpot_p50_s'] * 1000:.0f} ms | "
                  f"{r['tpot_p99_s'] * 1000:.0f} ms | {r['mean_batch']:.2f} |")
        if len(rows) > 1:
            ratio = rows[-1]["tokens_per_s"] / rows[0]["tokens_per_s"]
            print(f"throughput {rows[-1]['clients']} clients / {rows[0]['clients']}: {ratio:.2f}x")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
