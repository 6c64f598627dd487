#!/usr/bin/python3
"""Checks zerotune's loss, every parameter gradient and AdamW losses against llama_ref.

  check_model.py --zerotune build/zerotune --workdir DIR [--only NAME[,NAME...]]

Each case writes a random model and batch (make_model.py), runs
`zerotune debug grads`, and compares with the PyTorch reference:
  loss        relative error <= 1e-5
  tokens      equal
  gradients   same names and shapes; for every tensor ||a - b|| / ||b|| <= 1e-4
Plus: --grad-ckpt gives the same gradient bytes, a rerun gives the same bytes, and
10 AdamW steps (`zerotune debug steps`) give losses within 1e-5 relative of
torch.optim.AdamW step by step. Prints one line per check and ends with
`N passed, M failed`; exits 1 when anything failed.
"""

import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from report import Report  # noqa: E402
import make_model  # noqa: E402

LOSS_TOL = 1e-5
GRAD_TOL = 1e-4
STEPS_TOL = 1e-5

# name: (make_model model args, (batch size, seq len, batch seed))
CASES = {
    "a_gqa_6to2": ("--dim 96 --layers 2 --heads 6 --kv-heads 2 --hidden 256 --vocab 128", (3, 16, 1)),
    "b_tied_3layers": ("--dim 64 --layers 3 --heads 4 --kv-heads 4 --hidden 160 --vocab 100 --tie", (2, 12, 2)),
    "c_mqa_8to1": ("--dim 128 --layers 2 --heads 8 --kv-heads 1 --hidden 320 --vocab 150", (2, 20, 3)),
    "d_bf16_2shards": ("--dim 96 --layers 2 --heads 6 --kv-heads 2 --hidden 256 --vocab 128 --dtype bf16 --shards 2",
                       (3, 16, 4)),
    "e_mistral": ("--dim 64 --layers 2 --heads 4 --kv-heads 2 --hidden 192 --vocab 120 --arch MistralForCausalLM",
                  (2, 16, 5)),
    "f_odd_sizes": ("--dim 96 --layers 2 --heads 6 --kv-heads 3 --hidden 200 --vocab 301", (3, 37, 6)),
    # Beyond the core table: explicit head_dim (H*Dh != D), Llama-3 rope_theta, eps, f16 file.
    "g_headdim_theta_f16": ("--dim 64 --layers 2 --heads 4 --kv-heads 2 --head-dim 24 --hidden 160 --vocab 90 "
                            "--rope-theta 500000 --rms-eps 1e-6 --dtype f16", (2, 24, 7)),
}
CKPT_CASE = "a_gqa_6to2"
STEPS_CASE = "a_gqa_6to2"


def rel_err(a, b):
    denom = float(b.double().norm())
    diff = float((a.double() - b.double()).norm())
    return diff / denom if denom > 0 else diff


def last_json(stdout):
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line on stdout")


def run_zerotune(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"exit {proc.returncode}: {' | '.join(tail)}")
    return last_json(proc.stdout)


def prepare(workdir, name):
    model_args, (batch_size, seq_len, batch_seed) = CASES[name]
    model_dir = os.path.join(workdir, name)
    batch = os.path.join(workdir, name + ".jsonl")
    make_model.main(model_args.split() + ["--out", model_dir, "--seed", str(batch_seed + 100)])
    vocab = model_args.split()[model_args.split().index("--vocab") + 1]
    make_model.main(["--batch", batch, "--batch-size", str(batch_size), "--seq-len", str(seq_len),
                     "--vocab", vocab, "--seed", str(batch_seed)])
    return model_dir, batch


def compare_grads(report, name, got, want):
    report.check(
        set(got) == set(want), f"{name} grad names",
        f"missing {sorted(set(want) - set(got))[:4]} extra {sorted(set(got) - set(want))[:4]}"
        if set(got) != set(want) else f"{len(want)} tensors")
    worst, worst_name, bad = -1.0, "-", []
    for n in sorted(set(got) & set(want)):
        if tuple(got[n].shape) != tuple(want[n].shape) or got[n].dtype != torch.float32:
            bad.append(f"{n}: {got[n].dtype}{list(got[n].shape)} vs f32{list(want[n].shape)}")
            continue
        e = rel_err(got[n], want[n])
        if not e <= GRAD_TOL:  # also catches NaN
            bad.append(f"{n}: rel err {e:.3e}")
        if not e <= worst:
            worst, worst_name = e, n
    detail = f"max rel err {worst:.3e} ({worst_name}) tol {GRAD_TOL:.0e}"
    ok = report.check(not bad, f"{name} grads", detail)
    for line in bad[:20]:
        print(f"      {line}")
    return ok


def check_grads_case(report, zt, workdir, name):
    model_dir, batch = prepare(workdir, name)
    out = os.path.join(workdir, name + ".zt_grads.safetensors")
    try:
        res = run_zerotune([zt, "debug", "grads", "--model", model_dir, "--batch", batch, "--out", out])
        got, _ = llama_ref.read_safetensors(out)
    except Exception as e:  # noqa: BLE001 - report and continue with the next case
        report.check(False, f"{name} zerotune debug grads", str(e))
        return None
    cfg, params = llama_ref.load_model(model_dir)
    ids, labels = llama_ref.read_batch(batch)
    loss, tokens, want = llama_ref.loss_and_grads(cfg, params, ids, labels)
    e = abs(float(res.get("loss", float("nan"))) - loss) / abs(loss)
    report.check(e <= LOSS_TOL, f"{name} loss",
                 f"zerotune {res.get('loss')} ref {loss:.9g} rel err {e:.3e} tol {LOSS_TOL:.0e}")
    report.check(res.get("tokens") == tokens, f"{name} tokens", f"zerotune {res.get('tokens')} ref {tokens}")
    compare_grads(report, name, got, want)
    return model_dir, batch, out


def identical_bytes(a_path, b_path):
    a, _ = llama_ref.read_safetensors(a_path)
    b, _ = llama_ref.read_safetensors(b_path)
    if set(a) != set(b):
        return False, "different tensor names"
    diff = [n for n in sorted(a) if a[n].shape != b[n].shape or a[n].dtype != b[n].dtype
            or a[n].numpy().tobytes() != b[n].numpy().tobytes()]
    if diff:
        worst = max(rel_err(a[n], b[n]) for n in diff if a[n].shape == b[n].shape)
        return False, f"{len(diff)} tensors differ (first {diff[0]}, max rel diff {worst:.3e})"
    return True, f"{len(a)} tensors bitwise equal"


def check_same_bytes(report, zt, tag, label, prepared, extra):
    model_dir, batch, base_out = prepared
    out = base_out.replace(".zt_grads.", f".zt_grads_{tag}.")
    try:
        run_zerotune([zt, "debug", "grads", "--model", model_dir, "--batch", batch, "--out", out] + extra)
        ok, detail = identical_bytes(out, base_out)
    except Exception as e:  # noqa: BLE001
        ok, detail = False, str(e)
    report.check(ok, f"{os.path.basename(model_dir)} {label}", detail)


def check_steps(report, zt, workdir, name, steps=10, lr=1e-3, wd=0.1):
    model_dir, batch = os.path.join(workdir, name), os.path.join(workdir, name + ".jsonl")
    try:
        res = run_zerotune([zt, "debug", "steps", "--model", model_dir, "--batch", batch,
                            "--steps", str(steps), "--lr", str(lr), "--weight-decay", str(wd)])
        got = [float(x) for x in res["losses"]]
    except Exception as e:  # noqa: BLE001
        report.check(False, f"{name} adamw {steps} steps", str(e))
        return
    cfg, params = llama_ref.load_model(model_dir)
    ids, labels = llama_ref.read_batch(batch)
    want = llama_ref.adamw_losses(cfg, params, ids, labels, steps, lr, wd)
    if len(got) != len(want):
        report.check(False, f"{name} adamw {steps} steps", f"{len(got)} losses, expected {len(want)}")
        return
    errs = [abs(g - w) / abs(w) for g, w in zip(got, want)]
    worst = max(range(len(errs)), key=lambda i: errs[i])
    ok = all(e <= STEPS_TOL for e in errs)
    report.check(ok, f"{name} adamw {steps} steps",
                 f"max rel err {errs[worst]:.3e} at step {worst + 1} tol {STEPS_TOL:.0e} "
                 f"(ref {want[0]:.6f} -> {want[-1]:.6f})")
    if not ok:
        for k, (g, w, e) in enumerate(zip(got, want, errs), 1):
            print(f"      step {k}: zerotune {g:.9g} ref {w:.9g} rel err {e:.3e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True, help="path to the zerotune binary")
    ap.add_argument("--workdir", required=True, help="scratch folder for models, batches, gradients")
    ap.add_argument("--only", help="comma-separated case names (default: all)")
    args = ap.parse_args(argv)
    zt = os.path.abspath(args.zerotune)
    if not os.access(zt, os.X_OK):
        sys.exit(f"check_model: {zt} is not an executable (run scripts/build.sh)")
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)
    names = args.only.split(",") if args.only else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"check_model: unknown cases {unknown}; known: {list(CASES)}")
    report = Report(34)
    prepared = {}
    for name in names:
        prepared[name] = check_grads_case(report, zt, args.workdir, name)
    if prepared.get(CKPT_CASE):
        check_same_bytes(report, zt, "ckpt", "grad-ckpt same bytes", prepared[CKPT_CASE], ["--grad-ckpt"])
        check_same_bytes(report, zt, "rerun", "rerun same bytes", prepared[CKPT_CASE], [])
    if STEPS_CASE in prepared:
        check_steps(report, zt, args.workdir, STEPS_CASE)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
