#!/usr/bin/python3
"""zerotune's tokenizer.json reader against Hugging Face's tokenizers, id for id.

  check_hf_tokenizers.py --zerotune BIN --tokenizer-bench BIN --workdir DIR --node-dir DIR
                         [--shared-data DIR]

The reference is Hugging Face's `tokenizers` (its Rust library through the npm binding, pinned in
tests/tokenizer_json/package-lock.json and installed into --node-dir by tests/tools/npm_install.sh).
Texts: the torture set (torture.txt beside this script, plus invalid UTF-8 written here) and
~1000 synthetic GSM8K rows (`zerotune data synth`). Tokenizers:
  - llama3.1 and mistral from --shared-data (a SKIP line each when absent);
  - qwen-style: a small byte-level BPE written here with Qwen2.5's normalizer (NFC), split regex,
    ByteLevel pre-tokenizer/decoder and its special tokens (no BOS);
  - components: a small file with the other stages this reader supports (Metaspace split with
    prepend always, Split behaviours, Replace/Prepend normalizers, byte_fallback with missing
    bytes and fuse_unk, added tokens with lstrip / rstrip / single_word / normalized).
For each: encode without and with special tokens, decode, and the training example (the
post-processor's ids + EOS) equal the library's; decode(encode(x)) == x wherever the library gives
that. Then the GSM8K tokens.json is added (transformers' add_tokens(special_tokens=True)): ids equal
the library's after addSpecialTokens, and `zerotune init` exports a folder whose tokenizer.json,
read by the library alone, gives the training ids, with the new tokens after the vocabulary and in
tokenizer_config.json's added_tokens_decoder. An unsupported component is refused naming its path.
Prints one line per check and `N passed, M failed`; exit 1 on a failure, 77 when npm is missing.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from report import Report  # noqa: E402

SKIP_EXIT = 77
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                 r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# Ill-formed UTF-8: lone continuation, truncated sequences, overlong, surrogate, above U+10FFFF.
INVALID_UTF8 = [b"a\x80b", b"\xe2\x82", b"x\xe2\x82y", b"\xc0\xaf", b"\xed\xa0\x80z",
                b"\xf4\x90\x80\x80", b"\xff\xfe caf\xc3", b"ok \xf0\x9f\x98 end", b"\xe2\x82<s>"]


def run(cmd, **kwargs):
    return subprocess.run([str(c) for c in cmd], capture_output=True, **kwargs)


def run_or_raise(cmd):
    r = run(cmd)
    if r.returncode != 0:
        err = (r.stderr or r.stdout).decode("utf-8", "replace").strip()[-400:]
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {err}")
    return r


# ---- texts --------------------------------------------------------------------------------------

def torture_texts():
    """The torture set: one case per line of torture.txt, with \\n, \\t, \\r and \\\\ escapes."""
    texts = []
    with open(os.path.join(HERE, "torture.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#") or not line:
                continue
            texts.append(line.encode("utf-8").decode("unicode_escape").encode("latin-1")
                         .decode("utf-8"))
    # The same words composed and decomposed: NFC (Qwen2) maps them together, others do not.
    texts += [unicodedata.normalize("NFD", t) for t in ("café naïve Ångström", "Ελληνικά ὅτι")]
    return [t.encode("utf-8") for t in texts] + INVALID_UTF8


def gsm8k_texts(z, data):
    run_or_raise([z, "data", "synth", "--out", data, "--train", "900", "--test", "100",
                  "--seed", "3"])
    rows = []
    for name in ("train.jsonl", "test.jsonl"):
        with open(os.path.join(data, name), encoding="utf-8") as f:
            rows += [json.loads(line)["input"] for line in f if line.strip()]
    return [r.encode("utf-8") for r in rows]


def write_texts(path, texts):
    with open(path, "wb") as f:
        f.write(b"\0".join(texts))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- small tokenizers written here ----------------------------------------------------------------

def byte_alphabet():
    """GPT-2's bytes_to_unicode."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def learn_merges(words, symbols_of, count):
    """Plain BPE training on `words` (word -> frequency): the `count` most frequent pairs."""
    seqs = {w: symbols_of(w) for w in words}
    merges = []
    for _ in range(count):
        pairs = collections.Counter()
        for w, freq in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((a, b))
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def vocab_with_merges(base, merges):
    vocab = {t: i for i, t in enumerate(base)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab


def qwen_style(corpus):
    """Byte-level BPE with Qwen2.5's pipeline; merges as ["a", "b"] pairs (the newer spelling)."""
    alpha = byte_alphabet()
    words = collections.Counter()
    for text in corpus:
        for w in text.replace("\n", " \n ").split(" "):
            words["".join(alpha[b] for b in (" " + w).encode())] += 1
    merges = learn_merges(words, list, 400)
    vocab = vocab_with_merges([alpha[b] for b in range(256)], merges)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    added = [{"id": len(vocab) + i, "content": t, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True} for i, t in enumerate(specials)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                  "use_regex": False}
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated",
             "invert": False}, byte_level]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                  "merges": [[a, b] for a, b in merges]},
    }
    config = {"bos_token": None, "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
              "model_max_length": 32768, "tokenizer_class": "Qwen2Tokenizer",
              "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}
    return tokenizer, config


def components_style(corpus):
    """Metaspace-split BPE with byte_fallback where only some bytes have tokens, and the other
    stages: normalizers, Split behaviours, added-token flags, decoders."""
    chars = collections.Counter(c for text in corpus for c in text.replace(" ", "\u2581"))
    base = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(0x00, 0x80)]
    base += sorted(c for c, n in chars.items() if n >= 3 and c not in base)
    words = collections.Counter()
    for text in corpus:
        for w in text.split(" "):
            words["\u2581" + w] += 1
    merges = learn_merges(words, list, 300)
    vocab = vocab_with_merges(base, merges)
    extra = ["[MASK]", "<sep>", "Hello", "<tag>"]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(["<unk>", "<s>", "</s>"])]
    flags = [dict(lstrip=True, rstrip=False, single_word=False, normalized=False, special=True),
             dict(lstrip=False, rstrip=True, single_word=False, normalized=False, special=True),
             dict(lstrip=False, rstrip=False, single_word=True, normalized=False, special=False),
             dict(lstrip=False, rstrip=False, single_word=False, normalized=True, special=False)]
    for i, (t, f) in enumerate(zip(extra, flags)):
        added.append({"id": len(vocab) + i, "content": t, **f})
    tokenizer = {
        "version": "1.0", "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"Regex": "[0-9]{4,}"}, "content": "#"},
            {"type": "Replace", "pattern": {"String": "``"}, "content": "\""},
            {"type": "Prepend", "prepend": "~"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithPrevious",
             "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\s*[.!?]\\s*"}, "behavior": "Removed",
             "invert": False},
            {"type": "Split", "pattern": {"Regex": "\\p{N}+"}, "behavior": "Contiguous",
             "invert": True},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
             "split": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                              "</s>": {"id": "</s>", "ids": [2],
                                                       "tokens": ["</s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "\u2581",
                                       "prepend_scheme": "always", "split": True},
            {"type": "Strip", "content": "~", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                  "byte_fallback": True, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return tokenizer, config


def write_folder(path, tokenizer, config):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False)
    return path


def template_suffix(row):
    """What the post-processor put after the text: with_special = prefix + ids + suffix."""
    ids, full = row["ids"], row["with_special"]
    for start in range(len(full) - len(ids) + 1):
        if full[start:start + len(ids)] == ids:
            return full[start + len(ids):]
    raise ValueError(f"with_special {full} does not hold ids {ids}")


# ---- comparison ---------------------------------------------------------------------------------

class Checker:
    def __init__(self, args, z, bench, w, report):
        self.args, self.z, self.bench, self.w, self.report = args, z, bench, w, report
        self.modules = os.path.join(args.node_dir, "node_modules")

    def ours(self, folder, texts_path, out, tokens_json=None):
        cmd = [self.bench, "--tokenizer", folder, "--texts", texts_path, "--dump", out]
        if tokens_json:
            cmd += ["--special-token-path", tokens_json]
        run_or_raise(cmd)
        rows = read_jsonl(out)
        return rows[:-1], rows[-1]

    def library(self, tokenizer_json, texts_path, out, tokens_json=None):
        cmd = ["node", os.path.join(HERE, "hf_reference.js"), self.modules, tokenizer_json,
               texts_path, out] + ([tokens_json] if tokens_json else [])
        run_or_raise(cmd)
        rows = read_jsonl(out)
        return rows[:-1], rows[-1]

    def compare(self, name, texts, ours, theirs, key_ours, key_theirs=None):
        key_theirs = key_theirs or key_ours
        bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a[key_ours] != b[key_theirs]]
        detail = f"{len(texts)} texts"
        if bad:
            i = bad[0]
            text = texts[i].decode("utf-8", "replace")
            detail = (f"{len(bad)} differ; first {json.dumps(text, ensure_ascii=False)[:70]}: "
                      f"{str(ours[i][key_ours])[:70]} vs {str(theirs[i][key_theirs])[:70]}")
        self.report.check(not bad and len(ours) == len(theirs) == len(texts), name, detail)

    def check_tokenizer(self, name, folder, texts, label):
        texts_path = f"{self.w}/{name}-{label}.bin"
        write_texts(texts_path, texts)
        ours, meta = self.ours(folder, texts_path, f"{self.w}/{name}-{label}-ours.jsonl")
        theirs, _ = self.library(os.path.join(folder, "tokenizer.json"), texts_path,
                                 f"{self.w}/{name}-{label}-hf.jsonl")
        self.compare(f"{name} {label}: encode", texts, ours, theirs, "ids")
        self.compare(f"{name} {label}: encode +special", texts, ours, theirs, "with_special")
        self.compare(f"{name} {label}: decode", texts, ours, theirs, "decoded")
        # The training example: the post-processor's ids, then EOS unless its template ends so.
        examples = [r["with_special"] + ([] if template_suffix(r)[-1:] == [meta["eos_id"]]
                                        else [meta["eos_id"]]) for r in theirs]
        bad = sum(r["example"] != e for r, e in zip(ours, examples))
        self.report.check(bad == 0, f"{name} {label}: training example", f"{bad} differ")
        lossy = [t.decode("utf-8", "replace") for t in texts]
        exact = [i for i, r in enumerate(theirs) if r["roundtrip"] == lossy[i]]
        bad = [i for i in exact if ours[i]["roundtrip"] != lossy[i]]
        self.report.check(not bad, f"{name} {label}: decode(encode(x)) == x",
                          f"{len(exact)} of {len(texts)} texts where the library gives x back; "
                          f"{len(bad)} not here")
        return meta

    def check_added_tokens(self, name, folder, texts, tokens_json, tokens):
        """tokens.json on top: ids as the library's addSpecialTokens; the exported folder's
        tokenizer.json alone gives the training ids."""
        texts_path = f"{self.w}/{name}-tokens.bin"
        write_texts(texts_path, texts)
        ours, meta = self.ours(folder, texts_path, f"{self.w}/{name}-tokens-ours.jsonl",
                               tokens_json)
        theirs, theirs_meta = self.library(os.path.join(folder, "tokenizer.json"), texts_path,
                                           f"{self.w}/{name}-tokens-hf.jsonl", tokens_json)
        self.compare(f"{name} +tokens.json: encode", texts, ours, theirs, "with_special")
        self.report.check(meta["token_ids"] == theirs_meta["token_ids"],
                          f"{name} +tokens.json: new token ids",
                          f"{meta['token_ids']} vs library {theirs_meta['token_ids']}")
        out = f"{self.w}/{name}-exported"
        run_or_raise([self.z, "init", "--out", out, "--preset", "tiny", "--dim", "16",
                      "--n-layers", "1", "--n-heads", "2", "--n-kv-heads", "1", "--hidden", "32",
                      "--tokenizer", folder, "--special_token_path", tokens_json,
                      "--max-positions", "512"])
        exported, exported_meta = self.library(os.path.join(out, "tokenizer.json"), texts_path,
                                               f"{self.w}/{name}-exported-hf.jsonl")
        self.compare(f"{name} exported tokenizer.json", texts, ours, exported, "with_special")
        base = meta["vocab_size"] - len(tokens)
        want = {t: base + i for i, t in enumerate(tokens)}
        with open(os.path.join(out, "tokenizer_config.json"), encoding="utf-8") as f:
            decoder = json.load(f).get("added_tokens_decoder", {})
        in_config = {t: int(k) for k, v in decoder.items() for t in tokens
                     if v.get("content") == t and v.get("special") is True}
        self.report.check(meta["token_ids"] == want and in_config == want and
                          exported_meta["vocab_size"] == meta["vocab_size"],
                          f"{name} exported: tokens after the vocabulary",
                          f"{meta['token_ids']}, config {in_config}, library vocab "
                          f"{exported_meta['vocab_size']} vs {meta['vocab_size']}")

    def check_refusal(self, folder):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tokenizer = json.load(f)
        tokenizer["pre_tokenizer"]["pretokenizers"][1] = {"type": "Whitespace"}
        bad = write_folder(f"{self.w}/refused", tokenizer, {"eos_token": "<|endoftext|>"})
        r = run([self.bench, "--tokenizer", bad, "--texts", "/dev/null", "--dump",
                 f"{self.w}/refused.jsonl"])
        err = r.stderr.decode("utf-8", "replace").strip()
        want = "pre_tokenizer.pretokenizers[1].type 'Whitespace' is not supported; supported:"
        self.report.check(r.returncode == 1 and want in err and err.count("\n") == 0,
                          "unsupported component refused", err[:160])


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--zerotune", "--tokenizer-bench", "--workdir", "--node-dir"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--shared-data", default=os.path.join(HERE, "..", "..", "..", "shared", "data"))
    args = ap.parse_args()
    w = os.path.abspath(args.workdir)
    args.node_dir = os.path.abspath(args.node_dir)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    report = Report(width=48)
    install = run(["bash", os.path.join(HERE, "..", "tools", "npm_install.sh"),
                   os.path.join(HERE, "..", "tokenizer_json"), args.node_dir, "tokenizers",
                   "--skip-without-npm"])
    if install.returncode == SKIP_EXIT:
        print(f"SKIP  tokenizers checks: {install.stderr.decode().strip()}", flush=True)
        return SKIP_EXIT
    if not report.check(install.returncode == 0, "npm install tokenizers",
                        (install.stderr or install.stdout).decode().strip()[-300:]):
        return report.finish()

    checker = Checker(args, os.path.abspath(args.zerotune), os.path.abspath(args.tokenizer_bench),
                      w, report)
    data = f"{w}/data"
    gsm8k = gsm8k_texts(checker.z, data)
    torture = torture_texts()
    tokens_json = f"{data}/tokens.json"
    with open(tokens_json, encoding="utf-8") as f:
        tokens = json.load(f)["tokens"]
    # The small vocabularies are learnt without the GSM8K tokens, which come as new tokens.
    corpus = [t.decode("utf-8", "replace") for t in gsm8k[:300] + torture]
    for token in tokens:
        corpus = [t.replace(token, " ") for t in corpus]
    folders = [("qwen-style", write_folder(f"{w}/qwen", *qwen_style(corpus))),
               ("components", write_folder(f"{w}/components", *components_style(corpus)))]
    for shared in ("llama3.1-tokenizer", "mistral-tokenizer"):
        path = os.path.join(args.shared_data, shared)
        if os.path.exists(os.path.join(path, "tokenizer.json")):
            folders.append((shared.split("-")[0], path))
        else:
            print(f"SKIP  {shared}: {path} not found (../shared absent)", flush=True)
    for name, folder in folders:
        checker.check_tokenizer(name, folder, torture, "torture")
        checker.check_tokenizer(name, folder, gsm8k, "gsm8k")
        checker.check_added_tokens(name, folder, gsm8k[:200] + torture, tokens_json, tokens)
    checker.check_refusal(folders[0][1])
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
