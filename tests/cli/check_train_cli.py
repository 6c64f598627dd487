#!/usr/bin/python3
"""Behaviour of `zerotune train` around the numbers (which check_train.py compares with PyTorch):
resume equivalence bit for bit, keep-best-n, --stop-perplexity, --as-test, checkpoint contents,
bad flags refused before any work with the existing output left untouched (the message naming the
flag and the value), --help marking the Python job's spellings and the dashed aliases, and
--ds-config's values written through each option's own rules (read back with --print-options).

  check_train_cli.py --zerotune BIN --workdir DIR

Ends with `N passed, M failed`; exits 1 when anything failed. The checkpoint's format is checked
by tests/reference/check_checkpoint.py (which needs python3-torch).
"""

import filecmp
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, metrics, tree_digest  # noqa: E402

report = Report(58)
check = report.check


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def make_run_one_based(out):
    """Turns a run stopped after two epochs into what an older zerotune wrote: checkpoint
    folders epoch-1.. and metrics/state epochs counted from 1, state format 2."""
    for k in sorted((int(d[6:]) for d in os.listdir(out) if d.startswith("epoch-")), reverse=True):
        os.rename(f"{out}/epoch-{k}", f"{out}/epoch-{k + 1}")
    rows = metrics(out)
    with open(f"{out}/metrics.jsonl", "w") as f:
        for m in rows:
            f.write(json.dumps(dict(m, epoch=m["epoch"] + 1)) + "\n")
    state_path = f"{out}/train_state/state.json"
    state = json.load(open(state_path))
    state["format"] = 2
    state["checkpoints"] = [[metric, epoch + 1] for metric, epoch in state["checkpoints"]]
    json.dump(state, open(state_path, "w"), indent=2)


def check_old_run_resumes(base, full, w):
    """A run saved with epochs counted from 1 resumes: its folders and rows are renumbered and
    it finishes as the uninterrupted run does."""
    old = f"{w}/old"
    r = run(base + ["--num-epochs", "3", "--output_dir", old, "--stop-after-epochs", "2"])
    if r.returncode != 0:
        check(False, "old-numbering run", r.stderr.strip()[-300:])
        return
    make_run_one_based(old)
    r = run(base + ["--num-epochs", "3", "--output_dir", old, "--resume"])
    folders = sorted(d for d in os.listdir(old) if d.startswith("epoch-"))
    same = r.returncode == 0 and filecmp.cmp(f"{full}/epoch-2/model.safetensors",
                                             f"{old}/epoch-2/model.safetensors", shallow=False)
    check(r.returncode == 0 and "renaming" in r.stderr and folders == ["epoch-0", "epoch-1", "epoch-2"],
          "a run saved with epoch-1.. names resumes, renamed to epoch-0..", str(folders))
    check(same and metrics(old) and [(m["type"], m["epoch"], m.get("loss")) for m in metrics(old)] ==
          [(m["type"], m["epoch"], m.get("loss")) for m in metrics(full)],
          "  and continues bit for bit, its metrics renumbered")


def options_printed(r):
    """{flag: value} from the lines of `zerotune train --print-options`."""
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


def help_entries(text):
    """{first spelling: its --help entry} (an entry may continue on the next line)."""
    entries, current = {}, None
    for line in text.splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
    return entries


def check_flag_declarations(base, w):
    """--help's marks, the aliases, and --ds-config's values through each option's own rules,
    read back with --print-options (nothing is trained)."""
    r = run([base[0], "train", "--help"])
    entries = help_entries(r.stdout)
    python = ["--model_name", "--train_path", "--test_path", "--special_token_path", "--output_dir",
              "--grad_accum", "--batch-size-per-device", "-nd", "--ctx-len", "--num-epochs", "--lr",
              "--eval-batch-size-per-device", "--as-test", "--ds-config", "--mx",
              "--num-checkpoints-to-keep", "--stop-perplexity", "--no-grad-ckpt", "--lora"]
    unmarked = [f for f in python if "as the Python job" not in entries.get(f, "")]
    marked_too = [f for f, e in entries.items() if f not in python and "as the Python job" in e]
    check(r.returncode == 0 and not unmarked and not marked_too,
          "--help marks exactly the Python job's spellings", str(unmarked + marked_too))
    check("-bs B" in entries.get("--batch-size-per-device", "") and
          "-nd, --num-devices N" in entries.get("-nd", ""), "--help lists -bs and -nd")
    aliases = {"--model_name": "--model-name", "--output_dir": "--output-dir",
               "--grad_accum": "--grad-accum", "--special_token_path": "--special-token-path"}
    check(all(f"alias {a}" in entries.get(f, "") for f, a in aliases.items()),
          "--help names the dashed aliases")
    check(entries.get("--lr", "").count("(default: 5e-06; 1e-04 with --lora)") == 1 and
          "(default: 10 x -nd)" in entries.get("--warmup-steps", ""), "--help shows defaults")

    req = [base[0], "train", "--model-name", "m", "--train-path", "a", "--test-path", "b",
           "--output-dir", "o"]
    r = run(req + ["--grad-accum", "3", "-nd", "2", "--print-options"])
    got = options_printed(r)
    want = {"--model_name": "m", "--grad_accum": "3", "--output_dir": "o", "--warmup-steps": "20"}
    check(r.returncode == 0 and all(got.get(k) == v for k, v in want.items()),
          "aliases read; warm-up defaults to 10 x -nd",
          str({k: got.get(k) for k in want}) + r.stderr[-200:])

    ds = f"{w}/typed_ds.json"
    with open(ds, "w") as f:
        json.dump({"train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": "auto",
                   "gradient_clipping": 0.5,
                   "zero_optimization": {"stage": 2, "stage3_param_persistence_threshold": 7,
                                         "offload_optimizer": {"device": "cpu"}}}, f)
    r = run(req + ["-bs", "8", "--grad_accum", "2", "--ds-config", ds, "--print-options"])
    got = options_printed(r)
    want = {"--batch-size-per-device": "3", "--grad_accum": "2", "--grad-clip": "0.5",
            "--zero-stage": "2", "--param-persistence-threshold": "7",
            "--offload-optimizer": "cpu"}
    check(r.returncode == 0 and all(got.get(k) == v for k, v in want.items()),
          "--ds-config writes typed values over the flags ('auto' keeps them)",
          str({k: got.get(k) for k in want}) + r.stderr[-200:])

    for name, config, needles in [
            ("stage", {"zero_optimization": {"stage": 4}},
             ['"zero_optimization".stage must be 0-3', "got 4"]),
            ("device", {"zero_optimization": {"offload_optimizer": {"device": "disk"}}},
             ["offload_optimizer.device must be none, cpu or nvme", "'disk'"]),
            ("micro batch", {"train_micro_batch_size_per_gpu": 0},
             ['"train_micro_batch_size_per_gpu" must be positive', "got 0"]),
            ("clipping", {"gradient_clipping": -2}, ['"gradient_clipping" must be >= 0', "got -2"])]:
        with open(ds, "w") as f:
            json.dump(config, f)
        r = run(req + ["--ds-config", ds, "--print-options"])
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        check(r.returncode == 1 and ds in msg and all(n in msg for n in needles),
              f"--ds-config {name} checked by the option's rule", msg)


def main():
    _, z, w = check_args()
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "setup", str(e))
        return report.finish()

    base = [z, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
            "--test_path", f"{data}/test.jsonl", "--special_token_path", f"{data}/tokens.json",
            "-bs", "4", "--eval-batch-size-per-device", "8", "--lr", "3e-3", "--ctx-len", "192",
            "--warmup-steps", "2", "--seed", "7", "--packing"]

    # Resume: 3 epochs straight vs 1 epoch, stop, --resume.
    full, split = f"{w}/full", f"{w}/split"
    r1 = run(base + ["--num-epochs", "3", "--output_dir", full])
    check(r1.returncode == 0, "train 3 epochs", r1.stderr.strip()[-300:] if r1.returncode else "")
    r2 = run(base + ["--num-epochs", "3", "--output_dir", split, "--stop-after-epochs", "1"])
    check(r2.returncode == 0 and os.path.exists(f"{split}/epoch-0") and not os.path.exists(f"{split}/epoch-1"),
          "stop after the first epoch (epoch-0)")
    if r2.returncode == 0:
        # What a crash mid-epoch 2 leaves: metric rows past the saved state, a half-written save.
        with open(f"{split}/metrics.jsonl", "a") as f:
            f.write(json.dumps({"type": "train", "step": 999, "epoch": 1, "loss": 1.0}) + "\n")
        os.makedirs(f"{split}/epoch-1.tmp-12345")
        r = run(base + ["--num-epochs", "3", "--output_dir", split, "--resume", "--lr", "1e-3"])
        check(r.returncode != 0 and "resume with the same flags" in r.stderr,
              "resume with a different --lr is refused", r.stderr.strip()[-160:])
    r3 = run(base + ["--num-epochs", "3", "--output_dir", split, "--resume"])
    check(not os.path.exists(f"{split}/epoch-1.tmp-12345"), "resume removes an interrupted save")
    check(r3.returncode == 0, "resume", r3.stderr.strip()[-300:] if r3.returncode else "")
    if r1.returncode == 0 and r3.returncode == 0:
        a = [(m["type"], m["epoch"], m.get("loss"), m.get("lr"), m.get("grad_norm"), m.get("eval_loss"))
             for m in metrics(full)]
        b = [(m["type"], m["epoch"], m.get("loss"), m.get("lr"), m.get("grad_norm"), m.get("eval_loss"))
             for m in metrics(split)]
        check(a == b, "resumed metrics equal the uninterrupted run's, bit for bit",
              f"{len(a)} vs {len(b)} rows")
        same = filecmp.cmp(f"{full}/epoch-2/model.safetensors", f"{split}/epoch-2/model.safetensors",
                           shallow=False)
        check(same, "resumed final checkpoint bytes equal")
        rows = metrics(full)
        evals = [m for m in rows if m["type"] == "eval"]
        check(len(evals) == 3 and evals[-1]["perplexity"] < evals[0]["perplexity"],
              "eval perplexity falls", str([round(e["perplexity"], 3) for e in evals]))
        train_rows = [m for m in rows if m["type"] == "train"]
        check([m["step"] for m in train_rows] == list(range(1, len(train_rows) + 1)),
              "train rows numbered from 1")
        check(train_rows[0]["lr"] == 0.0, "warm-up: first step uses lr 0")
        files = sorted(os.listdir(f"{full}/epoch-0"))
        want = ["added_tokens.json", "config.json", "generation_config.json", "model.safetensors",
                "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
                "tokenizer_config.json"]
        check(files == want, "checkpoint files", str(files))
        cfg = json.load(open(f"{full}/epoch-0/config.json"))
        check(cfg["vocab_size"] == 404 and cfg["architectures"] == ["LlamaForCausalLM"],
              "checkpoint config.json", f"vocab_size {cfg['vocab_size']}")
        checker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference",
                               "check_checkpoint.py")
        r = run([sys.executable, checker, "--folder", f"{full}/epoch-0", "--expect-tokenizer"])
        check(r.returncode == 0, "epoch-0 is a Hugging Face folder (check_checkpoint.py)",
              (r.stdout + r.stderr).strip().splitlines()[-1] if (r.stdout + r.stderr).strip() else "")
        added = json.load(open(f"{full}/epoch-0/added_tokens.json"))
        check(added == {"<START_Q>": 400, "<END_Q>": 401, "<START_A>": 402, "<END_A>": 403},
              "checkpoint added_tokens.json", str(added))
        folders = sorted(d for d in os.listdir(full) if d.startswith("epoch-"))
        check(folders == ["epoch-0", "epoch-1", "epoch-2"] and
              [m["epoch"] for m in evals] == [0, 1, 2] and
              {m["epoch"] for m in train_rows} == {0, 1, 2},
              "checkpoints epoch-0..2, as the Python job names them, and metrics rows' epochs agree",
              f"{folders}, eval epochs {[m['epoch'] for m in evals]}")
        check_old_run_resumes(base, full, w)

    # Keep the best one of three epochs.
    best = f"{w}/best"
    r = run(base + ["--num-epochs", "3", "--output_dir", best, "--num-checkpoints-to-keep", "1"])
    if r.returncode == 0:
        evals = [m for m in metrics(best) if m["type"] == "eval"]
        want = min(evals, key=lambda m: m["perplexity"])["epoch"]
        kept = sorted(d for d in os.listdir(best) if d.startswith("epoch-"))
        check(kept == [f"epoch-{want}"], "keep-best-1 keeps the lowest perplexity", str(kept))
    else:
        check(False, "keep-best-1 run", r.stderr.strip()[-300:])

    # --stop-perplexity: any perplexity is below 1e9, so one epoch only.
    stop = f"{w}/stop"
    r = run(base + ["--num-epochs", "3", "--output_dir", stop, "--stop-perplexity", "1e9"])
    kept = sorted(d for d in os.listdir(stop) if d.startswith("epoch-")) if r.returncode == 0 else []
    check(r.returncode == 0 and kept == ["epoch-0"], "--stop-perplexity stops after the first epoch", str(kept))

    # --as-test: one train row, a checkpoint, done.
    astest = f"{w}/astest"
    r = run(base + ["--num-epochs", "3", "--output_dir", astest, "--as-test"])
    ok = r.returncode == 0 and os.path.exists(f"{astest}/epoch-0/model.safetensors")
    ok = ok and [m["type"] for m in metrics(astest)] == ["train"]
    check(ok, "--as-test: one step, a checkpoint, no evaluation", r.stderr.strip()[-200:] if not ok else "")

    # Divergence is reported as such, not as a JSON error.
    r = run(base + ["--num-epochs", "1", "--output_dir", f"{w}/diverge", "--lr", "1e30",
                    "--grad-clip", "0", "--warmup-steps", "0"])
    check(r.returncode != 0 and "diverged" in r.stderr, "a diverging run stops with a clear message",
          r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "")

    # --ds-config: honoured keys override flags ("auto" keeps them), ignored keys are named.
    ds = f"{w}/ds.json"
    with open(ds, "w") as f:
        json.dump({"train_batch_size": 3, "train_micro_batch_size_per_gpu": 3,
                   "gradient_accumulation_steps": "auto",
                   "gradient_clipping": 0.5, "bf16": {"enabled": True},
                   "zero_optimization": {"stage": 3, "overlap_comm": True},
                   "steps_per_print": 10}, f)
    dsrun = f"{w}/dsrun"
    r = run(base + ["--num-epochs", "1", "--output_dir", dsrun, "--ds-config", ds,
                    "--save-dtype", "bf16"])
    if r.returncode == 0:
        rows = [m for m in metrics(dsrun) if m["type"] == "train"]
        check(len(rows) == 8, "--ds-config micro batch 3: 24 examples in 8 steps", f"{len(rows)} steps")
        check("ignoring \"steps_per_print\"" in r.stderr and "zero_optimization.overlap_comm" in r.stderr,
              "--ds-config warns about each ignored key")
        with open(f"{dsrun}/epoch-0/model.safetensors", "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        check(dtypes == {"BF16"}, "--save-dtype bf16 checkpoint", str(dtypes))
    else:
        check(False, "--ds-config run", r.stderr.strip()[-300:])

    check_flag_declarations(base, w)

    # Bad flags: refused before any work, the existing run untouched; the message names the flag
    # and the value.
    if os.path.exists(full):
        before = tree_digest(full)
        bad = [(["--ctx-len", "0"], "--ctx-len", "got 0"),
               (["-bs", "0"], "--batch-size-per-device", "got 0"),
               (["--lr", "-1"], "--lr", "got -1"), (["--bogus"], "--bogus"),
               (["--mx", "fp8"], "--mx", "'fp8'"), (["--grad-clip", "-1"], "--grad-clip", "got -1"),
               (["-nd", "0"], "-nd", "got 0"), (["--zero-stage", "4"], "--zero-stage", "got 4"),
               (["--offload-optimizer", "nvme"], "--nvme-path"),
               (["--seed", "x"], "--seed", "'x'"),
               ([], "--resume")]  # an existing run without --resume
        for extra, *needles in bad:
            r = run(base + ["--num-epochs", "1", "--output_dir", full] + extra)
            msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            check(r.returncode != 0 and all(n in msg for n in needles),
                  f"refused {' '.join(extra) or 'existing run'}", msg)
        check(tree_digest(full) == before, "failed starts left the existing run untouched")

    # A torchrun-style launch (RANK, WORLD_SIZE, ...) runs over NCCL: CPU ranks are refused, naming
    # the launch that works, before anything is written.
    out = f"{w}/env_launch"
    env = dict(os.environ, RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="29561")
    r = run(base + ["--num-epochs", "1", "--output_dir", out, "--device", "cpu"], env=env)
    msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    check(r.returncode != 0 and "RANK/WORLD_SIZE" in msg and "mpirun" in msg and
          not os.path.exists(out), "a RANK/WORLD_SIZE launch of CPU ranks is refused", msg)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
