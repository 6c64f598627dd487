#!/usr/bin/python3
"""PyTorch fp32 reference of `zerotune train` (world size 1, --no-shuffle).

  train_ref.py --model DIR --train-ids TRAIN_IDS.jsonl --test-ids TEST_IDS.jsonl \
      --ctx-len T [-bs B] [--eval-batch-size-per-device E] [--num-epochs N] [--lr LR] \
      [--grad_accum A] [--warmup-steps W] [--max-steps M] [--weight-decay WD] \
      [--grad-clip C] --no-shuffle [--seed S] [--mx no] [--pad-to-longest] [--packing] \
      --out metrics.jsonl

The id files are what `zerotune tokenize ... --ctx-len T` writes ({"input_ids": [...]}
per row), so tokenisation is not part of what is compared. Run with /usr/bin/python3.

What it models (the `zerotune train` contract):
  - G = B * A examples per optimizer step, in file order; step s of an epoch takes
    examples s*G ... s*G+G-1 as A micro-batches of B consecutive examples; the last step
    of an epoch takes what is left (smaller or fewer micro-batches).
    steps_per_epoch = ceil(N / G); total_steps = epochs * steps_per_epoch, or max_steps
    when 0 < max_steps < that.
  - Micro-batch: right-pad to T (or to its longest row with --pad-to-longest) with the
    eos id 2; labels = ids with -100 on the padding only; HF shift inside the loss.
  - Step loss = sum of token cross-entropies of all micro-batches / non-ignored (shifted)
    label positions of the whole global batch. "tokens" is that count.
  - grad_norm = total 2-norm before clipping; clipping = torch.nn.utils.clip_grad_norm_
    (C = 0: off). torch.optim.AdamW(lr, (0.9, 0.999), 1e-8, WD), one group.
  - LR = transformers.get_linear_schedule_with_warmup(W, total_steps) through LambdaLR.
  - After each epoch that trained (also one cut short by --max-steps): token-weighted
    eval loss over the test set in batches of E, perplexity = exp(eval loss).
  - --packing changes nothing here: packed rows give the same loss (same token set).
Time fields are written as 0.
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

PAD_ID = 2  # pad id = eos id


def read_ids(path, ctx_len):
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            ids = [int(t) for t in json.loads(line)["input_ids"]]
            if not ids:
                raise ValueError(f"{path}:{lineno}: empty input_ids")
            if len(ids) > ctx_len:
                raise ValueError(f"{path}:{lineno}: {len(ids)} ids > --ctx-len {ctx_len}")
            rows.append(ids)
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def collate(rows, ctx_len, pad_to_longest):
    """Right-pads rows; labels are the ids with -100 on the padding positions only."""
    width = max(len(r) for r in rows) if pad_to_longest else ctx_len
    ids = torch.full((len(rows), width), PAD_ID, dtype=torch.int64)
    labels = torch.full((len(rows), width), -100, dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        labels[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
    return ids, labels


def sum_loss(cfg, params, ids, labels):
    """(sum of shifted token cross-entropies, number of non-ignored shifted labels)."""
    logits = llama_ref.forward_logits(cfg, params, ids)
    V = logits.shape[-1]
    shift_logits = logits[:, :-1].reshape(-1, V)
    shift_labels = labels[:, 1:].reshape(-1)
    tokens = int((shift_labels != -100).sum())
    loss = F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="sum")
    return loss, tokens


def count_tokens(rows):
    # Each row of n real ids contributes n - 1 shifted labels (only padding is ignored).
    return sum(len(r) - 1 for r in rows)


def lr_lambda_factory(warmup, total_steps):
    # transformers.get_linear_schedule_with_warmup's lr_lambda, verbatim.
    def lr_lambda(current_step):
        if current_step < warmup:
            return float(current_step) / float(max(1, warmup))
        return max(0.0, float(total_steps - current_step) / float(max(1, total_steps - warmup)))

    return lr_lambda


def plan_steps(n_train, bs, grad_accum):
    """Per step of one epoch: list of micro-batches, each a list of example indices."""
    G = bs * grad_accum
    steps = []
    for start in range(0, n_train, G):
        chunk = list(range(start, min(start + G, n_train)))
        steps.append([chunk[i : i + bs] for i in range(0, len(chunk), bs)])
    return steps


def evaluate(cfg, params, test_rows, eval_bs, ctx_len, pad_to_longest):
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(test_rows), eval_bs):
            ids, labels = collate(test_rows[i : i + eval_bs], ctx_len, pad_to_longest)
            loss, n = sum_loss(cfg, params, ids, labels)
            total += float(loss)
            tokens += n
    eval_loss = total / tokens
    return eval_loss, math.exp(eval_loss)


def train(args, out_rows):
    if not args.no_shuffle:
        raise SystemExit("train_ref.py: only --no-shuffle (file order) is modelled")
    if args.mx not in ("no", None):
        raise SystemExit("train_ref.py: only --mx no (fp32) is modelled")
    torch.manual_seed(args.seed)
    cfg, params = llama_ref.load_model(args.model)
    train_rows = read_ids(args.train_ids, args.ctx_len)
    test_rows = read_ids(args.test_ids, args.ctx_len)
    for path, rows in ((args.train_ids, train_rows), (args.test_ids, test_rows)):
        top = max(max(r) for r in rows)
        if top >= cfg["vocab"]:
            raise ValueError(f"{path}: token id {top} >= vocab_size {cfg['vocab']}")

    plan = plan_steps(len(train_rows), args.bs, args.grad_accum)
    steps_per_epoch = len(plan)
    total_steps = args.num_epochs * steps_per_epoch
    if 0 < args.max_steps < total_steps:
        total_steps = args.max_steps

    plist = list(params.values())
    opt = torch.optim.AdamW(plist, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda_factory(args.warmup_steps, total_steps))

    step = 0
    for epoch in range(args.num_epochs):  # numbered from 0, as the Python job names epoch-0
        if step >= total_steps:
            break
        for micro_batches in plan:
            if step >= total_steps:
                break
            global_tokens = sum(count_tokens([train_rows[i] for i in mb]) for mb in micro_batches)
            opt.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for mb in micro_batches:
                ids, labels = collate([train_rows[i] for i in mb], args.ctx_len, args.pad_to_longest)
                loss, _ = sum_loss(cfg, params, ids, labels)
                (loss / global_tokens).backward()  # gradients accumulate across micro-batches
                loss_sum += float(loss)
            grads = [p.grad for p in plist if p.grad is not None]
            grad_norm = torch.norm(torch.stack([torch.norm(g.detach(), 2.0) for g in grads]), 2.0)
            if args.grad_clip > 0:
                clipped_norm = torch.nn.utils.clip_grad_norm_(plist, args.grad_clip)
                assert float(clipped_norm) == float(grad_norm)
            lr_used = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            row = {
                "type": "train",
                "step": step,
                "epoch": epoch,
                "loss": loss_sum / global_tokens,
                "lr": lr_used,
                "grad_norm": float(grad_norm),
                "tokens": global_tokens,
                "tokens_per_s": 0.0,
                "step_time_s": 0.0,
            }
            out_rows.append(row)
            print(json.dumps(row), flush=True)
        eval_loss, ppl = evaluate(cfg, params, test_rows, args.eval_bs, args.ctx_len, args.pad_to_longest)
        row = {
            "type": "eval",
            "epoch": epoch,
            "eval_loss": eval_loss,
            "perplexity": ppl,
            "train_time_s": 0.0,
            "eval_time_s": 0.0,
        }
        out_rows.append(row)
        print(json.dumps(row), flush=True)
    return params


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF model folder (vocabulary already holds the added tokens)")
    ap.add_argument("--train-ids", "--train_ids", dest="train_ids", required=True)
    ap.add_argument("--test-ids", "--test_ids", dest="test_ids", required=True)
    ap.add_argument("--out", required=True, help="metrics.jsonl to write")
    ap.add_argument("-bs", "--batch-size-per-device", "--batch_size_per_device", dest="bs", type=int, default=1)
    ap.add_argument("--eval-batch-size-per-device", "--eval_batch_size_per_device", dest="eval_bs", type=int,
                    default=1)
    ap.add_argument("--num-epochs", "--num_epochs", dest="num_epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-6)
    ap.add_argument("--ctx-len", "--ctx_len", dest="ctx_len", type=int, required=True)
    ap.add_argument("--grad_accum", "--grad-accum", dest="grad_accum", type=int, default=1)
    ap.add_argument("--warmup-steps", "--warmup_steps", dest="warmup_steps", type=int, default=0)
    ap.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int, default=0)
    ap.add_argument("--weight-decay", "--weight_decay", dest="weight_decay", type=float, default=0.0)
    ap.add_argument("--grad-clip", "--grad_clip", dest="grad_clip", type=float, default=0.0)
    ap.add_argument("--no-shuffle", "--no_shuffle", dest="no_shuffle", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mx", default="no")
    ap.add_argument("--pad-to-longest", "--pad_to_longest", dest="pad_to_longest", action="store_true")
    ap.add_argument("--packing", action="store_true", help="accepted; packed losses equal the unpacked ones")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    for name in ("bs", "eval_bs", "num_epochs", "ctx_len", "grad_accum"):
        if getattr(args, name) < 1:
            raise SystemExit(f"train_ref.py: --{name} must be >= 1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows = []
    train(args, rows)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
