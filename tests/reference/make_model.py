#!/usr/bin/python3
"""Writes random Llama models in Hugging Face layout, and random batches, for tests.

Model:
  make_model.py --out DIR --dim D --layers L --heads H --kv-heads K --hidden F --vocab V
                [--tie] [--dtype f32|bf16|f16] [--shards N] [--seed S] [--rope-theta X]
                [--head-dim X] [--rms-eps X] [--arch LlamaForCausalLM|MistralForCausalLM]
Batch (JSONL, one {"input_ids": [...], "labels": [...]} per row):
  make_model.py --batch FILE --batch-size B --seq-len T --vocab V [--seed S]
                [--ignore-frac 0.2] [--no-pad]

Matrices are normal(0, 0.02); RMSNorm weights are 1 + 0.1 * normal so that their
gradients are not trivially symmetric. Values are drawn in fp32 from a seeded generator
and then cast to --dtype.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

_DTYPES = {"f32": (torch.float32, "float32"), "bf16": (torch.bfloat16, "bfloat16"),
           "f16": (torch.float16, "float16")}
_ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}


def hf_config(args):
    cfg = {
        "architectures": [args.arch],
        "model_type": _ARCHS[args.arch],
        "hidden_size": args.dim,
        "intermediate_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "vocab_size": args.vocab,
        "rms_norm_eps": args.rms_eps,
        "rope_theta": args.rope_theta,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": bool(args.tie),
        "hidden_act": "silu",
        "torch_dtype": _DTYPES[args.dtype][1],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "attention_bias": False,
    }
    if args.head_dim is not None:
        cfg["head_dim"] = args.head_dim
    if args.arch == "MistralForCausalLM":
        cfg["sliding_window"] = 4096
    return cfg


def random_weights(cfg, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in llama_ref.parameter_shapes(cfg).items():
        w = torch.randn(shape, generator=gen, dtype=torch.float32)
        w = 1.0 + 0.1 * w if len(shape) == 1 else 0.02 * w
        weights[name] = w.to(dtype)
    return weights


def split_shards(weights, n):
    """Consecutive groups of roughly equal bytes, in parameter order."""
    names = list(weights)
    total = sum(weights[k].numel() * weights[k].element_size() for k in names)
    shards, current, acc = [], [], 0
    for k in names:
        current.append(k)
        acc += weights[k].numel() * weights[k].element_size()
        if acc >= total * (len(shards) + 1) / n and len(shards) < n - 1:
            shards.append(current)
            current = []
    shards.append(current)
    while len(shards) < n:  # more shards than tensors worth of bytes: allow empty tail shards
        shards.append([])
    return shards, total


def write_model(args):
    os.makedirs(args.out, exist_ok=True)
    config = hf_config(args)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    cfg = llama_ref.load_config(args.out)
    weights = random_weights(cfg, args.seed, _DTYPES[args.dtype][0])
    meta = {"format": "pt"}
    if args.shards <= 1:
        llama_ref.write_safetensors(os.path.join(args.out, "model.safetensors"), weights, meta)
        return
    shards, total = split_shards(weights, args.shards)
    weight_map = {}
    for k, names in enumerate(shards, 1):
        fname = f"model-{k:05d}-of-{args.shards:05d}.safetensors"
        llama_ref.write_safetensors(os.path.join(args.out, fname), {n: weights[n] for n in names}, meta)
        weight_map.update({n: fname for n in names})
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_batch(args):
    """Random ids; labels = ids with random positions and, in every other row, a padded
    tail set to -100 (the tail's input ids are 0, as a collator padding with 0 writes)."""
    gen = torch.Generator().manual_seed(args.seed)
    B, T = args.batch_size, args.seq_len
    ids = torch.randint(0, args.vocab, (B, T), generator=gen)
    labels = ids.clone()
    ignore = torch.rand((B, T), generator=gen) < args.ignore_frac
    labels[ignore] = -100
    if not args.no_pad and T >= 4:
        for b in range(1, B, 2):
            pad = int(torch.randint(1, T // 4 + 1, (1,), generator=gen))
            ids[b, T - pad :] = 0
            labels[b, T - pad :] = -100
    labels[0, 1] = ids[0, 1]  # at least one counted position in every batch
    with open(args.batch, "w") as f:
        for b in range(B):
            f.write(json.dumps({"input_ids": ids[b].tolist(), "labels": labels[b].tolist()}) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="model folder to write")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--tie", action="store_true")
    ap.add_argument("--dtype", choices=sorted(_DTYPES), default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--head-dim", type=int)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--arch", choices=sorted(_ARCHS), default="LlamaForCausalLM")
    ap.add_argument("--batch", help="batch JSONL to write (instead of a model)")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--ignore-frac", type=float, default=0.2)
    ap.add_argument("--no-pad", action="store_true", help="no padded tails")
    args = ap.parse_args(argv)
    if args.vocab is None:
        ap.error("--vocab is required")
    if args.batch:
        if args.out or args.batch_size is None or args.seq_len is None:
            ap.error("batch mode: --batch FILE --batch-size B --seq-len T --vocab V (and no --out)")
        write_batch(args)
    elif args.out:
        required = ("dim", "layers", "heads", "hidden")
        missing = [r for r in required if getattr(args, r) is None]
        if missing:
            ap.error("model mode needs " + ", ".join("--" + m for m in missing))
        if args.kv_heads is None:
            args.kv_heads = args.heads
        write_model(args)
    else:
        ap.error("give --out DIR (model) or --batch FILE (batch)")


if __name__ == "__main__":
    main()
