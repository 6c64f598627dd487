"""LoRA in PyTorch as PEFT computes it, over llama_ref's functional Llama:
y = x W^T + scale * (dropout(x) A^T) B^T, with zerotune's dropout mask (a pure function of a
seed and the element index, kernels/scaled_dropout.h) so that dropout-on runs compare too.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

MASK64 = (1 << 64) - 1
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def module_path(m):
    return ("self_attn." if m in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp.") + m


def tensor_name(layer, m, which):
    return f"base_model.model.model.layers.{layer}.{module_path(m)}.lora_{which}.weight"


def dropout_seed(seed, key, layer, module_index):
    z = (seed * 0x9E3779B97F4A7C15 + key) & MASK64
    z = (z * 0xBF58476D1CE4E5B9 + layer * 7 + module_index) & MASK64
    z ^= z >> 31
    return (z * 0x94D049BB133111EB) & MASK64


def keep_mask(seed, n, p):
    """Element i of n survives dropout p under `seed` (kernels/scaled_dropout.h's hash)."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        z = ((i & np.uint64(0xFFFFFFFF)).astype(np.uint32) * np.uint32(0x9E3779B9)
             + np.uint32(seed & 0xFFFFFFFF)
             + (i >> np.uint64(32)).astype(np.uint32) * np.uint32(0x85EBCA6B))
        z ^= np.uint32(seed >> 32)
        z = (z ^ (z >> np.uint32(16))) * np.uint32(0x85EBCA6B)
        z = (z ^ (z >> np.uint32(13))) * np.uint32(0xC2B2AE35)
        z ^= z >> np.uint32(16)
    u = (z >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return torch.from_numpy(u >= np.float32(p))


class LoraLinear:
    """Stands for W in llama_ref's `h @ W.t()`: returns h W^T + scale * B A dropout(h)."""

    def __init__(self, w, a, b, scale, p, seed):
        self.w, self.a, self.b, self.scale, self.p, self.seed = w, a, b, scale, p, seed

    def t(self):
        return self

    def __rmatmul__(self, h):
        x = h
        if self.p > 0:
            keep = keep_mask(self.seed, h.numel(), self.p).view(h.shape)
            kept_scale = np.float32(1.0) / (np.float32(1.0) - np.float32(self.p))
            x = torch.where(keep, h * float(kept_scale), torch.zeros_like(h))
        return h @ self.w.t() + ((x @ self.a.t()) @ self.b.t()) * self.scale


def lora_scale(cfg):
    r, alpha = cfg["r"], cfg["lora_alpha"]
    return alpha / (r ** 0.5 if cfg.get("use_rslora") else r)


def targets(cfg):
    t = cfg["target_modules"]
    t = [t] if isinstance(t, str) else t
    return MODULES if "all-linear" in t else [m for m in MODULES if m in t]


def lora_params(cfg, model_cfg, adapter):
    """PEFT name -> leaf tensor with requires_grad, from the adapter's tensors."""
    return {k: v.float().clone().requires_grad_(True) for k, v in adapter.items()}


def effective_params(model_cfg, base, lcfg, lp, dropout, seed=42, key=1):
    """llama_ref's parameter dict with every targeted weight wrapped in LoraLinear."""
    p = dict(base)
    scale = lora_scale(lcfg)
    for layer in range(model_cfg["layers"]):
        for m in targets(lcfg):
            name = f"model.layers.{layer}.{module_path(m)}.weight"
            s = dropout_seed(seed, key, layer, MODULES.index(m))
            p[name] = LoraLinear(base[name], lp[tensor_name(layer, m, "A")],
                                 lp[tensor_name(layer, m, "B")], scale, dropout, s)
    saved = {"embed_tokens": ("model.embed_tokens.weight", "base_model.model.model.embed_tokens.weight"),
             "lm_head": ("lm_head.weight", "base_model.model.lm_head.weight")}
    for m in lcfg.get("modules_to_save") or []:
        p[saved[m][0]] = lp[saved[m][1]]
    return p


def loss(model_cfg, base, lcfg, lp, ids, labels, dropout, seed=42, key=1):
    p = effective_params(model_cfg, base, lcfg, lp, dropout, seed, key)
    logits = llama_ref.forward_logits(model_cfg, p, ids)
    return llama_ref.causal_lm_loss(logits, labels)


def random_adapter(model_cfg, lcfg, seed):
    """A and B both nonzero (so that every gradient is), plus modules_to_save copies."""
    g = torch.Generator().manual_seed(seed)
    D, F_, Dh = model_cfg["dim"], model_cfg["hidden"], model_cfg["head_dim"]
    q, kv = model_cfg["heads"] * Dh, model_cfg["kv_heads"] * Dh
    dims = {"q_proj": (D, q), "k_proj": (D, kv), "v_proj": (D, kv), "o_proj": (q, D),
            "gate_proj": (D, F_), "up_proj": (D, F_), "down_proj": (F_, D)}
    r = lcfg["r"]
    out = {}
    for layer in range(model_cfg["layers"]):
        for m in targets(lcfg):
            fan_in, fan_out = dims[m]
            out[tensor_name(layer, m, "A")] = torch.randn(r, fan_in, generator=g) * 0.1
            out[tensor_name(layer, m, "B")] = torch.randn(fan_out, r, generator=g) * 0.1
    V = model_cfg["vocab"]
    for m in lcfg.get("modules_to_save") or []:
        name = ("base_model.model.lm_head.weight" if m == "lm_head"
                else "base_model.model.model.embed_tokens.weight")
        out[name] = torch.randn(V, D, generator=g) * 0.02
    return out
