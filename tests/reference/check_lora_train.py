#!/usr/bin/python3
"""Checks `zerotune train --lora` end to end against PyTorch (lora_ref.py over train_ref.py).

  check_lora_train.py --zerotune build/zerotune --workdir DIR

On check_train.py's tiny setup (synthetic data, its tokenizer with added tokens, a 2-layer model):
  adapter     --adapter DIR (a PEFT folder with nonzero A and B, dropout 0.1): 10 steps of
              -bs 2 --grad_accum 2 with warm-up, clipping and weight decay; losses (1e-5
              relative), grad norms (1e-4) and the eval loss (1e-5) equal the reference, whose
              dropout masks are zerotune's (train_step's key per step and micro-batch)
  output      epoch-0 is a PEFT adapter folder: adapter_config.json's keys, the tensors' PEFT
              names and shapes, the tokenizer files, and no model weights
  gpu paths   the run again through the GPU's engine paths on the CPU (separate master, host
              optimizer thread, offloaded): the same metrics and adapter bytes
  zero        the same adapter with dropout 0 on 2 ranks at ZeRO stages 2 and 3 (-bs 2,
              grad_accum 1: the same global batches) against the reference
  resume      --lora from the seed over 2 epochs, stopped after one and resumed: the same
              metrics and the same adapter bytes as the uninterrupted run
  generate    --adapter epoch-0 decodes the ids that `zerotune merge`'s folder decodes
  errors      r 0, an unknown target module, another peft_type, --lora-config without --lora:
              exit 1, one line naming the key, no output folder
Ends with `N passed, M failed`; exit 1 on a failure.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_train  # noqa: E402
import llama_ref  # noqa: E402
import lora_ref  # noqa: E402
from report import Report  # noqa: E402
import train_ref  # noqa: E402

CTX = "128"
FLAGS = ["-bs", "2", "--grad_accum", "2", "--eval-batch-size-per-device", "5", "--num-epochs", "1",
         "--lr", "1e-2", "--warmup-steps", "2", "--max-steps", "10", "--weight-decay", "0.01",
         "--grad-clip", "1.0", "--ctx-len", CTX, "--no-shuffle", "--mx", "no", "--seed", "0"]
LCFG = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.1,
        "target_modules": ["q_proj", "v_proj", "gate_proj", "down_proj"]}


def write_adapter(env, work, name, lcfg):
    cfg = llama_ref.load_config(env["M"])
    adapter_dir = os.path.join(work, name)
    os.makedirs(adapter_dir, exist_ok=True)
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(dict(lcfg, peft_type="LORA", task_type="CAUSAL_LM", bias="none"), f)
    llama_ref.write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"),
                                lora_ref.random_adapter(cfg, lcfg, seed=5))
    return adapter_dir


def zerotune(zt, env, out, flags, check=True):
    if os.path.exists(out) and check:
        shutil.rmtree(out)
    D = env["D"]
    cmd = [zt, "train", "--model_name", env["M"], "--train_path", os.path.join(D, "train.jsonl"),
           "--test_path", os.path.join(D, "test.jsonl"), "--special_token_path", env["tokens"],
           "--output_dir", out, *flags]
    if not check:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    check_train.run(cmd)
    return check_train.read_metrics(os.path.join(out, "metrics.jsonl"))


def reference(env, adapter_dir, lcfg, bs=2, grad_accum=2, lr=1e-2, warmup=2, wd=0.01, clip=1.0,
              max_steps=10):
    """train_ref.train's loop with A and B as the only parameters."""
    cfg, base = llama_ref.load_model(env["M"])
    base = {k: v.detach() for k, v in base.items()}
    adapter, _ = llama_ref.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    lp = lora_ref.lora_params(lcfg, cfg, adapter)
    train_rows = train_ref.read_ids(env["ids"][("train", CTX)][0], int(CTX))
    test_rows = train_ref.read_ids(env["ids"][("test", CTX)][0], int(CTX))
    plan = train_ref.plan_steps(len(train_rows), bs, grad_accum)
    total = min(max_steps, len(plan))
    plist = list(lp.values())
    opt = torch.optim.AdamW(plist, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, train_ref.lr_lambda_factory(warmup, total))
    rows = []
    for step, micro_batches in enumerate(plan[:total], 1):
        tokens = sum(train_ref.count_tokens([train_rows[i] for i in mb]) for mb in micro_batches)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for m, mb in enumerate(micro_batches):
            ids, labels = train_ref.collate([train_rows[i] for i in mb], int(CTX), False)
            p = lora_ref.effective_params(cfg, base, lcfg, lp, lcfg["lora_dropout"], seed=0,
                                         key=(step << 32) ^ m)  # lora_dropout_key, rank 0
            loss, _ = train_ref.sum_loss(cfg, p, ids, labels)
            (loss / tokens).backward()
            loss_sum += float(loss)
        norm = float(torch.norm(torch.stack([g.grad.norm() for g in plist])))
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(plist, clip)
        opt.step()
        sched.step()
        rows.append({"type": "train", "step": step, "loss": loss_sum / tokens, "grad_norm": norm})
    p = lora_ref.effective_params(cfg, base, lcfg, lp, 0.0)
    eval_loss, _ = train_ref.evaluate(cfg, p, test_rows, 5, int(CTX), False)
    rows.append({"type": "eval", "eval_loss": eval_loss})
    return rows


def compare(rep, name, got, want):
    g = [r for r in got if r["type"] == "train"]
    w = [r for r in want if r["type"] == "train"]
    if len(g) != len(w):
        rep.check(False, f"{name} steps", f"{len(g)} steps, expected {len(w)}")
        return
    loss = max(check_train.rel(a["loss"], b["loss"]) for a, b in zip(g, w))
    norm = max(check_train.rel(a["grad_norm"], b["grad_norm"]) for a, b in zip(g, w))
    rep.check(loss <= 1e-5, f"{name} {len(g)} step losses",
              f"max rel err {loss:.2e} ({w[0]['loss']:.4f} -> {w[-1]['loss']:.4f})")
    rep.check(norm <= 1e-4, f"{name} grad norms", f"max rel err {norm:.2e}")
    ge = [r for r in got if r["type"] == "eval"]
    if ge:
        e = check_train.rel(ge[-1]["eval_loss"], want[-1]["eval_loss"])
        rep.check(e <= 1e-5, f"{name} eval loss", f"rel err {e:.2e}")


def check_output(rep, env, out, lcfg):
    folder = os.path.join(out, "epoch-0")
    files = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    want_files = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.model"}
    rep.check(want_files <= files and not any(f.startswith("model") for f in files),
              "output folder files", ", ".join(sorted(files)))
    with open(os.path.join(folder, "adapter_config.json")) as f:
        conf = json.load(f)
    ok = (conf.get("peft_type") == "LORA" and conf.get("task_type") == "CAUSAL_LM"
          and conf.get("inference_mode") is True and conf.get("r") == lcfg["r"]
          and conf.get("lora_alpha") == lcfg["lora_alpha"]
          and conf.get("target_modules") == lcfg["target_modules"]
          and conf.get("base_model_name_or_path") == env["M"])
    rep.check(ok, "adapter_config.json", json.dumps({k: conf.get(k) for k in
                                                     ("peft_type", "r", "lora_alpha", "inference_mode")}))
    tensors, _ = llama_ref.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    cfg = llama_ref.load_config(env["M"])
    want = lora_ref.random_adapter(cfg, lcfg, seed=5)
    shapes_ok = set(tensors) == set(want) and all(
        list(tensors[k].shape) == list(want[k].shape) for k in want)
    rep.check(shapes_ok, "adapter tensor names and shapes",
              f"{len(tensors)} tensors, e.g. {sorted(tensors)[0]} {list(tensors[sorted(tensors)[0]].shape)}")
    moved = all(not torch.equal(tensors[k].float(), want[k]) for k in want)
    rep.check(moved, "adapter tensors trained", "every tensor differs from its start")


def check_generate(rep, zt, env, work, adapter_dir):
    """generate --adapter decodes as the merged folder does, and not as the base does."""
    merged = os.path.join(work, "merged")
    shutil.rmtree(merged, ignore_errors=True)
    check_train.run([zt, "merge", "--base", env["M"], "--adapter", adapter_dir, "--out", merged,
                     "--save-dtype", "f32"])
    common = ["--prompt", "Tom has 3 apples", "--max-new-tokens", "12", "--print-ids",
              "--special_token_path", env["tokens"]]
    outs = {}
    for label, flags in (("adapter", ["--model", env["M"], "--adapter", adapter_dir]),
                         ("merged", ["--model", merged]), ("base", ["--model", env["M"]])):
        proc = check_train.run([zt, "generate", *flags, *common])
        lines = (proc.stdout + "\n" + proc.stderr).splitlines()
        outs[label] = json.loads([x for x in lines if x.startswith('{"prompt_tokens"')][-1])["ids"]
    rep.check(outs["adapter"] == outs["merged"], "generate --adapter = merged folder",
              f"{len(outs['adapter'])} tokens; base differs: {outs['base'] != outs['adapter']}")


def check_errors(rep, zt, env, work):
    cases = {
        "r 0": ({"r": 0}, "\"r\""),
        "unknown target": ({"target_modules": ["qkv_proj"]}, "q_proj, k_proj, v_proj, o_proj"),
        "peft_type": ({"peft_type": "PREFIX_TUNING"}, "peft_type"),
        "bias": ({"bias": "all"}, "\"bias\""),
    }
    for name, (conf, needle) in cases.items():
        path = os.path.join(work, "bad.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        out = os.path.join(work, "zt_bad")
        shutil.rmtree(out, ignore_errors=True)
        proc = zerotune(zt, env, out, FLAGS + ["--lora", "--lora-config", path], check=False)
        lines = proc.stderr.strip().splitlines()
        rep.check(proc.returncode == 1 and lines and needle in lines[-1] and not os.path.exists(out),
                  f"error: {name}", lines[-1] if lines else "(no message)")
    out = os.path.join(work, "zt_bad")
    proc = zerotune(zt, env, out, FLAGS + ["--lora-config", path], check=False)
    rep.check(proc.returncode == 1 and "--lora" in proc.stderr and not os.path.exists(out),
              "error: --lora-config without --lora", proc.stderr.strip().splitlines()[-1:])


def check_resume(rep, zt, env, work):
    flags = [f for f in FLAGS]
    flags[flags.index("--num-epochs") + 1] = "2"
    flags[flags.index("--max-steps") + 1] = "0"
    whole = os.path.join(work, "zt_whole")
    parts = os.path.join(work, "zt_parts")
    got_whole = zerotune(zt, env, whole, flags + ["--lora"])
    zerotune(zt, env, parts, flags + ["--lora", "--stop-after-epochs", "1"])
    zerotune(zt, env, parts, flags + ["--lora", "--resume"], check=False)
    got_parts = check_train.read_metrics(os.path.join(parts, "metrics.jsonl"))
    strip = lambda rows: [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k}  # noqa: E731
                          for r in rows]
    rep.check(strip(got_whole) == strip(got_parts), "resume: same metrics",
              f"{len(got_whole)} rows")
    same = all(open(os.path.join(whole, "epoch-1", f), "rb").read()
               == open(os.path.join(parts, "epoch-1", f), "rb").read()
               for f in ("adapter_model.safetensors", "adapter_config.json"))
    rep.check(same, "resume: same adapter bytes", "epoch-1")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args(argv)
    zt, work = os.path.abspath(args.zerotune), os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(1)
    rep = Report(40)
    env = check_train.setup(zt, work)
    adapter = write_adapter(env, work, "adapter", LCFG)
    out = os.path.join(work, "zt_adapter")
    compare(rep, "adapter", zerotune(zt, env, out, FLAGS + ["--adapter", adapter]),
            reference(env, adapter, LCFG))
    check_output(rep, env, out, LCFG)
    # The GPU's engine paths on the CPU (separate f32 master, optimizer on a host thread,
    # offloaded): frozen groups must not change a bit.
    os.environ["ZEROTUNE_ZERO_PATHS"] = "separate-master,host-thread"
    paths = os.path.join(work, "zt_paths")
    got = zerotune(zt, env, paths, FLAGS + ["--adapter", adapter, "--offload-optimizer", "cpu"])
    del os.environ["ZEROTUNE_ZERO_PATHS"]
    same = open(os.path.join(paths, "epoch-0", "adapter_model.safetensors"), "rb").read() == \
        open(os.path.join(out, "epoch-0", "adapter_model.safetensors"), "rb").read()
    strip = [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k} for r in got]
    base = [{k: v for k, v in r.items() if "time" not in k and "per_s" not in k}
            for r in check_train.read_metrics(os.path.join(out, "metrics.jsonl"))]
    rep.check(same and strip == base, "GPU engine paths on CPU: same bits",
              "separate master, host optimizer thread, --offload-optimizer cpu")
    check_generate(rep, zt, env, work, os.path.join(out, "epoch-0"))
    nodrop = dict(LCFG, lora_dropout=0.0)
    adapter0 = write_adapter(env, work, "adapter_nodrop", nodrop)
    want = reference(env, adapter0, nodrop)
    for stage in ("2", "3"):
        flags = [f for f in FLAGS]
        flags[flags.index("--grad_accum") + 1] = "1"
        got = zerotune(zt, env, os.path.join(work, f"zt_zero{stage}"),
                       flags + ["--adapter", adapter0, "-nd", "2", "--zero-stage", stage,
                                "--param-persistence-threshold", "0"])
        compare(rep, f"2 ranks stage {stage}", got, want)
    check_resume(rep, zt, env, work)
    check_errors(rep, zt, env, work)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
