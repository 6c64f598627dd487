#!/usr/bin/python3
"""Checks `zerotune generate` (greedy, KV cache) against greedy decoding in PyTorch.

  check_generate.py --zerotune build/zerotune --workdir DIR [--generate BIN]

Builds a tokenizer (`zerotune data synth` + `tokenizer train`, with the GSM8K special tokens)
and two tiny random models with `zerotune init` (GQA 4->2 in f32; tied MQA 4->1 in bf16; their
matrices scaled to std 0.16 so that logits and attention are far from flat), runs
`zerotune generate --print-ids` on a few prompts and compares with llama_ref.forward_logits,
recomputed over the whole sequence at every step:
  prompt ids   <s> + python sentencepiece's encoding, split on the special tokens as HF does
  each step    zerotune's token, teacher-forced, is torch's argmax, or within NEAR_TIE of it
               (random models have flat logits; float rounding may break a near tie either way)
  free run     torch's own greedy continuation equals zerotune's, or first differs at a step
               whose top-2 margin is below TIE_MARGIN
  stdout       the continuation alone: the ids decoded by sentencepiece (special tokens as
               text, <s> </s> dropped, each run of ordinary ids decoded on its own) and one
               newline, nothing else
  stderr       one line, the statistics JSON: prompt_tokens, new_tokens and stopped agree
               with the ids
Sampling flags: --temperature 0 (whatever --top-k/--top-p/--seed say) and --top-k 1 give the
greedy ids; a seed gives the same ids twice; with --top-k K every drawn token is among torch's K
largest logits for its prefix, with --top-p P among torch's nucleus of softmax(logits / T)
(within NEAR_TIE); bad values fail naming the flag.
Plus --stop, --special_token_path, a bit-identical rerun and the input errors. Prints one line
per check and ends with `N passed, M failed`; exits 1 when anything failed.
(--generate names another binary for the generate runs, for use before main.cc dispatches it.)
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from report import Report  # noqa: E402

NEAR_TIE = 1e-4  # a teacher-forced token may trail torch's max logit by this much
TIE_MARGIN = 1e-3  # a free-run divergence is accepted only where torch's top-2 differ by less
MAX_NEW = 24

MODELS = {
    "gqa_f32": "--dim 64 --n-layers 2 --n-heads 4 --n-kv-heads 2 --hidden 128 --max-positions 112 "
               "--seed 1",
    "mqa_tied_bf16": "--dim 64 --n-layers 2 --n-heads 4 --n-kv-heads 1 --hidden 160 --tie "
                     "--save-dtype bf16 --seed 2",
}


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def must_run(cmd):
    proc = run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in: {text!r}")


class RefTokenizer:
    """python sentencepiece with HF LlamaTokenizer(legacy=True) + add_tokens(special) semantics."""

    def __init__(self, model_dir):
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
        added_path = os.path.join(model_dir, "added_tokens.json")
        self.specials = {}
        for piece_id in (self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()):
            self.specials[self.sp.id_to_piece(piece_id)] = piece_id
        if os.path.exists(added_path):
            with open(added_path) as f:
                self.specials.update(json.load(f))
        self.by_id = {i: t for t, i in self.specials.items()}
        alternation = "|".join(re.escape(t) for t in sorted(self.specials, key=len, reverse=True))
        self.pattern = re.compile(f"({alternation})")

    def encode_prompt(self, text):
        ids = [self.sp.bos_id()]
        for part in self.pattern.split(text):
            if part in self.specials:
                ids.append(self.specials[part])
            elif part:
                ids.extend(self.sp.encode(part))
        return ids

    def decode(self, ids):
        out, run_ids = [], []
        for i in ids:
            if i in (self.sp.bos_id(), self.sp.eos_id()):
                continue
            if i in self.by_id:
                out.append(self.sp.decode(run_ids) if run_ids else "")
                out.append(self.by_id[i])
                run_ids = []
            else:
                run_ids.append(i)
        out.append(self.sp.decode(run_ids) if run_ids else "")
        return "".join(out)

    def piece(self, i):
        return self.by_id.get(i) or self.sp.id_to_piece(i)


def sharpen(model_dir):
    """Scales every matrix by 8 (exact in bf16 too): init's std 0.02 gives such flat logits and
    attention that a wrong position or a stale cache entry barely moves an argmax."""
    path = os.path.join(model_dir, "model.safetensors")
    tensors, metadata = llama_ref.read_safetensors(path)
    scaled = {k: (v * 8 if v.dim() == 2 else v) for k, v in tensors.items()}
    llama_ref.write_safetensors(path, scaled, metadata)


def last_logits(cfg, params, ids):
    with torch.no_grad():
        return llama_ref.forward_logits(cfg, params, torch.tensor([ids], dtype=torch.int64))[0, -1]


def generate(gen_bin, model, prompt, extra=()):
    cmd = [gen_bin, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens",
           str(MAX_NEW), "--print-ids", "--threads", "2", *extra]
    return run(cmd)


def check_prompt(rep, name, ref_tok, cfg, params, proc, prompt):
    if not rep.check(proc.returncode == 0, f"{name} runs",
                     "" if proc.returncode == 0 else proc.stderr.strip()[-200:]):
        return None
    summary = last_json(proc.stderr)
    prompt_ids, ids = summary["prompt_ids"], summary["ids"]
    want_prompt = ref_tok.encode_prompt(prompt)
    rep.check(prompt_ids == want_prompt, f"{name} prompt ids", f"{len(prompt_ids)} tokens"
              if prompt_ids == want_prompt else f"got {prompt_ids}, want {want_prompt}")

    # Teacher-forced: each zerotune token against torch's logits for the same prefix.
    seq, bad, differing, worst_gap = list(prompt_ids), [], 0, 0.0
    for k, token in enumerate(ids):
        logits = last_logits(cfg, params, seq)
        gap = float(logits.max() - logits[token])
        worst_gap = max(worst_gap, gap)
        if token != int(logits.argmax()):
            differing += 1
            if gap > NEAR_TIE:
                bad.append((k, token, int(logits.argmax()), gap))
        seq.append(token)
    rep.check(not bad, f"{name} greedy steps", f"{len(ids)} steps, {differing} differ from torch's argmax, "
              f"max gap to torch's max {worst_gap:.2e}" + (f"; wrong: {bad[:3]}" if bad else ""))

    # Free run: torch's own greedy continuation, full recompute at each step.
    seq, torch_ids, diverged = list(prompt_ids), [], None
    eos = ref_tok.sp.eos_id()
    for k in range(MAX_NEW):
        logits = last_logits(cfg, params, seq)
        top2 = torch.topk(logits, 2)
        token = int(top2.indices[0])
        if diverged is None and (k >= len(ids) or ids[k] != token):
            diverged = (k, float(top2.values[0] - top2.values[1]))
        torch_ids.append(token)
        seq.append(token)
        if token == eos:
            break
    if diverged is None and len(torch_ids) != len(ids):
        diverged = (len(torch_ids), 0.0)
    ok = diverged is None or diverged[1] < TIE_MARGIN
    rep.check(ok, f"{name} free run vs torch", "identical" if diverged is None else
              f"first differs at step {diverged[0]}, top-2 margin {diverged[1]:.2e}")

    # stdout is for the text alone (scripts capture it); the statistics go to stderr.
    want_stdout = ref_tok.decode(ids) + "\n"
    rep.check(proc.stdout == want_stdout, f"{name} stdout: text only",
              repr(proc.stdout[:50]) if proc.stdout == want_stdout
              else f"got {proc.stdout!r}, want {want_stdout!r}")
    stderr_lines = proc.stderr.splitlines()
    rep.check(len(stderr_lines) == 1 and stderr_lines[0].startswith("{"),
              f"{name} stderr: statistics only", f"{len(stderr_lines)} line(s)")

    stopped = "eos" if ids and ids[-1] == eos else "length"
    ok = (summary["prompt_tokens"] == len(prompt_ids) and summary["new_tokens"] == len(ids)
          and summary["stopped"] == stopped and (stopped == "eos" or len(ids) == MAX_NEW)
          and summary["tokens_per_s"] >= 0)
    rep.check(ok, f"{name} summary", json.dumps({k: v for k, v in summary.items()
                                                  if not k.endswith("ids")}))
    return summary


def check_sampling(rep, gen_bin, model, cfg, params, prompt, greedy_ids):
    def ids_of(extra):
        proc = generate(gen_bin, model, prompt, extra)
        return last_json(proc.stderr)["ids"] if proc.returncode == 0 else proc.stderr.strip()

    got = ids_of(["--temperature", "0", "--top-k", "3", "--top-p", "0.5", "--seed", "9"])
    rep.check(got == greedy_ids, "sampling: --temperature 0 is greedy", "")
    got = ids_of(["--temperature", "1.0", "--top-k", "1", "--seed", "3"])
    rep.check(got == greedy_ids, "sampling: --top-k 1 is greedy", "")
    seeded = ["--temperature", "1.3", "--top-k", "3", "--seed", "11"]
    drawn = ids_of(seeded)
    rep.check(isinstance(drawn, list) and drawn == ids_of(seeded), "sampling: same seed, same ids",
              f"{sum(a != b for a, b in zip(drawn, greedy_ids))} of {len(drawn)} differ from greedy"
              if isinstance(drawn, list) else drawn[-120:])

    # Teacher-forced over zerotune's own draws: each token inside torch's cut for its prefix.
    prompt_ids = last_json(generate(gen_bin, model, prompt).stderr)["prompt_ids"]
    for extra, name in ((seeded, "top-k 3"), (["--temperature", "0.8", "--top-p", "0.5",
                                               "--seed", "12"], "top-p 0.5")):
        drawn, seq, outside = ids_of(extra), list(prompt_ids), []
        for k, token in enumerate(drawn if isinstance(drawn, list) else []):
            logits = last_logits(cfg, params, seq).double()
            if name == "top-k 3":
                kth = float(torch.topk(logits, 3).values[-1])
                inside = float(logits[token]) >= kth - NEAR_TIE
            else:
                probs = torch.softmax(logits / 0.8, dim=0)
                # The nucleus holds the token when the tokens more likely than it hold < top_p.
                ahead = float(probs[logits > logits[token] + NEAR_TIE].sum())
                inside = ahead < 0.5 + 1e-4
            if not inside:
                outside.append(k)
            seq.append(token)
        rep.check(isinstance(drawn, list) and not outside, f"sampling: {name} inside torch's cut",
                  f"{len(drawn)} tokens" + (f"; outside at steps {outside[:5]}" if outside else ""))

    for flag, value in (("--temperature", "-1"), ("--top-p", "0"), ("--top-p", "1.5"),
                        ("--top-k", "-2")):
        proc = run([gen_bin, "generate", "--model", model, "--prompt", "Tom", flag, value])
        rep.check(proc.returncode == 1 and flag in proc.stderr and len(proc.stderr.splitlines()) == 1,
                  f"error: {flag} {value}", proc.stderr.strip()[-120:])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--generate", help="binary for the generate runs (default: --zerotune)")
    args = ap.parse_args()
    z = os.path.abspath(args.zerotune)
    gen_bin = os.path.abspath(args.generate) if args.generate else z
    work = os.path.abspath(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    torch.set_num_threads(2)

    data, tok = os.path.join(work, "data"), os.path.join(work, "tok")
    must_run([z, "data", "synth", "--out", data, "--train", "300", "--test", "20", "--seed", "1"])
    tokens_json = os.path.join(data, "tokens.json")
    must_run([z, "tokenizer", "train", "--input", os.path.join(data, "train.jsonl"),
              "--vocab-size", "400", "--out", tok, "--special_token_path", tokens_json])
    with open(os.path.join(data, "test.jsonl")) as f:
        question = json.loads(f.readline())["input"][:120]
    prompts = {
        "plain": "Tom has 3 apples.",
        "special": "<START_Q>Natalia sold clips to 48 of her friends.<END_Q><START_A>",
        "synth": question,
    }

    rep = Report(40)
    for model_name, flags in MODELS.items():
        model = os.path.join(work, model_name)
        must_run([z, "init", "--out", model, "--tokenizer", tok, *flags.split()])
        sharpen(model)
        cfg, params = llama_ref.load_model(model)
        ref_tok = RefTokenizer(model)
        for prompt_name, prompt in prompts.items():
            name = f"{model_name}/{prompt_name}"
            check_prompt(rep, name, ref_tok, cfg, params, generate(gen_bin, model, prompt), prompt)

    # The rest on the first model.
    model = os.path.join(work, "gqa_f32")
    ref_tok = RefTokenizer(model)
    base = generate(gen_bin, model, prompts["special"])
    again = generate(gen_bin, model, prompts["special"], ["--threads", "1"])
    rep.check(base.stdout == again.stdout and last_json(base.stderr)["ids"] ==
              last_json(again.stderr)["ids"], "rerun (1 thread) identical", "")

    ids = last_json(base.stderr)["ids"]
    cfg, params = llama_ref.load_model(model)
    check_sampling(rep, gen_bin, model, cfg, params, prompts["special"], ids)
    k = next((i for i in range(3, len(ids)) if not ref_tok.piece(ids[i]).startswith("<0x")), 3)
    stop_piece = ref_tok.piece(ids[k])
    first = ids.index(ids[k])
    proc = generate(gen_bin, model, prompts["special"], ["--stop", stop_piece])
    got = last_json(proc.stderr) if proc.returncode == 0 else {}
    rep.check(got.get("ids") == ids[:first + 1] and got.get("stopped") == "stop",
              "--stop", f"stop {stop_piece!r} after {first + 1} tokens: {got.get('stopped')}")

    # tokens.json restates the saved added tokens: they keep their ids; a new one gets id 404,
    # which this model's 404-row embedding cannot take.
    proc = generate(gen_bin, model, prompts["special"], ["--special_token_path", tokens_json])
    rep.check(proc.returncode == 0 and last_json(proc.stderr)["prompt_ids"] ==
              last_json(base.stderr)["prompt_ids"] and proc.stdout == base.stdout,
              "--special_token_path (known tokens)", "same ids and text")
    extra_json = os.path.join(work, "extra_tokens.json")
    with open(extra_json, "w") as f:
        json.dump({"tokens": ["<START_Q>", "<EXTRA>"]}, f)
    proc = generate(gen_bin, model, "Hi <EXTRA>", ["--special_token_path", extra_json])
    rep.check(proc.returncode == 1 and "vocabulary has 404 ids" in proc.stderr,
              "error: new token beyond the model", proc.stderr.strip()[-120:])

    proc = run([gen_bin, "generate", "--model", model, "--prompt", "Tom", "--max-new-tokens", "111"])
    rep.check(proc.returncode == 1 and "max_position_embeddings 112" in proc.stderr,
              "error: too long for the model", proc.stderr.strip()[-120:])
    proc = run([gen_bin, "generate", "--model", model, "--prompt", "Tom", "--stop", "<NOPE>"])
    rep.check(proc.returncode == 1 and "is not a token" in proc.stderr,
              "error: unknown --stop", proc.stderr.strip()[-120:])
    proc = run([gen_bin, "generate", "--model", data, "--prompt", "Tom"])
    rep.check(proc.returncode == 1 and "config.json" in proc.stderr,
              "error: not a model folder", proc.stderr.strip()[-120:])

    sys.exit(rep.finish())


if __name__ == "__main__":
    main()
