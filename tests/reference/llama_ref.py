#!/usr/bin/python3
"""Independent PyTorch reference for zerotune's Llama numerics and speed.

Plain torch (no transformers): Hugging Face LlamaForCausalLM semantics in fp32.
Run with Debian's interpreter, /usr/bin/python3 (python3-torch, python3-numpy).

  llama_ref.py grads --model DIR --batch F.jsonl --out G.safetensors
  llama_ref.py steps --model DIR --batch F.jsonl --steps K --lr LR --weight-decay WD
  llama_ref.py bench --preset tiny|small|gqa --threads N --steps S --warmup W [--tie]

`grads` and `steps` print exactly what `zerotune debug grads|steps` prints; `bench`
prints one JSON line with tokens_per_s and step_s_median.
"""

import argparse
import json
import math
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# safetensors (https://github.com/huggingface/safetensors#format)
# ---------------------------------------------------------------------------

# dtype name -> (numpy dtype used to read/write the raw bytes, torch dtype)
_ST_DTYPES = {
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16),  # no numpy bf16: move the bits as int16
    "I32": (np.int32, torch.int32),
    "I64": (np.int64, torch.int64),
    "F64": (np.float64, torch.float64),
}
_TORCH_TO_ST = {tdt: name for name, (_, tdt) in _ST_DTYPES.items()}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def read_safetensors(path):
    """Returns {name: tensor} in the file's dtypes (and the __metadata__ dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"[read_safetensors] {path}: file shorter than 8 bytes")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > _MAX_HEADER_BYTES or 8 + header_len > len(blob):
        raise ValueError(f"[read_safetensors] {path}: invalid header length {header_len}")
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len :]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _ST_DTYPES:
            raise ValueError(f"[read_safetensors] {path}: {name} has unsupported dtype {dtype}")
        np_dtype, torch_dtype = _ST_DTYPES[dtype]
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        numel = math.prod(shape)
        if not (0 <= begin <= end <= len(data)) or end - begin != numel * np.dtype(np_dtype).itemsize:
            raise ValueError(
                f"[read_safetensors] {path}: {name} offsets [{begin}, {end}) do not fit "
                f"shape {shape} {dtype} in {len(data)} data bytes"
            )
        array = np.frombuffer(data[begin:end], dtype=np_dtype).copy().reshape(shape)
        t = torch.from_numpy(array)
        if torch_dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        tensors[name] = t
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} keeping each tensor's dtype; header padded to 8 bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _TORCH_TO_ST:
            raise ValueError(f"[write_safetensors] {name}: unsupported dtype {t.dtype}")
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {
            "dtype": _TORCH_TO_ST[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for raw in chunks:
            f.write(raw)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Hugging Face folder
# ---------------------------------------------------------------------------


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    cfg = {
        "dim": int(raw["hidden_size"]),
        "hidden": int(raw["intermediate_size"]),
        "layers": int(raw["num_hidden_layers"]),
        "heads": int(raw["num_attention_heads"]),
        "vocab": int(raw["vocab_size"]),
        "eps": float(raw.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(raw.get("rope_theta", 10000.0)),
        "tie": bool(raw.get("tie_word_embeddings", False)),
        "sliding_window": raw.get("sliding_window"),
    }
    cfg["kv_heads"] = int(raw.get("num_key_value_heads") or cfg["heads"])
    cfg["head_dim"] = int(raw.get("head_dim") or cfg["dim"] // cfg["heads"])
    if raw.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{model_dir}: hidden_act {raw['hidden_act']} is not silu")
    if raw.get("rope_scaling"):
        raise ValueError(f"{model_dir}: rope_scaling is not supported by the reference")
    if cfg["heads"] % cfg["kv_heads"] != 0:
        raise ValueError(f"{model_dir}: {cfg['heads']} heads not a multiple of {cfg['kv_heads']} kv heads")
    return cfg


def parameter_shapes(cfg):
    """HF names -> shapes ([out_features, in_features] for projections)."""
    D, F_, V, Dh = cfg["dim"], cfg["hidden"], cfg["vocab"], cfg["head_dim"]
    H, Hkv = cfg["heads"], cfg["kv_heads"]
    shapes = {"model.embed_tokens.weight": [V, D]}
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = [D]
        shapes[p + "self_attn.q_proj.weight"] = [H * Dh, D]
        shapes[p + "self_attn.k_proj.weight"] = [Hkv * Dh, D]
        shapes[p + "self_attn.v_proj.weight"] = [Hkv * Dh, D]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * Dh]
        shapes[p + "post_attention_layernorm.weight"] = [D]
        shapes[p + "mlp.gate_proj.weight"] = [F_, D]
        shapes[p + "mlp.up_proj.weight"] = [F_, D]
        shapes[p + "mlp.down_proj.weight"] = [D, F_]
    shapes["model.norm.weight"] = [D]
    if not cfg["tie"]:
        shapes["lm_head.weight"] = [V, D]
    return shapes


def load_model(model_dir, dtype=torch.float32):
    """Returns (cfg, {HF name: leaf tensor of `dtype` with requires_grad})."""
    cfg = load_config(model_dir)
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    stored = {}
    for name in files:
        tensors, _ = read_safetensors(os.path.join(model_dir, name))
        for k, v in tensors.items():
            if k in stored:
                raise ValueError(f"{model_dir}: tensor {k} appears in more than one shard")
            stored[k] = v
    if cfg["tie"]:
        stored.pop("lm_head.weight", None)  # HF ties it to the embedding after loading
    stored = {k: v for k, v in stored.items() if not k.endswith("rotary_emb.inv_freq")}
    shapes = parameter_shapes(cfg)
    missing = sorted(set(shapes) - set(stored))
    extra = sorted(set(stored) - set(shapes))
    if missing or extra:
        raise ValueError(f"{model_dir}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    params = {}
    for name, shape in shapes.items():
        if list(stored[name].shape) != shape:
            raise ValueError(f"{model_dir}: {name} is {list(stored[name].shape)}, expected {shape}")
        # bf16/f16 -> f32 is exact, so both implementations see the same values.
        params[name] = stored[name].to(dtype).clone().requires_grad_(True)
    return cfg, params


def read_batch(path):
    """Returns (input_ids, labels) as int64 tensors [B, T]."""
    ids, labels = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if len(row["input_ids"]) != len(row["labels"]):
                raise ValueError(f"{path}:{lineno}: input_ids and labels differ in length")
            if ids and len(row["input_ids"]) != len(ids[0]):
                raise ValueError(f"{path}:{lineno}: length {len(row['input_ids'])}, expected {len(ids[0])}")
            ids.append(row["input_ids"])
            labels.append(row["labels"])
    if not ids:
        raise ValueError(f"{path}: no rows")
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(labels, dtype=torch.int64)


# ---------------------------------------------------------------------------
# Reference forward: straightforward, one op per line, HF semantics.
# ---------------------------------------------------------------------------


def rms_norm(x, weight, eps):
    # HF LlamaRMSNorm (computed in the parameters' dtype, fp32 here).
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_cos_sin(T, head_dim, theta, dtype):
    # HF LlamaRotaryEmbedding: inv_freq in fp32, angles = pos * inv_freq, emb = cat(freqs, freqs).
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    pos = torch.arange(T, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)  # [T, Dh/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, Dh]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    # x [B, heads, T, Dh]; cos/sin [T, Dh]
    return x * cos + rotate_half(x) * sin


def attention(cfg, p, prefix, h, cos, sin):
    B, T, _ = h.shape
    H, Hkv, Dh = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    q = h @ p[prefix + "q_proj.weight"].t()  # [B, T, H*Dh]
    k = h @ p[prefix + "k_proj.weight"].t()  # [B, T, Hkv*Dh]
    v = h @ p[prefix + "v_proj.weight"].t()  # [B, T, Hkv*Dh]
    q = q.view(B, T, H, Dh).transpose(1, 2)  # [B, H, T, Dh]
    k = k.view(B, T, Hkv, Dh).transpose(1, 2)  # [B, Hkv, T, Dh]
    v = v.view(B, T, Hkv, Dh).transpose(1, 2)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    # Grouped-query: query head j uses kv head j // (H / Hkv) (HF repeat_kv).
    k = k.repeat_interleave(H // Hkv, dim=1)  # [B, H, T, Dh]
    v = v.repeat_interleave(H // Hkv, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)  # [B, H, T, T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    out = probs @ v  # [B, H, T, Dh]
    out = out.transpose(1, 2).reshape(B, T, H * Dh)
    return out @ p[prefix + "o_proj.weight"].t()  # [B, T, D]


def mlp(p, prefix, h):
    gate = h @ p[prefix + "gate_proj.weight"].t()  # [B, T, F]
    up = h @ p[prefix + "up_proj.weight"].t()
    return (F.silu(gate) * up) @ p[prefix + "down_proj.weight"].t()  # [B, T, D]


def forward_logits(cfg, p, input_ids):
    B, T = input_ids.shape
    if cfg["sliding_window"] is not None and T > int(cfg["sliding_window"]):
        raise ValueError(f"T={T} exceeds sliding_window {cfg['sliding_window']}: not modelled")
    embed = p["model.embed_tokens.weight"]
    x = embed[input_ids]  # [B, T, D]
    cos, sin = rope_cos_sin(T, cfg["head_dim"], cfg["rope_theta"], embed.dtype)
    for i in range(cfg["layers"]):
        pre = f"model.layers.{i}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], cfg["eps"])
        x = x + attention(cfg, p, pre + "self_attn.", h, cos, sin)
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], cfg["eps"])
        x = x + mlp(p, pre + "mlp.", h)
    x = rms_norm(x, p["model.norm.weight"], cfg["eps"])
    head = embed if cfg["tie"] else p["lm_head.weight"]
    return x @ head.t()  # [B, T, V]


def causal_lm_loss(logits, labels):
    """HF shift: logits[:, :-1] predict labels[:, 1:]; mean over labels != -100."""
    V = logits.shape[-1]
    shift_logits = logits[:, :-1].reshape(-1, V)
    shift_labels = labels[:, 1:].reshape(-1)
    tokens = int((shift_labels != -100).sum())
    loss = F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")
    return loss, tokens


def loss_and_grads(cfg, params, input_ids, labels):
    for t in params.values():
        t.grad = None
    logits = forward_logits(cfg, params, input_ids)
    loss, tokens = causal_lm_loss(logits, labels)
    loss.backward()
    grads = {name: t.grad.detach().clone() for name, t in params.items()}
    return float(loss), tokens, grads


def adamw_losses(cfg, params, input_ids, labels, steps, lr, weight_decay):
    """Losses before each of `steps` torch.optim.AdamW updates on the same batch."""
    opt = torch.optim.AdamW(
        list(params.values()), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay
    )
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        logits = forward_logits(cfg, params, input_ids)
        loss, _ = causal_lm_loss(logits, labels)
        loss.backward()
        losses.append(float(loss))
        opt.step()
    return losses


# ---------------------------------------------------------------------------
# Bench model: the same network written for speed in torch 1.13 on CPU.
# ---------------------------------------------------------------------------

# name: (dim, layers, heads, kv_heads, hidden, vocab, seq, batch)
PRESETS = {
    "tiny": (288, 6, 6, 6, 768, 32000, 256, 8),
    "small": (512, 8, 8, 8, 1376, 32000, 512, 4),
    "gqa": (768, 12, 12, 4, 2048, 32000, 512, 2),
}


class FastRMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class FastBlock(torch.nn.Module):
    def __init__(self, dim, heads, kv_heads, hidden, eps):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        Dh = self.head_dim
        self.input_layernorm = FastRMSNorm(dim, eps)
        self.q_proj = torch.nn.Linear(dim, heads * Dh, bias=False)
        self.k_proj = torch.nn.Linear(dim, kv_heads * Dh, bias=False)
        self.v_proj = torch.nn.Linear(dim, kv_heads * Dh, bias=False)
        self.o_proj = torch.nn.Linear(heads * Dh, dim, bias=False)
        self.post_attention_layernorm = FastRMSNorm(dim, eps)
        self.gate_proj = torch.nn.Linear(dim, hidden, bias=False)
        self.up_proj = torch.nn.Linear(dim, hidden, bias=False)
        self.down_proj = torch.nn.Linear(hidden, dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        H, Hkv, Dh = self.heads, self.kv_heads, self.head_dim
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, H, Dh).transpose(1, 2)
        k = self.k_proj(h).view(B, T, Hkv, Dh).transpose(1, 2)
        v = self.v_proj(h).view(B, T, Hkv, Dh).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if Hkv != H:
            rep = H // Hkv
            k = k[:, :, None].expand(B, Hkv, rep, T, Dh).reshape(B, H, T, Dh)
            v = v[:, :, None].expand(B, Hkv, rep, T, Dh).reshape(B, H, T, Dh)
        # One batched GEMM for all heads; the additive causal mask is fused via baddbmm.
        scores = torch.baddbmm(
            mask, q.reshape(B * H, T, Dh), k.reshape(B * H, T, Dh).transpose(1, 2),
            alpha=1.0 / math.sqrt(Dh),
        )
        probs = torch.softmax(scores, dim=-1)
        out = torch.bmm(probs, v.reshape(B * H, T, Dh))  # [B*H, T, Dh]
        out = out.view(B, H, T, Dh).transpose(1, 2).reshape(B, T, H * Dh)
        x = x + self.o_proj(out)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class FastLlama(torch.nn.Module):
    def __init__(self, dim, layers, heads, kv_heads, hidden, vocab, tie, eps=1e-5, theta=10000.0):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(vocab, dim)
        self.layers = torch.nn.ModuleList(
            FastBlock(dim, heads, kv_heads, hidden, eps) for _ in range(layers)
        )
        self.norm = FastRMSNorm(dim, eps)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.embed_tokens.weight
        self.head_dim, self.theta = dim // heads, theta
        for name, prm in self.named_parameters():
            if prm.dim() == 2:
                torch.nn.init.normal_(prm, mean=0.0, std=0.02)

    def forward(self, input_ids, labels):
        B, T = input_ids.shape
        cos, sin = rope_cos_sin(T, self.head_dim, self.theta, torch.float32)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x[:, :-1])  # the last position predicts nothing
        logits = self.lm_head(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def bench(preset, threads, steps, warmup, tie, seed=0):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dim, layers, heads, kv_heads, hidden, vocab, seq, batch = PRESETS[preset]
    model = FastLlama(dim, layers, heads, kv_heads, hidden, vocab, tie)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1, foreach=True)
    ids = torch.randint(0, vocab, (batch, seq))
    times = []
    losses = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(ids, ids)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss))
        if i >= warmup:
            times.append(dt)
    step_s = float(np.median(times))
    return {
        "impl": "pytorch",
        "torch": torch.__version__,
        "preset": preset,
        "threads": threads,
        "params": sum(p.numel() for p in params),
        "tokens_per_step": batch * seq,
        "tokens_per_s": batch * seq / step_s,
        "step_s_median": step_s,
        "steps": steps,
        "warmup": warmup,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def _cmd_grads(args):
    cfg, params = load_model(args.model)
    input_ids, labels = read_batch(args.batch)
    loss, tokens, grads = loss_and_grads(cfg, params, input_ids, labels)
    write_safetensors(args.out, grads)
    print(json.dumps({"loss": loss, "tokens": tokens}))


def _cmd_steps(args):
    cfg, params = load_model(args.model)
    input_ids, labels = read_batch(args.batch)
    losses = adamw_losses(cfg, params, input_ids, labels, args.steps, args.lr, args.weight_decay)
    for k, loss in enumerate(losses, 1):
        print(json.dumps({"step": k, "loss": loss}))
    print(json.dumps({"losses": losses}))


def _cmd_bench(args):
    print(json.dumps(bench(args.preset, args.threads, args.steps, args.warmup, args.tie)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grads", help="loss and every parameter gradient of one batch (fp32)")
    g.add_argument("--model", required=True)
    g.add_argument("--batch", required=True)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=_cmd_grads)
    s = sub.add_parser("steps", help="K torch.optim.AdamW steps on one batch, losses before each")
    s.add_argument("--model", required=True)
    s.add_argument("--batch", required=True)
    s.add_argument("--steps", type=int, required=True)
    s.add_argument("--lr", type=float, required=True)
    s.add_argument("--weight-decay", type=float, default=0.0)
    s.set_defaults(fn=_cmd_steps)
    b = sub.add_parser("bench", help="torch fp32 training-step throughput on random tokens")
    b.add_argument("--preset", choices=sorted(PRESETS), required=True)
    b.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--tie", action="store_true", help="tie lm_head to the embedding")
    b.add_argument("--dtype", choices=["fp32"], default="fp32")
    b.set_defaults(fn=_cmd_bench)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
