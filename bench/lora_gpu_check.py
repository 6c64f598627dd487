#!/usr/bin/python3
"""LoRA on the GPU machine (scripts/gpu-check.sh): `zerotune train --lora` on the CUDA backend
against the CPU backend, and the adapter folder in PEFT itself.

  lora_gpu_check.py --zerotune build-gpu-full/zerotune --workdir DIR

On check_train.py's tiny setup, 8 steps of `train --lora --lora-config` (all-linear, r 8, dropout
0.1, embed_tokens and lm_head in modules_to_save) with --device cpu, --device cuda --mx no (losses
within 1e-4 relative of the CPU's) and --device cuda --mx bf16 (within 3e-2). Then, when Python has
peft and transformers: `PeftModel.from_pretrained(base, epoch-0)` loads the CPU run's adapter with
every tensor of it (no missing or unexpected adapter key) and its logits equal those of
`zerotune merge`'s folder loaded by transformers (1e-4 relative). Prints one line per check and a
last line `{"ok": bool, "summary": ...}`; exit 0 when all passed, 1 on a failure, 2 when there is
no GPU.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import check_train  # noqa: E402

LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": "all-linear",
        "modules_to_save": ["embed_tokens", "lm_head"]}
FLAGS = ["-bs", "4", "--grad_accum", "1", "--num-epochs", "1", "--max-steps", "8", "--lr", "1e-3",
         "--warmup-steps", "2", "--ctx-len", "128", "--no-shuffle", "--seed", "0", "--lora"]


def train(zt, env, work, name, device_flags, config):
    out = os.path.join(work, name)
    subprocess.run(["rm", "-rf", out], check=True)
    D = env["D"]
    check_train.run([zt, "train", "--model_name", env["M"], "--train_path", os.path.join(D, "train.jsonl"),
                     "--test_path", os.path.join(D, "test.jsonl"), "--special_token_path", env["tokens"],
                     "--output_dir", out, "--lora-config", config, *FLAGS, *device_flags])
    rows = check_train.read_metrics(os.path.join(out, "metrics.jsonl"))
    return out, [r["loss"] for r in rows if r["type"] == "train"]


def peft_check(zt, env, work, adapter):
    try:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        return None, f"skipped: {e}"
    merged = os.path.join(work, "merged")
    check_train.run([zt, "merge", "--base", env["M"], "--adapter", adapter, "--out", merged,
                     "--save-dtype", "f32"])
    base = AutoModelForCausalLM.from_pretrained(env["M"], torch_dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, adapter)
    state = peft_model.state_dict()
    lora_keys = [k for k in state if "lora_" in k]
    ids = torch.arange(3, 40).view(1, -1)
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32)(ids).logits
        got = peft_model.eval()(ids).logits
    err = float((got - want).norm() / want.norm())
    ok = len(lora_keys) > 0 and err <= 1e-4
    return ok, f"{len(lora_keys)} lora tensors loaded; PEFT vs merged logits rel err {err:.2e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args(argv)
    zt, work = os.path.abspath(args.zerotune), os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    env = check_train.setup(zt, work)
    config = os.path.join(work, "lora.json")
    with open(config, "w") as f:
        json.dump(LORA, f)
    results = []
    cpu_out, cpu = train(zt, env, work, "cpu", ["--device", "cpu"], config)
    try:
        gpu = subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0
    except FileNotFoundError:
        gpu = False
    if not gpu:
        print(json.dumps({"ok": False, "summary": "no GPU"}))
        return 2
    for name, flags, tol in (("cuda_f32", ["--device", "cuda", "--mx", "no"], 1e-4),
                             ("cuda_bf16", ["--device", "cuda", "--mx", "bf16"], 3e-2)):
        try:
            _, got = train(zt, env, work, name, flags, config)
            err = max(check_train.rel(g, w) for g, w in zip(got, cpu))
            ok = len(got) == len(cpu) and err <= tol
            detail = f"{len(got)} steps, max rel err {err:.2e} vs cpu (tol {tol:.0e})"
        except Exception as e:  # noqa: BLE001
            ok, detail = False, str(e)[-300:]
        print(f"{'PASS' if ok else 'FAIL'}  lora {name}: {detail}", flush=True)
        results.append((ok, f"{name} {detail}"))
    ok, detail = peft_check(zt, env, work, os.path.join(cpu_out, "epoch-0"))
    print(f"{'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  PeftModel.from_pretrained: {detail}")
    if ok is not None:
        results.append((ok, f"PEFT {detail}"))
    all_ok = all(r[0] for r in results)
    print(json.dumps({"ok": all_ok, "summary": "; ".join(r[1] for r in results)}))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
