#!/usr/bin/env python3
"""Loads zerotune's exported checkpoint with Hugging Face transformers and compares logits and
losses with zerotune's (written by hf_parity): f32 logits within 1e-4 of the largest, the mean
token loss within 1e-5 (CPU) and 1e-4 (GPU f32), and bf16 losses within 2e-2.

  bench/check_hf_parity.py --hf-parity build-gpu/hf_parity --workdir DIR [--device cuda]

Ends with `N passed, M failed` and exits 1 on a failure; exits 2 when transformers is missing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hf-parity", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    try:
        import torch
        from transformers import LlamaForCausalLM
    except ImportError as e:
        print(f"check_hf_parity: needs torch and transformers ({e})")
        return 2
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    passed = failed = 0

    def check(ok, name, detail):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'}  {name:<44} {detail}", flush=True)
        passed, failed = passed + ok, failed + (not ok)

    device = a.device if a.device != "cuda" or torch.cuda.is_available() else "cpu"
    for save in ("f32", "bf16"):
        folder, logits_file = f"{a.workdir}/{save}/model", f"{a.workdir}/{save}/logits.json"
        r = subprocess.run([a.hf_parity, "--out", folder, "--logits", logits_file,
                            "--save-dtype", save], capture_output=True, text=True)
        if r.returncode != 0:
            check(False, f"hf_parity --save-dtype {save}", r.stderr[-500:])
            continue
        with open(logits_file) as f:
            ours = json.load(f)
        ids = torch.tensor([ours["ids"]], device=device)
        for dtype in (torch.float32, torch.bfloat16):
            model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=dtype).to(device).eval()
            with torch.no_grad():
                out = model(input_ids=ids, labels=ids)
            theirs = out.logits[0].float().cpu()
            mine = torch.tensor(ours["logits"])
            rel = float((theirs - mine).abs().max() / mine.abs().max())
            tol = 1e-4 if dtype == torch.float32 else 3e-2
            check(rel <= tol, f"{save} checkpoint, transformers {str(dtype)[6:]}: logits",
                  f"max diff {rel:.2e} of the largest (tol {tol:g})")
            loss = float(out.loss)
            for key, tol in (("cpu_loss", 1e-5 if dtype == torch.float32 else 2e-2),
                             ("gpu_loss_f32", 1e-4 if dtype == torch.float32 else 2e-2),
                             ("gpu_loss_bf16", 2e-2)):
                if key in ours:
                    d = abs(ours[key] - loss) / abs(loss)
                    check(d <= tol, f"{save} checkpoint, {str(dtype)[6:]}: {key}",
                          f"{ours[key]:.6f} vs transformers {loss:.6f} ({d:.1e}, tol {tol:g})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
