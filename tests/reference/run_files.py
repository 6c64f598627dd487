"""Helpers the command-line checks share: their arguments and empty work folder, a tiny Llama
folder made by zerotune itself, a training run's metrics, and a digest of a folder's files."""

import argparse
import hashlib
import json
import os
import shutil
import subprocess


def check_args(*extra):
    """Parses --zerotune BIN --workdir DIR and the required flags named in `extra`; returns (args,
    the binary's absolute path, the work folder's), the work folder made empty."""
    ap = argparse.ArgumentParser()
    for flag in ("--zerotune", "--workdir") + extra:
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    z, w = os.path.abspath(args.zerotune), os.path.abspath(args.workdir)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    return args, z, w


def make_tiny_model(z, w):
    """Returns (data_dir, model_dir), or raises RuntimeError naming the failed command."""
    data, tok, model = f"{w}/data", f"{w}/tok", f"{w}/model"
    for cmd in ([z, "data", "synth", "--out", data, "--train", "24", "--test", "8", "--seed", "2"],
                [z, "tokenizer", "train", "--input", f"{data}/train.jsonl", "--vocab-size", "400",
                 "--out", tok, "--special_token_path", f"{data}/tokens.json"],
                [z, "init", "--out", model, "--preset", "tiny", "--dim", "48", "--n-layers", "2",
                 "--n-heads", "4", "--n-kv-heads", "2", "--hidden", "96", "--tokenizer", tok,
                 "--special_token_path", f"{data}/tokens.json", "--max-positions", "256"]):
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return data, model


def metrics(out):
    """The rows of OUT/metrics.jsonl."""
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def tree_digest(path):
    """sha256 over every file's relative path and bytes, in a fixed order."""
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, path).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()
