#!/usr/bin/python3
"""Batched decoding on a GPU against the CPU, through `zerotune serve` (scripts/gpu-check.sh):
the same model served on the CPU (f32) and on the GPU (--device cuda --dtype f32, by default);
N concurrent clients send greedy completions of different prompts and lengths to each, and each
GPU answer is compared with the CPU server's and with the GPU server's answer to the same request
alone. Servers listen on 127.0.0.1 (port 0) and are stopped at the end. Prints one JSON line:
  {"clients": N, "equal_cpu": k, "equal_alone": j, "differ_cpu": [...], ...}

  bench/serve_gpu_check.py --zerotune build-gpu-full/zerotune --model DIR [--clients 16]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

PROMPTS = ["The farmer sells", "Tom has 3 apples", "A train leaves the station at", "12 + 7 =",
           "Once upon a time", "The answer is", "Mary buys 4 pencils", "How many eggs"]


class Server:
    def __init__(self, zerotune, model, log_path, extra):
        self.log_path = log_path
        self.log = open(log_path, "w")
        cmd = [zerotune, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        while time.time() < deadline:
            with open(log_path) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"zerotune serve {' '.join(extra)} exited with "
                                   f"{self.proc.returncode}; see {log_path}")
            time.sleep(0.2)
        raise RuntimeError(f"zerotune serve did not start; see {log_path}")

    def complete(self, body):
        req = urllib.request.Request(f"{self.url}/v1/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read())["choices"][0]["text"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def concurrently(server, bodies):
    answers = [None] * len(bodies)

    def run(i):
        answers[i] = server.complete(bodies[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--device", default="cuda", help="the device compared with the CPU")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--log-dir", default=".")
    args = ap.parse_args()
    bodies = [{"prompt": f"{PROMPTS[i % len(PROMPTS)]} ({i})", "temperature": 0,
               "max_tokens": 4 + (i * 7) % args.max_tokens} for i in range(args.clients)]
    batch = ["--max-batch", str(args.clients)]
    cpu = Server(args.zerotune, args.model, os.path.join(args.log_dir, "serve-cpu.log"), batch)
    try:
        cpu_answers = concurrently(cpu, bodies)
    finally:
        cpu.close()
    dev = Server(args.zerotune, args.model, os.path.join(args.log_dir, f"serve-{args.device}.log"),
                 batch + ["--device", args.device, "--dtype", args.dtype])
    try:
        together = concurrently(dev, bodies)
        alone = [dev.complete(b) for b in bodies]
    finally:
        dev.close()
    print(json.dumps({
        "clients": args.clients, "device": args.device, "dtype": args.dtype,
        "equal_cpu": sum(a == b for a, b in zip(together, cpu_answers)),
        "equal_alone": sum(a == b for a, b in zip(together, alone)),
        "differ_cpu": [i for i, (a, b) in enumerate(zip(together, cpu_answers)) if a != b]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
