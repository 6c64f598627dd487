#!/usr/bin/python3
"""Checks zerotune's LoRA against PyTorch (lora_ref.py: PEFT's arithmetic over llama_ref).

  check_lora.py --runner build/tests/lora_runner --zerotune build/zerotune --workdir DIR

Each case writes a random model, a batch and a PEFT adapter folder with nonzero A and B, runs
`lora_runner grads`, and compares:
  loss        relative error <= 1e-5 (dropout off and on; on: zerotune's hashed mask)
  eval loss   the forward without dropout (evaluation disables it)
  gradients   every lora_A / lora_B (and modules_to_save) tensor, ||a - b|| / ||b|| <= 1e-4,
              and nothing else has a gradient
`zerotune merge` of each adapter gives a folder whose logits equal the adapter model's (1e-5), and
refuses an adapter of another base (naming the tensor) or of another peft_type, writing nothing.
Plus --grad-ckpt gives the same gradient bytes (dropout on), and 10 AdamW steps of the trainer's
engine over the adapters (`lora_runner steps`) give the losses of torch.optim.AdamW over A and B
within 1e-5 relative, dropout off and on. Ends with `N passed, M failed`; exit 1 on a failure.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import lora_ref  # noqa: E402
import make_model  # noqa: E402
from report import Report  # noqa: E402

LOSS_TOL = 1e-5
GRAD_TOL = 1e-4
STEPS_TOL = 1e-5
MODEL = "--dim 64 --layers 2 --heads 4 --kv-heads 2 --hidden 160 --vocab 96"

# name: (LoRA config, model extra args)
CASES = {
    "all_linear_nodrop": ({"r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                           "target_modules": "all-linear"}, ""),
    "qv_down_dropout": ({"r": 3, "lora_alpha": 16, "lora_dropout": 0.25,
                         "target_modules": ["q_proj", "v_proj", "down_proj"]}, ""),
    "rslora_saved_modules": ({"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "use_rslora": True,
                              "target_modules": ["k_proj", "o_proj", "gate_proj", "up_proj"],
                              "modules_to_save": ["embed_tokens", "lm_head"]}, ""),
}


def rel_err(a, b):
    denom = float(b.double().norm())
    diff = float((a.double() - b.double()).norm())
    return diff / denom if denom > 0 else diff


def run_json(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prepare(workdir, name, lcfg, extra):
    model_dir = os.path.join(workdir, name + "_model")
    batch = os.path.join(workdir, name + ".jsonl")
    adapter_dir = os.path.join(workdir, name + "_adapter")
    make_model.main((MODEL + " " + extra).split() + ["--out", model_dir, "--seed", "7"])
    make_model.main(["--batch", batch, "--batch-size", "3", "--seq-len", "12", "--vocab", "96",
                     "--seed", "3"])
    cfg = llama_ref.load_config(model_dir)
    adapter = lora_ref.random_adapter(cfg, lcfg, seed=11)
    os.makedirs(adapter_dir, exist_ok=True)
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(dict(lcfg, peft_type="LORA", task_type="CAUSAL_LM", bias="none"), f)
    llama_ref.write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), adapter)
    return model_dir, batch, adapter_dir, cfg, adapter


def check_grads(report, args, workdir, name):
    lcfg, extra = CASES[name]
    model_dir, batch, adapter_dir, cfg, adapter = prepare(workdir, name, lcfg, extra)
    out = os.path.join(workdir, name + ".grads.safetensors")
    cmd = [args.runner, "grads", "--model", model_dir, "--adapter", adapter_dir, "--batch", batch,
           "--out", out, "--seed", "42", "--key", "5"]
    try:
        res = run_json(cmd + ["--eval-loss"])
        got, _ = llama_ref.read_safetensors(out)
    except Exception as e:  # noqa: BLE001
        report.check(False, f"{name} lora_runner grads", str(e))
        return
    _, base = llama_ref.load_model(model_dir)
    base = {k: v.detach() for k, v in base.items()}
    ids, labels = llama_ref.read_batch(batch)
    lp = lora_ref.lora_params(lcfg, cfg, adapter)
    p = lcfg["lora_dropout"]
    loss, tokens = lora_ref.loss(cfg, base, lcfg, lp, ids, labels, p, seed=42, key=5)
    loss.backward()
    e = abs(res["loss"] - float(loss)) / float(loss)
    report.check(e <= LOSS_TOL, f"{name} loss (dropout {p})", f"rel err {e:.3e}")
    with torch.no_grad():
        eval_loss, _ = lora_ref.loss(cfg, base, lcfg, lp, ids, labels, 0.0)
    e = abs(res["eval_loss"] - float(eval_loss)) / float(eval_loss)
    report.check(e <= LOSS_TOL, f"{name} eval loss without dropout", f"rel err {e:.3e}")
    want = {k: v.grad for k, v in lp.items()}
    report.check(set(got) == set(want), f"{name} gradient names", f"{len(got)} vs {len(want)}")
    errs = {k: rel_err(got[k], want[k]) for k in set(got) & set(want)}
    worst = max(errs, key=errs.get)
    report.check(all(v <= GRAD_TOL for v in errs.values()), f"{name} gradients",
                 f"max rel err {errs[worst]:.3e} ({worst})")
    if p > 0:
        out2 = out.replace(".grads.", ".grads_ckpt.")
        cmd2 = [a if a != out else out2 for a in cmd] + ["--grad-ckpt"]
        run_json(cmd2)
        again, _ = llama_ref.read_safetensors(out2)
        same = all(again[k].numpy().tobytes() == got[k].numpy().tobytes() for k in got)
        report.check(same, f"{name} grad-ckpt same bytes", f"{len(got)} tensors")


def check_steps(report, args, workdir, name, steps=10):
    lcfg, _ = CASES[name]
    # Training the whole embedding and head moves the loss far faster: a smaller step keeps the
    # two float orders of summation within the tolerance.
    lr = 1e-3 if lcfg.get("modules_to_save") else 1e-2
    model_dir = os.path.join(workdir, name + "_model")
    batch = os.path.join(workdir, name + ".jsonl")
    adapter_dir = os.path.join(workdir, name + "_adapter")
    try:
        got = run_json([args.runner, "steps", "--model", model_dir, "--adapter", adapter_dir,
                        "--batch", batch, "--steps", str(steps), "--lr", str(lr), "--wd", "0.1",
                        "--seed", "42"])["losses"]
    except Exception as e:  # noqa: BLE001
        report.check(False, f"{name} adamw {steps} steps", str(e))
        return
    cfg, base = llama_ref.load_model(model_dir)
    base = {k: v.detach() for k, v in base.items()}
    adapter, _ = llama_ref.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    lp = lora_ref.lora_params(lcfg, cfg, adapter)
    ids, labels = llama_ref.read_batch(batch)
    opt = torch.optim.AdamW(list(lp.values()), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.1)
    want = []
    for k in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss, _ = lora_ref.loss(cfg, base, lcfg, lp, ids, labels, lcfg["lora_dropout"], seed=42,
                                key=k << 32)  # train_step's key: step << 32, rank 0, micro 0
        loss.backward()
        want.append(float(loss))
        opt.step()
    errs = [abs(g - w) / abs(w) for g, w in zip(got, want)]
    report.check(len(got) == steps and max(errs) <= STEPS_TOL,
                 f"{name} adamw {steps} steps",
                 f"max rel err {max(errs):.3e} ({want[0]:.5f} -> {want[-1]:.5f})")


def check_merge(report, args, workdir, name):
    """`zerotune merge` of the case's adapter: the merged folder's logits are the adapter model's."""
    lcfg, _ = CASES[name]
    model_dir = os.path.join(workdir, name + "_model")
    adapter_dir = os.path.join(workdir, name + "_adapter")
    out = os.path.join(workdir, name + "_merged")
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([args.zerotune, "merge", "--base", model_dir, "--adapter", adapter_dir,
                           "--out", out, "--save-dtype", "f32"], capture_output=True, text=True)
    if proc.returncode != 0:
        report.check(False, f"{name} merge", proc.stderr.strip()[-300:])
        return
    cfg, base = llama_ref.load_model(model_dir)
    base = {k: v.detach() for k, v in base.items()}
    adapter, _ = llama_ref.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    lp = lora_ref.lora_params(lcfg, cfg, adapter)
    ids, _ = llama_ref.read_batch(os.path.join(workdir, name + ".jsonl"))
    _, merged = llama_ref.load_model(out)
    with torch.no_grad():
        want = llama_ref.forward_logits(cfg, lora_ref.effective_params(cfg, base, lcfg, lp, 0.0), ids)
        got = llama_ref.forward_logits(cfg, merged, ids)
    e = rel_err(got, want)
    report.check(e <= 1e-5, f"{name} merged logits", f"rel err {e:.2e} vs the adapter model")


def check_merge_refusals(report, args, workdir):
    """An adapter for another base, and a config of another peft_type: exit 1, nothing written."""
    model_dir = os.path.join(workdir, "other_base")
    make_model.main("--dim 48 --layers 2 --heads 4 --kv-heads 2 --hidden 160 --vocab 96".split()
                    + ["--out", model_dir, "--seed", "9"])
    bad_type = os.path.join(workdir, "bad_type_adapter")
    shutil.copytree(os.path.join(workdir, "all_linear_nodrop_adapter"), bad_type, dirs_exist_ok=True)
    with open(os.path.join(bad_type, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "PREFIX_TUNING", "task_type": "CAUSAL_LM"}, f)
    cases = [("other base", model_dir, os.path.join(workdir, "all_linear_nodrop_adapter"),
              "lora_B.weight is [64, 4], expected [48, 4] for this base model"),
             ("peft_type", os.path.join(workdir, "all_linear_nodrop_model"), bad_type,
              "expected \"LORA\"")]
    for label, base, adapter, needle in cases:
        out = os.path.join(workdir, "refused_merge")
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run([args.zerotune, "merge", "--base", base, "--adapter", adapter, "--out", out],
                              capture_output=True, text=True)
        lines = proc.stderr.strip().splitlines()
        report.check(proc.returncode == 1 and len(lines) == 1 and needle in lines[0]
                     and not os.path.exists(out), f"merge refuses: {label}", lines[-1] if lines else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args(argv)
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)
    report = Report(44)
    for name in CASES:
        check_grads(report, args, args.workdir, name)
    for name in CASES:
        check_steps(report, args, args.workdir, name)
    for name in CASES:
        check_merge(report, args, args.workdir, name)
    check_merge_refusals(report, args, args.workdir)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
