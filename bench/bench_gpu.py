#!/usr/bin/env python3
"""Training-step throughput of zerotune's CUDA backend against Hugging Face transformers on the
same GPU, in the same run, on the same model shape, batch and sequence length.

  bench/bench_gpu.py --gpu-bench build-gpu/gpu_bench [--dim 4096 --hidden 11008 --heads 32
                     --kv-heads 32 --layers 4 --vocab 32000 --seq 512 --batch 8 --steps 10]

The peer: LlamaForCausalLM in bf16 with SDPA attention, gradient checkpointing and
torch.optim.AdamW(fused=True) (its moments in bf16, as a bf16 model's are; zerotune keeps f32
master weights and moments, which is more work and memory). Prints both tokens/s, peak memory,
MFU against the bf16 GEMM peak gpu_bench measured, and the ratio; the last line is JSON.
"""

import argparse
import json
import subprocess
import sys
import time


def run_peer(a):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=a.dim, intermediate_size=a.hidden, num_hidden_layers=a.layers,
                      num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                      vocab_size=a.vocab, max_position_embeddings=max(512, a.seq),
                      use_cache=False)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16)
    model.gradient_checkpointing_enable()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(a.vocab, (a.batch, a.seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    timed = 0.0
    for step in range(a.warmup + a.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= a.warmup:
            timed += time.perf_counter() - t0
    return {"tokens_per_s": a.batch * a.seq * a.steps / timed,
            "peak_memory_bytes": torch.cuda.max_memory_allocated(),
            "step_s": timed / a.steps, "last_loss": float(loss)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu-bench", required=True)
    for name, default in (("dim", 4096), ("hidden", 11008), ("heads", 32), ("kv-heads", 32),
                          ("layers", 4), ("vocab", 32000), ("seq", 512), ("batch", 8),
                          ("steps", 10), ("warmup", 3)):
        ap.add_argument(f"--{name}", type=int, default=default)
    a = ap.parse_args()
    flags = ["--dim", a.dim, "--hidden", a.hidden, "--heads", a.heads, "--kv-heads", a.kv_heads,
             "--layers", a.layers, "--vocab", a.vocab, "--seq", a.seq, "--batch", a.batch,
             "--steps", a.steps, "--warmup", a.warmup, "--dtype", "bf16"]
    r = subprocess.run([a.gpu_bench] + [str(f) for f in flags], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_gpu: gpu_bench failed:\n{r.stderr[-2000:]}")
    ours = json.loads(r.stdout.strip().splitlines()[-1])
    peer = run_peer(a)
    flops_per_token = ours["model_tflops"] * 1e12 / ours["tokens_per_s"]
    peer["mfu"] = peer["tokens_per_s"] * flops_per_token / (ours["gemm_peak_tflops"] * 1e12)
    ratio = ours["tokens_per_s"] / peer["tokens_per_s"]
    print(f"{ours['device']}: D={a.dim} F={a.hidden} H={a.heads} Hkv={a.kv_heads} L={a.layers} "
          f"V={a.vocab} T={a.seq} B={a.batch}; bf16 GEMM peak {ours['gemm_peak_tflops']:.0f} "
          f"TFLOP/s")
    print(f"| | tokens/s | MFU | peak memory (GiB) | step (s) |")
    print(f"|---|---|---|---|---|")
    for name, row in (("zerotune", ours), ("transformers", peer)):
        print(f"| {name} | {row['tokens_per_s']:.0f} | {row['mfu']:.3f} | "
              f"{row['peak_memory_bytes'] / 2**30:.1f} | {row['step_s']:.3f} |")
    print(f"ratio (zerotune / transformers): {ratio:.2f}x")
    print(json.dumps({"zerotune": ours, "transformers": peer, "ratio": ratio}))


if __name__ == "__main__":
    main()
