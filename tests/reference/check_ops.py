#!/usr/bin/python3
"""Checks every CPU kernel's forward and backward against PyTorch autograd.

  check_ops.py --runner build/op_runner --workdir DIR

For each case of the table below, writes random inputs to a safetensors file, runs
`op_runner OP in.safetensors out.safetensors` (forward then backward of one kernel), and
compares each output with PyTorch computed in float64 from the same float32 inputs:
relative error ||ours - ref|| / ||ref|| <= 1e-5 per tensor. AdamW is compared with
torch.optim.AdamW itself in float32 over several steps. Sizes are deliberately odd (D=96,
T=37, GQA 6:2, MQA 8:1, sequences longer than one 64-row attention block). Ends with
`N passed, M failed`; exits 1 when anything failed.
"""

import argparse
import math
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from report import Report  # noqa: E402

TOL = 1e-5
F64 = torch.float64


def randn(g, *shape, scale=1.0):
    return (torch.randn(*shape, generator=g) * scale).float()


def i32(values):
    return torch.as_tensor(values, dtype=torch.int32)


def grads_of(fn, inputs, dout):
    """Forward fn on float64 leaf copies of `inputs` and the gradient of sum(out * dout)."""
    leaves = [x.to(F64).requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    (out * dout.to(F64)).sum().backward()
    return out.detach(), [leaf.grad for leaf in leaves]


# --- the cases: each returns (inputs for op_runner, expected outputs) -------------------------


def case_embedding(g, n, v, d):
    table, dout = randn(g, v, d), randn(g, n, d)
    ids = torch.randint(0, v, (n,), generator=g)
    ids[: n // 3] = ids[0]  # repeated ids must accumulate
    out, (dtable,) = grads_of(lambda t: t[ids], [table], dout)
    return {"table": table, "ids": i32(ids), "dout": dout}, {"out": out, "dtable": dtable}


def case_rmsnorm(g, n, d, eps):
    x, w, dout = randn(g, n, d), 1 + randn(g, d, scale=0.1), randn(g, n, d)
    ref = lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w  # noqa: E731
    out, (dx, dw) = grads_of(ref, [x, w], dout)
    inputs = {"x": x, "weight": w, "dout": dout, "eps": torch.tensor([eps], dtype=torch.float32)}
    return inputs, {"out": out, "dx": dx, "dweight": dw}


def case_rope(g, n, heads, extra_heads, head_dim, theta, llama3=None):
    """llama3: (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings),
    the inverse frequencies then as transformers' _compute_llama3_parameters computes them."""
    width = (heads + extra_heads) * head_dim
    x, dout = randn(g, n, width), randn(g, n, width)
    positions = torch.randint(0, 300, (n,), generator=g)
    if llama3 is None:
        cos, sin = llama_ref.rope_cos_sin(300, head_dim, theta, torch.float32)
    else:
        from check_families import rope_cos_sin as scaled_cos_sin
        factor, low, high, original = llama3
        cfg = {"head_dim": head_dim, "rope_theta": theta, "max_pos": 300, "rope_scaling": {
            "rope_type": "llama3", "factor": factor, "low_freq_factor": low, "high_freq_factor": high,
            "original_max_position_embeddings": original}}
        cos, sin = scaled_cos_sin(cfg, 300)
    cos, sin = cos[positions].to(F64), sin[positions].to(F64)

    def ref(x):
        rot = x[:, : heads * head_dim].reshape(n, heads, head_dim)
        rot = rot * cos[:, None] + llama_ref.rotate_half(rot) * sin[:, None]
        return torch.cat([rot.reshape(n, -1), x[:, heads * head_dim :]], dim=1)

    out, (dx,) = grads_of(ref, [x], dout)
    inputs = {"x": x, "dout": dout, "positions": i32(positions), "n_heads": i32([heads]),
              "head_dim": i32([head_dim]), "max_positions": i32([300]),
              "theta": torch.tensor([theta], dtype=torch.float32)}
    if llama3 is not None:
        inputs["llama3"] = torch.tensor(llama3, dtype=torch.float32)
    return inputs, {"out": out, "dx": dx}


def case_bias(g, n, width):
    y, bias, dout = randn(g, n, width), randn(g, width), randn(g, n, width)
    out, (dy, dbias) = grads_of(lambda y, b: y + b, [y, bias], dout)
    return {"y": y, "bias": bias, "dout": dout}, {"out": out, "dbias": dbias}


def case_attention(g, b, t, h, hkv, dh, packed=False):
    width = (h + 2 * hkv) * dh
    qkv, dout = randn(g, b * t, width), randn(g, b * t, h * dh)
    segments = None
    if packed:  # runs of random lengths per row: attention stays inside a run
        segments = torch.zeros(b, t, dtype=torch.int64)
        for r in range(b):
            cuts = sorted(torch.randint(1, t, (3,), generator=g).tolist())
            for c in cuts:
                segments[r, c:] += 1
        segments = segments.reshape(-1)

    def ref(qkv):
        x = qkv.reshape(b, t, h + 2 * hkv, dh)
        q, k, v = x[:, :, :h], x[:, :, h : h + hkv], x[:, :, h + hkv :]
        k = k.repeat_interleave(h // hkv, dim=2)
        v = v.repeat_interleave(h // hkv, dim=2)
        scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(dh)
        mask = torch.ones(t, t, dtype=torch.bool).tril()[None, None]
        if segments is not None:
            s = segments.reshape(b, t)
            mask = mask & (s[:, None, :, None] == s[:, None, None, :])
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), v).reshape(b * t, h * dh)

    out, (dqkv,) = grads_of(ref, [qkv], dout)
    inputs = {"qkv": qkv, "dout": dout, "dims": i32([b, t, h, hkv, dh])}
    if segments is not None:
        inputs["segments"] = i32(segments)
    return inputs, {"out": out, "dqkv": dqkv}


def case_swiglu(g, n, f):
    gate_up, dout = randn(g, n, 2 * f, scale=2.0), randn(g, n, f)
    ref = lambda gu: torch.nn.functional.silu(gu[:, :f]) * gu[:, f:]  # noqa: E731
    out, (dgu,) = grads_of(ref, [gate_up], dout)
    return {"gate_up": gate_up, "dout": dout}, {"out": out, "dgate_up": dgu}


def case_linear(g, n, fan_in, fan_out):
    x, w, dout = randn(g, n, fan_in), randn(g, fan_out, fan_in), randn(g, n, fan_out)
    out, (dx, dw) = grads_of(lambda x, w: x @ w.t(), [x, w], dout)
    return {"x": x, "w": w, "dout": dout}, {"out": out, "dx": dx, "dw": dw}


def case_cross_entropy(g, n, d, v, chunk_rows, w_scale):
    x, w = randn(g, n, d), randn(g, v, d, scale=w_scale)
    targets = torch.randint(0, v, (n,), generator=g)
    targets[torch.rand(n, generator=g) < 0.25] = -100
    xl, wl = x.to(F64).requires_grad_(True), w.to(F64).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(xl @ wl.t(), targets, ignore_index=-100)
    loss.backward()
    inputs = {"x": x, "w": w, "targets": i32(targets), "chunk_rows": i32([chunk_rows])}
    expected = {"loss": loss.detach().reshape(1), "loss_eval": loss.detach().reshape(1),
                "dx": xl.grad, "dw": wl.grad}
    return inputs, expected


def case_adamw(g, n, steps, lr, wd):
    param, grads = randn(g, n), randn(g, steps, n)
    p = param.clone().requires_grad_(True)
    opt = torch.optim.AdamW([p], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    for s in range(steps):
        p.grad = grads[s].clone()
        opt.step()
    state = opt.state[p]
    inputs = {"param": param, "grads": grads,
              # float64 hyperparameters travel as their int64 bit patterns (safetensors I64)
              "hyper": torch.tensor([lr, 0.9, 0.999, 1e-8, wd], dtype=torch.float64).view(torch.int64)}
    return inputs, {"param": p.detach(), "exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"]}


CASES = [
    ("embedding", "embedding V=301 D=96 N=111", lambda g: case_embedding(g, 111, 301, 96)),
    ("rmsnorm", "rmsnorm N=37x3 D=96", lambda g: case_rmsnorm(g, 111, 96, 1e-5)),
    ("rmsnorm", "rmsnorm N=19 D=4099 eps 1e-6", lambda g: case_rmsnorm(g, 19, 4099, 1e-6)),
    ("rope", "rope 6+2 heads Dh=16 theta 1e4 (+2 untouched)", lambda g: case_rope(g, 37, 8, 2, 16, 10000.0)),
    ("rope", "rope Dh=128 theta 5e5", lambda g: case_rope(g, 29, 3, 0, 128, 500000.0)),
    ("attention", "attention B=2 T=37 GQA 6:2 Dh=16", lambda g: case_attention(g, 2, 37, 6, 2, 16)),
    ("attention", "attention B=1 T=150 MQA 8:1 Dh=12", lambda g: case_attention(g, 1, 150, 8, 1, 12)),
    ("attention", "attention B=3 T=130 MHA 4:4 Dh=32", lambda g: case_attention(g, 3, 130, 4, 4, 32)),
    ("attention", "attention packed B=2 T=141 GQA 4:2", lambda g: case_attention(g, 2, 141, 4, 2, 8, True)),
    # Llama-3.1's scaling with a 64-position original context: positions up to 300 pass it.
    ("rope", "rope Dh=64 theta 5e5 llama3 x8 past 64", lambda g: case_rope(g, 41, 4, 1, 64, 500000.0,
                                                                            (8.0, 1.0, 4.0, 64))),
    ("bias", "bias N=37 width 300", lambda g: case_bias(g, 37, 300)),
    ("swiglu", "swiglu N=37 F=200", lambda g: case_swiglu(g, 37, 200)),
    ("linear", "linear N=37 96->200", lambda g: case_linear(g, 37, 96, 200)),
    ("cross_entropy", "cross_entropy N=74 D=96 V=301 chunks of 16", lambda g: case_cross_entropy(g, 74, 96, 301, 16, 0.5)),
    # Std-4 logits over 32000 classes: a float32 running sum of the exponentials is off by ~2e-5
    # here (PyTorch float32: 2.5e-6); the kernel sums them in double.
    ("cross_entropy", "cross_entropy N=37 D=64 V=32000 one chunk", lambda g: case_cross_entropy(g, 37, 64, 32000, 0, 0.5)),
    ("adamw", "adamw n=1001 5 steps lr 1e-2 wd 0.1", lambda g: case_adamw(g, 1001, 5, 1e-2, 0.1)),
    ("adamw", "adamw n=7 3 steps lr 1e-3 wd 0", lambda g: case_adamw(g, 7, 3, 1e-3, 0.0)),
]


def rel_err(ours, ref):
    ours, ref = ours.to(F64), ref.to(F64)
    denom = ref.norm().item()
    return (ours - ref).norm().item() / (denom if denom > 0 else 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    report = Report(59)
    for index, (op, label, make) in enumerate(CASES):
        g = torch.Generator().manual_seed(1000 + index)
        inputs, expected = make(g)
        in_path = os.path.join(args.workdir, f"case{index}_in.safetensors")
        out_path = os.path.join(args.workdir, f"case{index}_out.safetensors")
        llama_ref.write_safetensors(in_path, {k: v.contiguous() for k, v in inputs.items()})
        run = subprocess.run([args.runner, op, in_path, out_path], capture_output=True, text=True)
        if not report.check(run.returncode == 0, label,
                            f"op_runner exited {run.returncode}: {run.stderr.strip()}" if run.returncode else "ran"):
            continue
        ours, _ = llama_ref.read_safetensors(out_path)
        for name, ref in expected.items():
            if not report.check(name in ours and tuple(ours[name].shape) == tuple(ref.shape),
                                f"{label} {name}", "present with the reference's shape"):
                continue
            err = rel_err(ours[name], ref)
            report.check(err <= TOL, f"{label:48s} {name:10s}", f"rel err {err:.3e} tol {TOL:g}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
