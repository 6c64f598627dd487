#!/usr/bin/python3
"""Checks `zerotune train` (world size 1, --no-shuffle, --mx no) against train_ref.py.

  check_train.py --zerotune build/zerotune --workdir DIR [--threads N] [--skip-selfcheck]

Builds its own tiny setup with the binary under DIR (data synth 40/12, a 400-piece
SentencePiece tokenizer, a 2-layer dim-64 GQA model, ids from `zerotune tokenize`), then:
  selfcheck  train_ref.py against an independent computation (per-example unpadded
             losses and gradients weighted by token counts, hand-written clipping and
             AdamW, the LR formula) for 3 steps and the eval that follows
  a          2 epochs, -bs 4 --grad_accum 2, warmup 3, clip 1.0, wd 0.01, lr 1e-3, ctx 256
  b          -bs 3 --grad_accum 1 (14 steps per epoch, the last one a single example),
             2 epochs cut by --max-steps 17, clip 0, ctx 128 (some rows truncated)
  c          -bs 3 --grad_accum 3 (last step: micro-batches of 3 and 1), 1 epoch
  a_longest  (a) with --pad-to-longest: must match the reference of (a)
  a_packing  (a) with --packing: must match the unpacked zerotune run of (a)
Compared per step: loss (1e-5 relative), lr (1e-12 relative), grad_norm (1e-4 relative),
tokens (equal); per epoch: eval_loss (1e-5 relative), perplexity (exp(eval_loss) of its
own loss to 1e-6, and the reference's to 1e-4). Prints one line per check, ends with
`N passed, M failed` and exits 1 when anything failed.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_ref  # noqa: E402
from report import Report  # noqa: E402
import train_ref  # noqa: E402

PY = "/usr/bin/python3"
LOSS_TOL = 1e-5
LR_TOL = 1e-12
GNORM_TOL = 1e-4
EVAL_TOL = 1e-5
PPL_SELF_TOL = 1e-6
PPL_REF_TOL = 1e-4

COMMON = ["--no-shuffle", "--mx", "no", "--seed", "0"]
CONFIGS = {
    "a": ("256", ["-bs", "4", "--grad_accum", "2", "--eval-batch-size-per-device", "4", "--num-epochs", "2",
                  "--lr", "1e-3", "--warmup-steps", "3", "--max-steps", "0", "--weight-decay", "0.01",
                  "--grad-clip", "1.0", "--ctx-len", "256"]),
    "b": ("128", ["-bs", "3", "--grad_accum", "1", "--eval-batch-size-per-device", "5", "--num-epochs", "2",
                  "--lr", "1e-3", "--warmup-steps", "2", "--max-steps", "17", "--weight-decay", "0.0",
                  "--grad-clip", "0", "--ctx-len", "128"]),
    "c": ("256", ["-bs", "3", "--grad_accum", "3", "--eval-batch-size-per-device", "5", "--num-epochs", "1",
                  "--lr", "2e-3", "--warmup-steps", "0", "--max-steps", "0", "--weight-decay", "0.1",
                  "--grad-clip", "0.5", "--ctx-len", "256"]),
}


def run(cmd, timeout=600):
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} after {time.time() - t0:.1f}s:\n{tail}")
    return proc


def rel(a, b):
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    return abs(a - b) / abs(b) if b != 0 else math.inf


def read_metrics(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------


def setup(zt, work):
    paths = {k: os.path.join(work, k) for k in ("D", "TOK", "M")}
    for p in paths.values():
        if os.path.exists(p):
            shutil.rmtree(p)
    D, TOK, M = paths["D"], paths["TOK"], paths["M"]
    run([zt, "data", "synth", "--out", D, "--train", "40", "--test", "12", "--seed", "1"])
    tokens = os.path.join(D, "tokens.json")
    # 300 pieces is below this data's required characters + bytes; 400 fits.
    run([zt, "tokenizer", "train", "--input", os.path.join(D, "train.jsonl"), "--vocab-size", "400",
         "--out", TOK, "--special_token_path", tokens])
    run([zt, "init", "--out", M, "--preset", "tiny", "--dim", "64", "--n-layers", "2", "--n-heads", "4",
         "--n-kv-heads", "2", "--hidden", "128", "--tokenizer", TOK, "--special_token_path", tokens,
         "--max-positions", "512", "--seed", "3"])
    ids = {}
    for ctx in ("256", "128"):
        for split in ("train", "test"):
            out = os.path.join(work, f"{split}_ids_{ctx}.jsonl")
            proc = run([zt, "tokenize", "--tokenizer", M, "--special_token_path", tokens,
                        "--input", os.path.join(D, f"{split}.jsonl"), "--output", out, "--ctx-len", ctx])
            ids[(split, ctx)] = (out, json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"D": D, "M": M, "tokens": tokens, "ids": ids}


# ---------------------------------------------------------------------------
# Independent check of train_ref.py: per-example forwards, hand-written AdamW.
# ---------------------------------------------------------------------------


def selfcheck(rep, env, threads):
    M = env["M"]
    train_path, _ = env["ids"][("train", "256")]
    test_path, _ = env["ids"][("test", "256")]
    lr, wd, clip, warmup, max_steps, B, A = 1e-3, 0.01, 0.5, 1, 3, 4, 2
    out = os.path.join(os.path.dirname(M), "selfcheck_ref.jsonl")
    run([PY, os.path.join(HERE, "train_ref.py"), "--model", M, "--train-ids", train_path, "--test-ids", test_path,
         "--out", out, "--threads", str(threads), "-bs", str(B), "--grad_accum", str(A),
         "--eval-batch-size-per-device", "5", "--num-epochs", "1", "--lr", str(lr), "--warmup-steps", str(warmup),
         "--max-steps", str(max_steps), "--weight-decay", str(wd), "--grad-clip", str(clip), "--ctx-len", "256",
         *COMMON])
    ref = read_metrics(out)
    ref_train = [r for r in ref if r["type"] == "train"]
    ref_eval = [r for r in ref if r["type"] == "eval"]

    train_rows = train_ref.read_ids(train_path, 256)
    test_rows = train_ref.read_ids(test_path, 256)
    cfg, params = llama_ref.load_model(M)
    names = list(params)
    # Hand-written AdamW state (float64 math on the fp32 values would differ by rounding;
    # use fp32 tensors, the formula of torch.optim.AdamW's single-tensor path).
    m = {n: torch.zeros_like(params[n]) for n in names}
    v = {n: torch.zeros_like(params[n]) for n in names}
    G = B * A
    losses, gnorms, lrs, toks = [], [], [], []
    for k in range(max_steps):
        examples = train_rows[k * G : (k + 1) * G]
        total_tokens = sum(len(r) - 1 for r in examples)
        loss_sum = 0.0
        grads = {n: torch.zeros_like(params[n]) for n in names}
        for r in examples:  # each example alone, unpadded: mean CE over its len - 1 targets
            ids = torch.tensor([r], dtype=torch.int64)
            loss, tokens, g = llama_ref.loss_and_grads(cfg, params, ids, ids.clone())
            assert tokens == len(r) - 1
            loss_sum += loss * tokens
            for n in names:
                grads[n] += g[n] * (tokens / total_tokens)
        gnorm = math.sqrt(sum(float(grads[n].double().pow(2).sum()) for n in names))
        scale = min(1.0, clip / (gnorm + 1e-6))
        lam = k / warmup if k < warmup else max(0.0, (max_steps - k) / (max_steps - warmup))
        step_lr = lr * lam
        with torch.no_grad():
            for n in names:
                g = grads[n] * scale
                p = params[n]
                p.mul_(1 - step_lr * wd)
                m[n].mul_(0.9).add_(g, alpha=1 - 0.9)
                v[n].mul_(0.999).addcmul_(g, g, value=1 - 0.999)
                bc1 = 1 - 0.9 ** (k + 1)
                bc2 = 1 - 0.999 ** (k + 1)
                denom = (v[n].sqrt() / math.sqrt(bc2)).add_(1e-8)
                p.addcdiv_(m[n], denom, value=-step_lr / bc1)
        losses.append(loss_sum / total_tokens)
        gnorms.append(gnorm)
        lrs.append(step_lr)
        toks.append(total_tokens)
    with torch.no_grad():
        ev_sum, ev_tok = 0.0, 0
        for r in test_rows:
            ids = torch.tensor([r], dtype=torch.int64)
            loss, tokens = llama_ref.causal_lm_loss(llama_ref.forward_logits(cfg, params, ids), ids)
            ev_sum += float(loss) * tokens
            ev_tok += tokens
    ev = ev_sum / ev_tok

    ok = len(ref_train) == max_steps and len(ref_eval) == 1
    rep.check(ok, "selfcheck rows", f"{len(ref_train)} train + {len(ref_eval)} eval rows (want {max_steps} + 1)")
    if not ok:
        return
    e = max(rel(r["loss"], x) for r, x in zip(ref_train, losses))
    rep.check(e <= LOSS_TOL, "selfcheck loss (per-example weighted)", f"max rel err {e:.2e} over {max_steps} steps")
    e = max(rel(r["grad_norm"], x) for r, x in zip(ref_train, gnorms))
    rep.check(e <= GNORM_TOL, "selfcheck grad_norm", f"max rel err {e:.2e}")
    e = max(abs(r["lr"] - x) for r, x in zip(ref_train, lrs))
    rep.check(e <= LR_TOL * lr, "selfcheck lr formula", f"max abs err {e:.2e}; lrs {[r['lr'] for r in ref_train]}")
    ok = [r["tokens"] for r in ref_train] == toks
    rep.check(ok, "selfcheck tokens", f"{[r['tokens'] for r in ref_train]} vs {toks}")
    e = rel(ref_eval[0]["eval_loss"], ev)
    rep.check(e <= EVAL_TOL, "selfcheck eval_loss after 3 steps", f"rel err {e:.2e} ({ref_eval[0]['eval_loss']:.8f})")
    # The LR lambda for the main configurations, against the formula written out.
    for W, total in ((3, 10), (0, 5), (2, 17), (5, 3)):
        f = train_ref.lr_lambda_factory(W, total)
        want = [k / max(1, W) if k < W else max(0.0, (total - k) / max(1, total - W)) for k in range(total)]
        got = [f(k) for k in range(total)]
        if got != want:
            rep.check(False, f"selfcheck lr lambda W={W} total={total}", f"{got} vs {want}")
            return
    rep.check(True, "selfcheck lr lambda", "W/total in (3,10) (0,5) (2,17) (5,3) equal the formula")
    # The step plan of the partial-batch configurations.
    plan = train_ref.plan_steps(40, 3, 1)
    ok = len(plan) == 14 and plan[-1] == [[39]]
    plan3 = train_ref.plan_steps(40, 3, 3)
    ok = ok and len(plan3) == 5 and plan3[-1] == [[36, 37, 38], [39]]
    rep.check(ok, "selfcheck step plan", "40 ex: B3A1 -> 14 steps, last [[39]]; B3A3 -> 5 steps, last [[36,37,38],[39]]")


# ---------------------------------------------------------------------------
# zerotune train vs the reference
# ---------------------------------------------------------------------------


def zerotune_train(zt, env, work, name, ctx, flags, extra=()):
    out = os.path.join(work, f"zt_{name}")
    if os.path.exists(out):
        shutil.rmtree(out)
    D = env["D"]
    cmd = [zt, "train", "--model_name", env["M"], "--train_path", os.path.join(D, "train.jsonl"),
           "--test_path", os.path.join(D, "test.jsonl"), "--special_token_path", env["tokens"],
           "--output_dir", out, *flags, *COMMON, *extra]
    t0 = time.time()
    run(cmd)
    return read_metrics(os.path.join(out, "metrics.jsonl")), time.time() - t0


def reference_train(env, work, name, ctx, flags, threads):
    out = os.path.join(work, f"ref_{name}.jsonl")
    train_path, _ = env["ids"][("train", ctx)]
    test_path, _ = env["ids"][("test", ctx)]
    t0 = time.time()
    run([PY, os.path.join(HERE, "train_ref.py"), "--model", env["M"], "--train-ids", train_path,
         "--test-ids", test_path, "--out", out, "--threads", str(threads), *flags, *COMMON])
    return read_metrics(out), time.time() - t0


def compare(rep, name, got, want, against):
    """Compares zerotune metrics rows `got` with `want` (reference or another run)."""
    def key(r):
        return (r.get("type"), r.get("step"), r.get("epoch"))

    gk, wk = [key(r) for r in got], [key(r) for r in want]
    gt = [r for r in got if r.get("type") == "train"]
    wt = [r for r in want if r.get("type") == "train"]
    ge = [r for r in got if r.get("type") == "eval"]
    we = [r for r in want if r.get("type") == "eval"]
    rep.check(gk == wk, f"{name} rows vs {against}",
              f"{len(gt)} train + {len(ge)} eval rows (want {len(wt)} + {len(we)})"
              + ("" if gk == wk else f"; got {gk} want {wk}"))
    train_fields = ("loss", "lr", "grad_norm", "tokens", "tokens_per_s", "step_time_s")
    eval_fields = ("eval_loss", "perplexity", "train_time_s", "eval_time_s")
    missing = sorted({f for r in gt for f in train_fields if not isinstance(r.get(f), (int, float))}
                     | {f for r in ge for f in eval_fields if not isinstance(r.get(f), (int, float))})
    rep.check(not missing and gt and ge, f"{name} metric fields", "all present" if not missing else f"missing {missing}")

    # Compare train rows by step number, eval rows by epoch (so one missing row shows).
    wt_by = {r["step"]: r for r in wt}
    pairs = [(g, wt_by[g["step"]]) for g in gt if g.get("step") in wt_by]
    if not pairs:
        rep.check(False, f"{name} train steps", "no step in common")
    else:
        def worst(field, fn):
            errs = [(fn(g[field], w[field]), g["step"]) for g, w in pairs
                    if isinstance(g.get(field), (int, float))]
            return max(errs) if errs else (math.inf, None)

        e, s = worst("loss", rel)
        rep.check(e <= LOSS_TOL, f"{name} loss", f"max rel err {e:.2e} (step {s}) over {len(pairs)} steps")
        e, s = worst("lr", lambda a, b: abs(a - b) / abs(b) if b != 0 else abs(a))
        rep.check(e <= LR_TOL, f"{name} lr", f"max rel err {e:.2e} (step {s})")
        e, s = worst("grad_norm", rel)
        rep.check(e <= GNORM_TOL, f"{name} grad_norm", f"max rel err {e:.2e} (step {s})")
        bad = [(g["step"], g.get("tokens"), w["tokens"]) for g, w in pairs if g.get("tokens") != w["tokens"]]
        rep.check(not bad, f"{name} tokens", "equal" if not bad else f"(step, got, want) {bad[:4]}")
    we_by = {r["epoch"]: r for r in we}
    epairs = [(g, we_by[g["epoch"]]) for g in ge if g.get("epoch") in we_by]
    if not epairs:
        rep.check(False, f"{name} eval", "no eval epoch in common")
        return
    e = max(rel(g["eval_loss"], w["eval_loss"]) for g, w in epairs)
    rep.check(e <= EVAL_TOL, f"{name} eval_loss", f"max rel err {e:.2e} over {len(epairs)} evals; "
              f"got {[round(g['eval_loss'], 6) for g, _ in epairs]}")
    e_self = max(rel(g["perplexity"], math.exp(g["eval_loss"])) for g, _ in epairs)
    e_ref = max(rel(g["perplexity"], w["perplexity"]) for g, w in epairs)
    rep.check(e_self <= PPL_SELF_TOL and e_ref <= PPL_REF_TOL, f"{name} perplexity",
              f"vs exp(own eval_loss) {e_self:.2e}, vs {against} {e_ref:.2e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the reference")
    ap.add_argument("--skip-selfcheck", action="store_true")
    args = ap.parse_args(argv)
    zt = os.path.abspath(args.zerotune)
    work = os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(args.threads)
    rep = Report(40)

    try:
        env = setup(zt, work)
    except Exception as exc:  # noqa: BLE001
        rep.check(False, "setup", str(exc))
        return rep.finish()
    info = env["ids"][("train", "128")][1]
    rep.check(info.get("vocab_size") == llama_ref.load_config(env["M"])["vocab"], "setup",
              f"vocab {info.get('vocab_size')}; ctx 128 truncates {info.get('truncated_rows')} of 40 train rows")

    if not args.skip_selfcheck:
        try:
            selfcheck(rep, env, args.threads)
        except Exception as exc:  # noqa: BLE001
            rep.check(False, "selfcheck", str(exc))

    help_proc = subprocess.run([zt, "train", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if help_proc.returncode != 0:
        rep.check(False, "zerotune train exists",
                  f"`{zt} train --help` exited {help_proc.returncode}: the binary has no train command")
        return rep.finish()

    refs, zts = {}, {}
    for name, (ctx, flags) in CONFIGS.items():
        try:
            refs[name], t_ref = reference_train(env, work, name, ctx, flags, args.threads)
            zts[name], t_zt = zerotune_train(zt, env, work, name, ctx, flags)
        except Exception as exc:  # noqa: BLE001
            rep.check(False, f"{name} run", str(exc))
            continue
        print(f"      {name}: reference {t_ref:.1f}s, zerotune {t_zt:.1f}s", flush=True)
        compare(rep, name, zts[name], refs[name], "reference")

    ctx, flags = CONFIGS["a"]
    for name, extra, against in (("a_longest", ["--pad-to-longest"], "ref"), ("a_packing", ["--packing"], "zt")):
        base = refs.get("a") if against == "ref" else zts.get("a")
        if base is None:
            rep.check(False, f"{name} run", "configuration a did not run")
            continue
        try:
            got, t_zt = zerotune_train(zt, env, work, name, ctx, flags, extra)
        except Exception as exc:  # noqa: BLE001
            rep.check(False, f"{name} run", str(exc))
            continue
        print(f"      {name}: zerotune {t_zt:.1f}s", flush=True)
        compare(rep, name, got, base, "reference a" if against == "ref" else "unpacked zerotune a")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
