#!/usr/bin/python3
"""Checks that a Hugging Face Llama folder is what transformers' from_pretrained expects.

  check_checkpoint.py --folder DIR [--reference REF_DIR] [--expect-dtype bfloat16]
                      [--expect-tokenizer]

Independent of zerotune's C++ (plain json + struct, llama_ref's safetensors reader and
loader, python sentencepiece when installed). Checks:
  files       config.json, generation_config.json; model.safetensors alone, or
              model.safetensors.index.json with model-0000k-of-0000n.safetensors, k = 1..n
  safetensors header length, __metadata__ {"format": "pt"}, offsets contiguous from 0 to the
              end of the file (the safetensors library rejects gaps), one dtype throughout
  index       every tensor in exactly one shard, the shard the weight_map names;
              metadata.total_size == the sum of tensor bytes
  config      architectures/model_type, sizes that match the tensors, torch_dtype == the
              stored dtype, tie_word_embeddings <=> no lm_head.weight, ids inside the vocab
  generation  generation_config.json ids equal config.json's
  tokenizer   when tokenizer.model exists (required with --expect-tokenizer): the five files,
              LlamaTokenizer, added tokens consecutive after the SentencePiece vocabulary and
              inside vocab_size, added_tokens_decoder consistent with both
  load        llama_ref.load_model loads the folder, all values finite
  reference   with --reference (an f32-or-other HF folder): every tensor equals the reference
              converted to the stored dtype by torch (round to nearest even), bit for bit; rows
              past the reference vocabulary (added tokens) are skipped
Prints one line per check and ends with `N passed, M failed`; exits 1 when anything failed.
"""

import argparse
import json
import math
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from report import Report  # noqa: E402

import torch  # noqa: E402

TORCH_DTYPE_TO_ST = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
ST_DTYPE_BYTES = {"F32": 4, "BF16": 2, "F16": 2, "I32": 4, "I64": 8, "F64": 8}
SHARD_RE = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")
TOKENIZER_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "tokenizer.json"]


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_header(path):
    """Returns (header dict without __metadata__, metadata, header length, data bytes)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", prefix)
        if n > 100 * 1024 * 1024 or 8 + n > size:
            raise ValueError(f"{path}: header length {n} does not fit a {size}-byte file")
        header = json.loads(f.read(n).decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    return header, metadata, n, size - 8 - n


def check_files(report, folder):
    names = set(os.listdir(folder))
    report.check("config.json" in names, "files: config.json")
    report.check("generation_config.json" in names, "files: generation_config.json")
    leftovers = sorted(n for n in names if n.endswith(".tmp"))
    report.check(not leftovers, "files: no temporary files", ", ".join(leftovers))
    shards = sorted(n for n in names if SHARD_RE.match(n))
    if "model.safetensors.index.json" in names:
        index = load_json(os.path.join(folder, "model.safetensors.index.json"))
        listed = sorted(set(index.get("weight_map", {}).values()))
        counts = {int(SHARD_RE.match(n).group(2)) for n in listed if SHARD_RE.match(n)}
        n = counts.pop() if len(counts) == 1 else -1
        expected = [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]
        report.check(listed == expected and shards == expected, "files: shard names",
                     f"index lists {listed[:3]}..., folder has {len(shards)} shards, expected {len(expected)}")
        report.check("model.safetensors" not in names, "files: no model.safetensors beside shards")
        return expected, index
    report.check("model.safetensors" in names and not shards, "files: model.safetensors alone",
                 f"shards present: {shards[:3]}")
    return ["model.safetensors"], None


def check_weights(report, folder, files, index):
    """Returns ({name: (dtype, shape)}, total bytes) over all files."""
    tensors, where, total = {}, {}, 0
    dtypes = set()
    for name in files:
        path = os.path.join(folder, name)
        try:
            header, metadata, n, data_bytes = read_header(path)
        except (OSError, ValueError) as e:
            report.check(False, f"safetensors: {name}", str(e))
            continue
        report.check(metadata == {"format": "pt"}, f"safetensors: {name} metadata", f"{metadata}")
        report.check((8 + n) % 8 == 0, f"safetensors: {name} data aligned", f"header {n} bytes")
        spans = []
        ok_sizes = True
        for tname, info in header.items():
            nbytes = math.prod(info["shape"]) * ST_DTYPE_BYTES.get(info["dtype"], 0)
            begin, end = info["data_offsets"]
            ok_sizes &= end - begin == nbytes
            spans.append((begin, end))
            dtypes.add(info["dtype"])
            if tname in where:
                report.check(False, f"index: {tname} once", f"in {where[tname]} and {name}")
            where[tname] = name
            tensors[tname] = (info["dtype"], list(info["shape"]))
            total += nbytes
        spans.sort()
        contiguous = all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        contiguous &= (not spans and data_bytes == 0) or (spans[0][0] == 0 and spans[-1][1] == data_bytes)
        report.check(ok_sizes and contiguous, f"safetensors: {name} layout",
                     f"{len(header)} tensors, {data_bytes} data bytes")
    report.check(len(dtypes) == 1, "safetensors: one dtype", f"{sorted(dtypes)}")
    if index is not None:
        weight_map = index.get("weight_map", {})
        wrong = sorted(t for t in set(weight_map) | set(where) if weight_map.get(t) != where.get(t))
        report.check(not wrong, "index: weight_map matches shards", f"{len(weight_map)} entries; wrong: {wrong[:3]}")
        stated = index.get("metadata", {}).get("total_size")
        report.check(stated == total, "index: total_size", f"stated {stated}, tensors {total}")
    return tensors, dtypes


def check_config(report, folder, tensors, dtypes):
    config = load_json(os.path.join(folder, "config.json"))
    arch = (config.get("architectures") or [None])[0]
    model_type = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}.get(arch)
    report.check(model_type is not None and config.get("model_type") == model_type, "config: architecture",
                 f"{arch} / {config.get('model_type')}")
    stored = TORCH_DTYPE_TO_ST.get(config.get("torch_dtype"))
    report.check(stored is not None and dtypes == {stored}, "config: torch_dtype",
                 f"{config.get('torch_dtype')} vs stored {sorted(dtypes)}")
    V, D = config.get("vocab_size"), config.get("hidden_size")
    embed = tensors.get("model.embed_tokens.weight", (None, None))[1]
    report.check(embed == [V, D], "config: vocab_size/hidden_size", f"embed {embed}, config [{V}, {D}]")
    layers = {int(m.group(1)) for t in tensors for m in [re.match(r"model\.layers\.(\d+)\.", t)] if m}
    report.check(layers == set(range(config.get("num_hidden_layers", -1))), "config: num_hidden_layers",
                 f"{config.get('num_hidden_layers')} vs {len(layers)} in the weights")
    tied = bool(config.get("tie_word_embeddings", False))
    report.check(tied != ("lm_head.weight" in tensors), "config: tie_word_embeddings",
                 f"tied={tied}, lm_head stored={'lm_head.weight' in tensors}")
    report.check(config.get("hidden_act", "silu") == "silu", "config: hidden_act", f"{config.get('hidden_act')}")
    ids_ok = all(isinstance(config.get(k), int) and 0 <= config[k] < V for k in ("bos_token_id", "eos_token_id"))
    report.check(ids_ok, "config: bos/eos ids", f"{config.get('bos_token_id')}, {config.get('eos_token_id')}")
    scaling = config.get("rope_scaling")
    report.check(scaling is None or (isinstance(scaling, dict) and "factor" in scaling), "config: rope_scaling",
                 f"{scaling}")
    gen = load_json(os.path.join(folder, "generation_config.json"))
    same = all(gen.get(k) == config.get(k) for k in ("bos_token_id", "eos_token_id"))
    pad = gen.get("pad_token_id")
    report.check(same and (pad is None or (isinstance(pad, int) and 0 <= pad < V)), "generation: ids",
                 f"{ {k: gen.get(k) for k in ('bos_token_id', 'eos_token_id', 'pad_token_id')} }")
    return config


def token_content(value):
    return value.get("content") if isinstance(value, dict) else value


def check_tokenizer(report, folder, config, required):
    names = set(os.listdir(folder))
    if "tokenizer.model" not in names:
        report.check(not required, "tokenizer: present")
        return
    missing = [n for n in TOKENIZER_FILES if n not in names]
    report.check(not missing, "tokenizer: files", f"missing {missing}")
    if missing:
        return
    tok_config = load_json(os.path.join(folder, "tokenizer_config.json"))
    report.check(tok_config.get("tokenizer_class") == "LlamaTokenizer", "tokenizer: class",
                 f"{tok_config.get('tokenizer_class')}, legacy={tok_config.get('legacy')}")
    added = load_json(os.path.join(folder, "added_tokens.json"))
    try:
        import sentencepiece
    except ImportError:
        report.check(True, "tokenizer: sentencepiece", "python sentencepiece missing; vocabulary checks skipped")
        return
    sp = sentencepiece.SentencePieceProcessor()
    sp.LoadFromSerializedProto(open(os.path.join(folder, "tokenizer.model"), "rb").read())
    base = sp.get_piece_size()
    ids = sorted(added.values())
    report.check(ids == list(range(base, base + len(ids))), "tokenizer: added ids consecutive",
                 f"base {base}, ids {ids[:4]}...")
    report.check(base + len(ids) <= config["vocab_size"], "tokenizer: fits vocab_size",
                 f"{base} + {len(ids)} <= {config['vocab_size']}")
    by_id = {v: k for k, v in added.items()}
    bad = []
    for key, entry in tok_config.get("added_tokens_decoder", {}).items():
        i = int(key)
        expected = sp.id_to_piece(i) if i < base else by_id.get(i)
        if entry.get("content") != expected:
            bad.append((i, entry.get("content"), expected))
    report.check(not bad, "tokenizer: added_tokens_decoder", f"mismatches {bad[:3]}")
    special_map = load_json(os.path.join(folder, "special_tokens_map.json"))
    unknown = []
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        token = token_content(special_map.get(key, tok_config.get(key)))
        if token is not None and token not in added and sp.id_to_piece(sp.piece_to_id(token)) != token:
            unknown.append((key, token))
    report.check(not unknown, "tokenizer: special tokens in vocab", f"unknown {unknown}")


def check_load(report, folder, reference):
    try:
        cfg, params = llama_ref.load_model(folder)
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        report.check(False, "load: llama_ref.load_model", str(e))
        return
    finite = all(bool(torch.isfinite(p).all()) for p in params.values())
    report.check(finite, "load: llama_ref.load_model", f"{len(params)} tensors, finite={finite}")
    if not reference:
        return
    stored = {}
    files = ["model.safetensors"]
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index_path):
        files = sorted(set(load_json(index_path)["weight_map"].values()))
    for name in files:
        stored.update(llama_ref.read_safetensors(os.path.join(folder, name))[0])
    _, ref_params = llama_ref.load_model(reference)
    mismatched = []
    for name, ref in ref_params.items():
        got = stored[name]
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            got = got[: ref.shape[0]]  # rows past the reference vocabulary are new tokens
        expected = ref.detach().to(got.dtype)
        bits = {2: torch.int16, 4: torch.int32}[got.element_size()]
        if got.shape != expected.shape or not torch.equal(got.view(bits), expected.view(bits)):
            mismatched.append(name)
    report.check(not mismatched, "reference: values bit-exact", f"{len(ref_params)} tensors; differ: {mismatched[:3]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", required=True, help="the Hugging Face checkpoint folder to check")
    ap.add_argument("--reference", help="a folder whose weights the checked one must equal after conversion")
    ap.add_argument("--expect-dtype", choices=sorted(TORCH_DTYPE_TO_ST), help="required torch_dtype")
    ap.add_argument("--expect-tokenizer", action="store_true", help="require the tokenizer files")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.folder):
        sys.exit(f"check_checkpoint: {args.folder} is not a folder")
    report = Report(34)
    try:
        files, index = check_files(report, args.folder)
        tensors, dtypes = check_weights(report, args.folder, files, index)
        config = check_config(report, args.folder, tensors, dtypes)
        if args.expect_dtype:
            report.check(config.get("torch_dtype") == args.expect_dtype, "config: expected dtype",
                         f"{config.get('torch_dtype')}")
        check_tokenizer(report, args.folder, config, args.expect_tokenizer)
        check_load(report, args.folder, args.reference)
    except (OSError, ValueError, KeyError, TypeError) as e:
        report.check(False, "folder readable", f"{type(e).__name__}: {e}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
