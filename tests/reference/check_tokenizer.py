#!/usr/bin/python3
"""Checks `zerotune tokenize` id for id against python sentencepiece with HF's semantics.

  check_tokenizer.py --zerotune build/zerotune --workdir DIR [--model PATH] [--count N]

The reference is Debian's python3-sentencepiece driven the way Hugging Face's slow
LlamaTokenizer(legacy=True) drives it after add_tokens(tokens, special_tokens=True)
(transformers >= 4.34):
  - special tokens: the model's <unk> <s> </s> plus the added ones; a new token gets the next
    id, a duplicate is skipped, a token already in the vocabulary keeps its id;
  - text is split on them: the leftmost match, the longest token there. Here that is a regular
    expression alternation ordered longest first, an implementation independent of zerotune's.
    It equals HF's Trie.split for token sets where no token contains another token's first
    character after its own first position (true of every set used here; HF's Trie can
    mis-split sets like {"abcd", "b"});
  - each text segment goes through sp.encode(segment, out_type=str) and the pieces through
    HF's convert_tokens_to_ids (added tokens first, then sp.piece_to_id);
  - an example is <s> + ids + </s>, cut to its first ctx_len ids.
Cases: the Llama-2 vocabulary at ../shared/data/llama2-tokenizer/tokenizer.model (skipped with
a SKIP line when absent), with and without truncation, tokens from tokens.json or from a
checkpoint folder; models trained by `zerotune tokenizer train` (bpe and unigram, bytes
identical on a rerun); and the command's input errors. Prints one line per check and ends with
`N passed, M failed`; exits 1 when anything failed.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import Report  # noqa: E402

GSM8K_TOKENS = ["<START_Q>", "<END_Q>", "<START_A>", "<END_A>"]
# Longest-match cases on top: "<Q>" inside "<QQ>", "<Q" a prefix of both; a duplicate; <s>.
TEST_TOKENS = GSM8K_TOKENS + ["<Q>", "<QQ>", "<Q", "<END_Q>", "<s>"]


class Reference:
    """HF slow LlamaTokenizer (legacy=True) + add_tokens(tokens, special_tokens=True)."""

    def __init__(self, model_file, tokens):
        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        sp = self.sp
        self.base = sp.get_piece_size()
        self.special = {}  # HF's _added_tokens_encoder
        for i in (sp.unk_id(), sp.bos_id(), sp.eos_id()):
            self.special[sp.id_to_piece(i)] = i
        next_id = self.base
        for t in tokens:
            if t in self.special:
                continue
            existing = sp.piece_to_id(t)
            if sp.id_to_piece(existing) == t:
                self.special[t] = existing
            else:
                self.special[t] = next_id
                next_id += 1
        self.vocab_size = next_id
        ordered = sorted(self.special, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(t) for t in ordered))

    def encode(self, text):
        ids = []
        pos = 0
        segments = []
        for m in self.pattern.finditer(text):
            segments.append(text[pos:m.start()])
            segments.append(m.group(0))
            pos = m.end()
        segments.append(text[pos:])
        for i, seg in enumerate(segments):
            if not seg:
                continue
            if i % 2 == 1:
                ids.append(self.special[seg])
                continue
            for piece in self.sp.encode(seg, out_type=str):
                ids.append(self.special.get(piece, self.sp.piece_to_id(piece)))
        return ids

    def example(self, text, ctx_len):
        ids = [self.sp.bos_id()] + self.encode(text) + [self.sp.eos_id()]
        full = len(ids)
        return (ids[:ctx_len] if ctx_len > 0 else ids), full


# ---- test strings ------------------------------------------------------------------------------

WORDS = ("Natalia sold clips to 48 of her friends in April and then she sold half as many clips "
         "in May How many did sell altogether Weng earns an hour for babysitting Yesterday just "
         "did minutes the of a is").split()
UNICODE = ["é", "ñ", "ü", "e\u0301", "Ångström", "naïve", "中文", "日本語のテキスト", "한국어",
           "😀", "👍🏽", "👨\u200d👩\u200d👧", "שלום", "مرحبا", "привет", "∑∫√", "€£¥", "\u00a0",
           "\u3000", "\u200b", "ﬁ", "Ⅻ", "①", "ｆｕｌｌ", "\u0301", "\U0001f9d1\u200d\U0001f4bb",
           "ß", "İ"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t", "\x0b", "\x0c"]
PIECES = ["<", ">", "<START_", "<END", "START_Q>", "_A>", "<Q", "<QQ", "Q>", "<s", "</", "s>",
          "<unk>", "<0x0A>", "▁", "▁▁", "<pad>", "<<", ">>", "\\", '"', "'", "{", "}", "$",
          "%"]
NUMBERS = ["0", "7", "42", "2023", "3.14", "1,000,000", "-5", "12345678901234567890", "½", "٣"]


def fragment(rng, tokens):
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(WORDS)
    if kind < 0.47:
        return rng.choice(SPACES)
    if kind < 0.59:
        return rng.choice(tokens)
    if kind < 0.71:
        return rng.choice(UNICODE)
    if kind < 0.81:
        return rng.choice(NUMBERS)
    if kind < 0.91:
        return rng.choice(PIECES)
    if kind < 0.96:
        return "".join(chr(rng.randint(0x20, 0x7e)) for _ in range(rng.randint(1, 6)))
    # One random control, BMP or emoji-plane code point.
    return chr(rng.choice([rng.randint(1, 0x1f), rng.randint(0xa0, 0x2fff),
                           rng.randint(0x1f300, 0x1faff)]))


def gsm8k_like(rng):
    q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
    a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))
    n = rng.randint(0, 10000)
    return f"<START_Q>{q}?<END_Q><START_A>{a} <<{n}*2={2 * n}>>{2 * n}\n#### {2 * n}<END_A>"


def make_strings(count, seed, tokens):
    rng = random.Random(seed)
    fixed = ["", " ", "  ", "\n", "Hello world", " Hello world ", "<START_Q>", "<START_Q><END_Q>",
             "<START_Q><END_Q><START_A><END_A>", "<END_A>trailing", "leading<START_Q>",
             " <START_Q> spaced <END_Q> ", "<START_Q", "<START_<END_Q>", "<QQ>", "<Q>Q>", "<Q<QQ>",
             "<QQQ>", "<s>literal bos</s>", "<unk>", "inform", "<Q>inform", "a\tb\nc\r\nd",
             "   three leading", "trailing three   ", "multiple   inner    spaces"]
    out = list(fixed)
    while len(out) < count:
        r = rng.random()
        if r < 0.25:
            out.append(gsm8k_like(rng))
        else:
            out.append("".join(fragment(rng, tokens) for _ in range(rng.randint(1, 25))))
    return out[:count]


# ---- running zerotune --------------------------------------------------------------------------

def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_jsonl(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"input": t}, ensure_ascii=bool(len(t) % 2)) + "\n")


def tokenize(args, tokenizer, texts, name, ctx_len=0, tokens_json=None):
    inp = os.path.join(args.workdir, f"{name}.in.jsonl")
    out = os.path.join(args.workdir, f"{name}.ids.jsonl")
    write_jsonl(inp, texts)
    cmd = [args.zerotune, "tokenize", "--tokenizer", tokenizer, "--input", inp, "--output", out]
    if ctx_len:
        cmd += ["--ctx-len", str(ctx_len)]
    if tokens_json:
        cmd += ["--special_token_path", tokens_json]
    proc = run(cmd)
    if proc.returncode != 0:
        return None, None, proc.stderr.strip()
    with open(out, encoding="utf-8") as f:
        rows = [json.loads(line)["input_ids"] for line in f]
    return rows, json.loads(proc.stdout.strip().splitlines()[-1]), ""


def compare(report, name, ref, rows, summary, texts, ctx_len):
    expected = [ref.example(t, ctx_len) for t in texts]
    bad = [i for i, (ids, _) in enumerate(expected) if i >= len(rows) or rows[i] != ids]
    detail = f"{len(texts)} strings, vocab {ref.vocab_size}"
    if len(rows) != len(texts):
        detail += f"; {len(rows)} rows for {len(texts)} inputs"
    elif bad:
        i = bad[0]
        detail += (f"; {len(bad)} differ, first {texts[i]!r}: zerotune {rows[i]} "
                   f"reference {expected[i][0]}")
    report.check(not bad and len(rows) == len(texts), name, detail)
    want = {"rows": len(texts), "tokens": sum(len(e[0]) for e in expected),
            "truncated_rows": sum(1 for e in expected if ctx_len and e[1] > ctx_len),
            "longest": max(e[1] for e in expected), "vocab_size": ref.vocab_size}
    got = {k: summary.get(k) for k in want}
    report.check(got == want, name + " summary",
                 f"{got}" + ("" if got == want else f" expected {want}"))


def check_vocabulary(report, args, label, model_file, tokenizer_arg, texts, tokens_json, tokens):
    ref = Reference(model_file, tokens)
    for ctx_len in (0, 48):
        name = f"{label} ctx {ctx_len or 'none'}"
        rows, summary, err = tokenize(args, tokenizer_arg, texts, name.replace(" ", "_"), ctx_len,
                                      tokens_json)
        if rows is None:
            report.check(False, name, f"zerotune tokenize failed: {err}")
            continue
        compare(report, name, ref, rows, summary, texts, ctx_len)
    return ref


def find_llama2(args):
    if args.model:
        return args.model
    rel = os.path.join("llama2-tokenizer", "tokenizer.model")
    env = os.environ.get("ZEROTUNE_SHARED_DATA")
    if env:
        return os.path.join(env, rel)
    for start in (os.getcwd(), os.path.dirname(os.path.abspath(__file__))):
        d = os.path.abspath(start)
        while True:
            candidate = os.path.join(d, "shared", "data", rel)
            if os.path.exists(candidate):
                return candidate
            if os.path.dirname(d) == d:
                break
            d = os.path.dirname(d)
    return os.path.join("..", "shared", "data", rel)


def check_llama2(report, args, texts, tokens_json):
    model = find_llama2(args)
    if not os.path.exists(model):
        print(f"SKIP  llama-2 vocabulary: {model} not found (set ZEROTUNE_SHARED_DATA or --model)",
              flush=True)
        return
    ref = check_vocabulary(report, args, "llama2", model, model, texts, tokens_json, TEST_TOKENS)
    known = ref.example("Hello world", 0)[0]
    report.check(known == [1, 15043, 3186, 2], "llama2 reference sanity",
                 f"'Hello world' -> {known}")
    # A checkpoint-style folder: tokenizer.model + added_tokens.json, no tokens.json flag.
    folder = os.path.join(args.workdir, "llama2_folder")
    os.makedirs(folder, exist_ok=True)
    link = os.path.join(folder, "tokenizer.model")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(model), link)
    with open(os.path.join(folder, "added_tokens.json"), "w") as f:
        json.dump({t: 32000 + i for i, t in enumerate(GSM8K_TOKENS)}, f)
    gsm = [gsm8k_like(random.Random(i)) for i in range(300)]
    rows, summary, err = tokenize(args, folder, gsm, "llama2_folder")
    if rows is None:
        report.check(False, "llama2 folder with added_tokens.json", err)
    else:
        compare(report, "llama2 folder with added_tokens.json", Reference(model, GSM8K_TOKENS),
                rows, summary, gsm, 0)
    # A special token that is already a piece ("▁the" is id 278) keeps its id and is split out.
    existing = ["▁the", "<START_Q>"]
    some = texts[:500] + ["x▁they▁the"]
    rows, summary, err = tokenize(args, model, some, "llama2_existing", 0,
                                  write_tokens(args, "existing", existing))
    if rows is None:
        report.check(False, "llama2 existing-piece special token", err)
    else:
        compare(report, "llama2 existing-piece special token", Reference(model, existing), rows,
                summary, some, 0)


def read_bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def write_tokens(args, name, tokens):
    path = os.path.join(args.workdir, f"{name}.tokens.json")
    with open(path, "w") as f:
        json.dump({"tokens": tokens}, f)
    return path


def check_trained(report, args, texts, gsm8k_json, test_json):
    rng = random.Random(5)
    corpus = [gsm8k_like(rng) for _ in range(1500)] + make_strings(1500, 77, GSM8K_TOKENS)
    corpus_path = os.path.join(args.workdir, "train_corpus.jsonl")
    write_jsonl(corpus_path, corpus)
    for model_type, vocab in (("bpe", 1000), ("unigram", 800)):
        outs = []
        for run_no in (1, 2):
            out = os.path.join(args.workdir, f"trained_{model_type}_{run_no}")
            proc = run([args.zerotune, "tokenizer", "train", "--input", corpus_path, "--vocab-size",
                        str(vocab), "--out", out, "--model-type", model_type, "--seed", "3",
                        "--special_token_path", gsm8k_json])
            if not report.check(proc.returncode == 0, f"train {model_type} run {run_no}",
                                proc.stderr.strip()[-300:] or proc.stdout.strip()):
                return
            outs.append(out)
        files = ("tokenizer.model", "added_tokens.json", "tokenizer_config.json",
                 "special_tokens_map.json")
        same = all(read_bytes(outs[0], f) == read_bytes(outs[1], f) for f in files)
        report.check(same, f"train {model_type} deterministic",
                     "the two runs wrote identical files")
        model = os.path.join(outs[0], "tokenizer.model")
        sp = spm.SentencePieceProcessor(model_file=model)
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        layout = (pieces[:4] == ["<unk>", "<s>", "</s>", "<0x00>"] and len(pieces) == vocab
                  and sp.pad_id() == -1
                  and all(sum(c in "0123456789" for c in p) <= 1 for p in pieces[259:])
                  and not any(t in p for t in GSM8K_TOKENS for p in pieces))
        report.check(layout, f"train {model_type} layout",
                     f"{vocab} pieces, <unk> <s> </s> then bytes, no pad, no special-token pieces")
        with open(os.path.join(outs[0], "added_tokens.json")) as f:
            added = json.load(f)
        want = {t: vocab + i for i, t in enumerate(GSM8K_TOKENS)}
        report.check(added == want, f"train {model_type} added_tokens.json", f"{added}")
        # The folder carries its added tokens; tokens.json on top adds the rest of TEST_TOKENS.
        check_vocabulary(report, args, f"trained {model_type}", model, outs[0], texts,
                         test_json, TEST_TOKENS)


def check_errors(report, args, model):
    cases = {
        "malformed JSON": ('{"input": "a"}\n{"input": "b"\n', ":2"),
        "row without input": ('{"input": "a"}\n\n{"text": "b"}\n', ":3: expected {\"input\": \"...\"} or {\"messages\": [...]}"),
        "non-string input": ('{"input": 5}\n', ":1: \"input\" must be a string"),
        "empty file": ("", ": no rows"),
    }
    for name, (content, needle) in cases.items():
        inp = os.path.join(args.workdir, "bad.jsonl")
        out = os.path.join(args.workdir, "bad.ids.jsonl")
        if os.path.exists(out):
            os.remove(out)
        with open(inp, "w") as f:
            f.write(content)
        proc = run([args.zerotune, "tokenize", "--tokenizer", model, "--input", inp,
                    "--output", out])
        # Exit 1, the file and line named, and no output file (not even a half-written one).
        ok = proc.returncode == 1 and f"bad.jsonl{needle}" in proc.stderr
        report.check(ok and not os.path.exists(out), f"error: {name}", proc.stderr.strip())
    bad_tokens = os.path.join(args.workdir, "bad_tokens.json")
    with open(bad_tokens, "w") as f:
        f.write('{"tokens": ["<A>", "<B>", 3]}')
    proc = run([args.zerotune, "tokenize", "--tokenizer", model, "--input", inp, "--output", out,
                "--special_token_path", bad_tokens])
    needle = 'bad_tokens.json: "tokens"[2] must be a string'
    report.check(proc.returncode == 1 and needle in proc.stderr, "error: bad tokens.json",
                 proc.stderr.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zerotune", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--model", help="Llama-2 tokenizer.model (default: ../shared/data/...)")
    parser.add_argument("--count", type=int, default=3000, help="strings per comparison")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    report = Report(44)
    texts = make_strings(args.count, 1234, TEST_TOKENS)
    tokens_json = write_tokens(args, "test", TEST_TOKENS)
    check_llama2(report, args, texts, tokens_json)
    check_trained(report, args, texts, write_tokens(args, "gsm8k", GSM8K_TOKENS), tokens_json)
    check_errors(report, args, os.path.join(args.workdir, "trained_bpe_1", "tokenizer.model"))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
