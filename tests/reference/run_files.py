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


def write_random_adapter(model, out, seed, targets=("q_proj", "v_proj", "down_proj"), r=4,
                         alpha=8, wrong_shape=None):
    """A PEFT LoRA folder for the model folder `model`, without torch: adapter_config.json and an
    f32 adapter_model.safetensors with A and B both drawn uniform in [-0.3, 0.3) from `seed` (a
    nonzero B, so the adapter changes what the model says). `wrong_shape`: the name of a module
    whose B gets one output row too many (an adapter of another base)."""
    import random
    import struct
    with open(os.path.join(model, "config.json")) as f:
        c = json.load(f)
    d, f_dim = c["hidden_size"], c["intermediate_size"]
    dh = c.get("head_dim") or d // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * dh, c["num_key_value_heads"] * dh
    io = {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
          "gate_proj": (d, f_dim), "up_proj": (d, f_dim), "down_proj": (f_dim, d)}
    rng = random.Random(seed)
    tensors = {}
    for layer in range(c["num_hidden_layers"]):
        for module in targets:
            n_in, n_out = io[module]
            n_out += 1 if module == wrong_shape else 0
            part = "mlp" if module in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            prefix = f"base_model.model.model.layers.{layer}.{part}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = ([r, n_in], n_in * r)
            tensors[f"{prefix}.lora_B.weight"] = ([n_out, r], n_out * r)
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        shape, count = tensors[name]
        raw = struct.pack(f"<{count}f", *(rng.uniform(-0.3, 0.3) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha,
                   "lora_dropout": 0.0, "target_modules": list(targets), "bias": "none",
                   "base_model_name_or_path": model}, f, indent=2)
    return out
