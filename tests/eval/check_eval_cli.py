#!/usr/bin/python3
"""`zerotune eval` and accuracy in training, end to end on tiny models made by zerotune itself:
bad input refused (one line naming file and line, exit 1, --out not written); completions equal a
loop of `zerotune generate` over the same prompts, and batch 8 equals batch 1 token for token;
references without a number counted as skipped; the lm-eval prompt built as the harness's gsm8k
task builds it and its filters equal Python re's reading of the same completions with the task's
own patterns; `train --eval-accuracy N --checkpoint-metric accuracy` on 2 ranks under mpirun writes
accuracy and accuracy_examples in each eval row, keeps the most accurate epoch, and its accuracy
equals what `zerotune eval` gives for that epoch's checkpoint.

  check_eval_cli.py --zerotune BIN --workdir DIR

Ends with `N passed, M failed`; exits 1 when anything failed.
"""

import json
import os
import pty
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, metrics  # noqa: E402

report = Report(64)
check = report.check

ENV = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMPI_ALLOW_RUN_AS_ROOT="1",
           OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")

# lm-evaluation-harness's gsm8k task (lm_eval/tasks/gsm8k/gsm8k.yaml), as written there.
HARNESS_STRICT = r"#### (\-?[0-9\.\,]+)"
HARNESS_FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, **kw)


def run_on_terminal(cmd, timeout=400):
    """(exit status, stderr) of `cmd` with its stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=follower,
                            env=ENV)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def seed_rows(path):
    return [r["input"] for r in read_jsonl(path)]


def question_of(text):
    return text.split("<END_Q>")[0] + "<END_Q>"


def check_bad_input(z, model, w):
    good = seed_rows(f"{w}/data/test.jsonl")[0]
    out = f"{w}/bad_out.jsonl"
    cases = [
        ("a row without <START_A>", [{"input": good}, {"input": "<START_Q>q<END_Q>a<END_A>"}], [],
         ":2: the row has no <START_A>"),
        ("an answer without ####", [{"input": "<START_Q>q<END_Q><START_A>it is 4<END_A>"}], [],
         ":1: the answer has no \"####\""),
        ("an empty file", [], [], ": no rows"),
        ("--limit 0", [{"input": good}], ["--limit", "0"], "--limit must be >= 1"),
        ("--format other", [{"input": good}], ["--format", "harness"],
         "--format must be seed or lm-eval"),
        ("lm-eval: an answer without ####", [{"question": "q", "answer": "#### 1"},
                                             {"question": "q", "answer": "four"}],
         ["--format", "lm-eval", "--num-fewshot", "0"], ":2: \"answer\" has no \"####\""),
    ]
    cases.append(("--out in a missing folder", [{"input": good}],
                  ["--out", f"{w}/missing/p.jsonl"],
                  f"--out {w}/missing/p.jsonl: {w}/missing is not a folder"))
    for i, (name, rows, flags, needle) in enumerate(cases):
        data = write_jsonl(f"{w}/bad{i}.jsonl", rows)
        r = run([z, "eval", "--model", model, "--data", data, "--out", out] + flags)
        lines = r.stderr.strip().splitlines()
        path_named = needle.startswith("-") or data in r.stderr
        check(r.returncode == 1 and len(lines) == 1 and lines[0].startswith("zerotune eval: error:")
              and needle in lines[0] and path_named and not os.path.exists(out),
              f"refused: {name}", r.stderr.strip()[-160:])


def generate_ids(z, model, prompt, max_new):
    r = run([z, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens", max_new,
             "--stop", "<END_A>", "--print-ids"])
    if r.returncode != 0:
        return None
    return json.loads(r.stderr.strip().splitlines()[-1])["ids"]


def check_seed_eval(z, model, w):
    """Batched eval equals generate one prompt at a time, and batch 1."""
    data = f"{w}/data/test.jsonl"
    runs = {}
    for batch in ("8", "1"):
        out = f"{w}/pred_b{batch}.jsonl"
        r = run([z, "eval", "--model", model, "--data", data, "--batch-size", batch,
                 "--max-new-tokens", "12", "--out", out, "--json"])
        ok = r.returncode == 0
        runs[batch] = (json.loads(r.stdout) if ok else None, read_jsonl(out) if ok else [])
        check(ok, f"eval --batch-size {batch} runs", r.stderr.strip()[-200:])
    summary, preds = runs["8"]
    if not preds:
        return
    fields = {"index", "prompt", "completion", "completion_ids", "extracted", "reference",
              "correct", "skipped"}
    check(len(preds) == 8 and all(fields <= set(p) for p in preds) and summary["examples"] == 8,
          "predictions.jsonl holds every row and its fields", str(sorted(preds[0])))
    check([p["completion_ids"] for p in preds] == [p["completion_ids"] for p in runs["1"][1]],
          "batch 8 equals batch 1 token for token")
    rows = seed_rows(data)
    same = [generate_ids(z, model, question_of(t) + "<START_A>", "12") == p["completion_ids"]
            for t, p in zip(rows, preds)]
    check(all(same), "eval equals a loop of `zerotune generate`", str(same))
    check(all(p["prompt"] == question_of(t) + "<START_A>" for t, p in zip(rows, preds)),
          "the prompt is the row up to and including <START_A>")


def harness_filter(pattern, text, select):
    found = re.findall(pattern, text)
    if not found:
        return None
    m = found[select]
    if isinstance(m, tuple):
        m = [x for x in m if x][0]
    return m.strip()


def check_lm_eval(z, model, w):
    train = [(question_of(t)[9:-7], t.split("<START_A>")[1].split("<END_A>")[0])
             for t in seed_rows(f"{w}/data/train.jsonl")]
    test = [(question_of(t)[9:-7], t.split("<START_A>")[1].split("<END_A>")[0])
            for t in seed_rows(f"{w}/data/test.jsonl")]
    train_path = write_jsonl(f"{w}/gsm_train.jsonl", [{"question": q, "answer": a} for q, a in train])
    test_path = write_jsonl(f"{w}/gsm_test.jsonl", [{"question": q, "answer": a} for q, a in test])
    # Few-shot prompts are longer than the tiny model's 256 positions: the same model, 1024.
    long_model = f"{w}/model_1024"
    r = run([z, "init", "--out", long_model, "--preset", "tiny", "--dim", "48", "--n-layers", "2",
             "--n-heads", "4", "--n-kv-heads", "2", "--hidden", "96", "--tokenizer", f"{w}/tok",
             "--special_token_path", f"{w}/data/tokens.json", "--max-positions", "1024"])
    check(r.returncode == 0, "init a model of 1024 positions", r.stderr.strip()[-200:])
    out = f"{w}/pred_lm.jsonl"
    r = run([z, "eval", "--model", long_model, "--data", test_path, "--format", "lm-eval",
             "--fewshot-data", train_path, "--num-fewshot", "2", "--max-new-tokens", "24",
             "--limit", "5", "--out", out, "--json"])
    check(r.returncode == 0, "eval --format lm-eval runs", r.stderr.strip()[-200:])
    if r.returncode != 0:
        return
    preds, summary = read_jsonl(out), json.loads(r.stdout)
    shots = {f"Question: {q}\nAnswer: {a}" for q, a in train}
    ok_prompt = True
    for (q, _), p in zip(test, preds):
        parts = p["prompt"].split("\n\n")
        ok_prompt &= parts[-1] == f"Question: {q}\nAnswer:" and len(parts) == 3 and \
            all(s in shots for s in parts[:-1]) and parts[0] != parts[1]
    check(len(preds) == 5 and ok_prompt, "lm-eval prompt: 2 shots, blank-line separated")
    strict = [harness_filter(HARNESS_STRICT, p["completion"], 0) for p in preds]
    flexible = [harness_filter(HARNESS_FLEXIBLE, p["completion"], -1) for p in preds]
    check(strict == [p["extracted"] for p in preds] and
          flexible == [p["flexible_extract"] for p in preds],
          "both filters equal Python re with the task's patterns", str(flexible))
    check(all(not any(s in p["completion"] for s in ("Question:", "<|im_end|>")) for p in preds),
          "completions stop before the harness's stop strings")
    check(set(summary["filters"]) == {"strict-match", "flexible-extract"},
          "both filters reported", str(summary.get("filters")))


def constant_answer_data(w):
    """Train rows all answered "#### 7"; test rows answered 7, 9, 7.0 and a non-number in turn."""
    train = [{"input": question_of(t) + "<START_A>#### 7<END_A>"}
             for t in seed_rows(f"{w}/data/train.jsonl")]
    answers = ["#### 7", "#### 9", "#### 7.0", "#### many"]
    test = [{"input": question_of(t) + "<START_A>" + answers[i % 4] + "<END_A>"}
            for i, t in enumerate(seed_rows(f"{w}/data/test.jsonl"))]
    return write_jsonl(f"{w}/const_train.jsonl", train), write_jsonl(f"{w}/const_test.jsonl", test)


def check_training(z, model, data, w):
    train, test = constant_answer_data(w)
    out = f"{w}/run"
    base = [z, "train", "--model_name", model, "--train_path", train, "--test_path", test,
            "--special_token_path", f"{data}/tokens.json", "--output_dir", out, "-bs", "2",
            "--ctx-len", "128", "--lr", "2e-2", "--warmup-steps", "2", "--save-dtype", "f32",
            "--eval-max-new-tokens", "16"]
    r = run(base + ["--checkpoint-metric", "accuracy"])
    check(r.returncode == 1 and "--checkpoint-metric accuracy needs --eval-accuracy" in r.stderr,
          "--checkpoint-metric accuracy needs --eval-accuracy", r.stderr.strip()[-160:])
    shutil.rmtree(out, ignore_errors=True)
    r = run(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none"] + base +
            ["--num-epochs", "6", "--eval-accuracy", "8", "--checkpoint-metric", "accuracy",
             "--num-checkpoints-to-keep", "1"], timeout=400)
    check(r.returncode == 0 and "2 ranks over mpi" in r.stderr, "train on 2 ranks with accuracy",
          r.stderr.strip()[-300:])
    if r.returncode != 0:
        return
    rows = [m for m in metrics(out) if m["type"] == "eval"]
    check(len(rows) == 6 and all("accuracy" in m and m["accuracy_examples"] == 6 and
                                 m["accuracy_skipped"] == 2 for m in rows),
          "each eval row has accuracy and accuracy_examples", str(rows[-1] if rows else None))
    best = max(rows, key=lambda m: (m["accuracy"], -m["epoch"]))
    kept = sorted(d for d in os.listdir(out) if d.startswith("epoch-"))
    check(kept == [f"epoch-{best['epoch']}"] and best["accuracy"] > 0,
          "keeps the most accurate epoch", f"{kept}, accuracies {[m['accuracy'] for m in rows]}")
    r = run([z, "eval", "--model", f"{out}/epoch-{best['epoch']}", "--data", test, "--limit", "8",
             "--max-new-tokens", "16", "--json"])
    got = json.loads(r.stdout) if r.returncode == 0 else {}
    acc = got.get("filters", {}).get("exact_match", {}).get("accuracy")
    check(acc == best["accuracy"] and got.get("scored") == 6 and got.get("skipped") == 2,
          "training's accuracy equals `zerotune eval` of the checkpoint",
          f"train {best['accuracy']}, eval {acc}; {r.stderr.strip()[-200:]}")
    check(f"eval 8/8 accuracy {acc:.4f}" in r.stderr if acc is not None else False,
          "eval prints its progress line", r.stderr.strip()[-120:])
    best_checkpoint = (f"{out}/epoch-{best['epoch']}", best["accuracy"])

    # One process (every ZeRO stage is stage 0 there), perplexity ranking: each epoch's accuracy
    # equals `zerotune eval` of its checkpoint.
    one = f"{w}/run1"
    r = run(base[:base.index("--output_dir") + 1] + [one] + base[base.index("--output_dir") + 2:] +
            ["-bs", "4", "--num-epochs", "5", "--eval-accuracy", "8"], timeout=400)
    rows = [m for m in metrics(one) if m["type"] == "eval"] if r.returncode == 0 else []
    evals = []
    for m in rows:
        e = run([z, "eval", "--model", f"{one}/epoch-{m['epoch']}", "--data", test, "--limit", "8",
                 "--max-new-tokens", "16", "--json"])
        evals.append(json.loads(e.stdout)["filters"]["exact_match"]["accuracy"]
                     if e.returncode == 0 else None)
    check(len(rows) == 5 and evals == [m["accuracy"] for m in rows],
          "1 rank: every epoch's accuracy equals `zerotune eval`",
          f"train {[m.get('accuracy') for m in rows]}, eval {evals} {r.stderr.strip()[-200:]}")
    # On a terminal the decoding during training shows eval's progress line (rank 0's share).
    shutil.rmtree(f"{w}/run_tty", ignore_errors=True)
    tty_cmd = base[:base.index("--output_dir") + 1] + [f"{w}/run_tty"] + \
        base[base.index("--output_dir") + 2:] + ["--num-epochs", "1", "--eval-accuracy", "8"]
    status, err = run_on_terminal(tty_cmd)
    check(status == 0 and re.search(r"\reval 8/8 accuracy [0-9.]+ \(\d+/6\)", err) is not None,
          "on a terminal, accuracy in training shows a progress line", err.strip()[-200:])
    return best_checkpoint if best_checkpoint[1] > 0 else None


def check_lora_training(z, base, base_accuracy, data, w):
    """A LoRA run's accuracy is that of the model with its adapters: on 2 ranks at ZeRO stage 3
    (the frozen base sharded), each epoch's accuracy equals `zerotune eval --adapter` of its adapter
    folder over the base. The base is the most accurate checkpoint of check_training, and the
    adapters must move the accuracy away from the base's, or decoding the base alone would pass."""
    train, test = constant_answer_data(w)
    out, config = f"{w}/run_lora", f"{w}/lora.json"
    with open(config, "w") as f:
        json.dump({"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear"},
                  f)
    r = run(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none",
             z, "train", "--model_name", base, "--train_path", train, "--test_path", test,
             "--special_token_path", f"{data}/tokens.json", "--output_dir", out, "-bs", "2",
             "--ctx-len", "128", "--lr", "3e-2", "--warmup-steps", "2", "--num-epochs", "3",
             "--lora", "--lora-config", config, "--eval-accuracy", "8", "--zero-stage", "3",
             "--eval-max-new-tokens", "16"], timeout=400)
    rows = [m for m in metrics(out) if m["type"] == "eval"] if r.returncode == 0 else []
    evals = []
    for m in rows:
        e = run([z, "eval", "--model", base, "--adapter", f"{out}/epoch-{m['epoch']}", "--data",
                 test, "--limit", "8", "--max-new-tokens", "16", "--json"])
        evals.append(json.loads(e.stdout)["filters"]["exact_match"]["accuracy"]
                     if e.returncode == 0 else e.stderr.strip()[-160:])
    trained = [m.get("accuracy") for m in rows]
    check(len(rows) == 3 and evals == trained,
          "LoRA on 2 ranks, stage 3: every epoch's accuracy equals `zerotune eval --adapter`",
          f"train {trained}, eval {evals} {r.stderr.strip()[-200:]}")
    check(any(a != base_accuracy for a in trained),
          "  the adapters change the accuracy (so the check above sees them)",
          f"base {base_accuracy}, LoRA epochs {trained}")


def main():
    _, z, w = check_args()
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "tiny model", str(e))
        return report.finish()
    check_bad_input(z, model, w)
    check_seed_eval(z, model, w)
    check_lm_eval(z, model, w)
    if shutil.which("mpirun") is None:
        check(False, "mpirun available", "install openmpi-bin (scripts/setup.sh)")
    else:
        best = check_training(z, model, data, w)
        if best:
            check_lora_training(z, *best, data, w)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
