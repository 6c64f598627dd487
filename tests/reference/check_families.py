#!/usr/bin/python3
"""Checks the Llama-3.x, Qwen2 and Mistral variants against a PyTorch reference written here.

  check_families.py --zerotune build/zerotune --workdir DIR [--only NAME[,NAME...]]

Each case writes a random model in Hugging Face layout with the family's config.json
(rope_scaling llama3/linear/dynamic, Qwen2 q/k/v biases, tied embeddings, Mistral), runs
`zerotune debug grads` and compares with the reference below, which follows transformers'
formulas (no transformers here: Debian has none):
  loss        relative error <= 1e-5
  gradients   every tensor, biases included: ||a - b|| / ||b|| <= 1e-4
Rope scaling cases run sequences past original_max_position_embeddings, and check that the
scaling matters: the reference without it must miss zerotune's loss by more than the tolerance.
Case `zero`: a Qwen2 folder (tied, q/k/v biases, llama3 rope; the tied vocabulary grown for two
added tokens on load) trained by `zerotune train` on chat rows under mpirun: 2 ranks x 2 rows at ZeRO stages 0-3 give the losses, gradient norms and eval
losses of 1 rank x 4 rows within 1e-5 relative.
Case `chat`: the first step's loss and counted tokens of `zerotune train` on chat rows against the
reference model on labels found independently (jinja2 rendering, python3-sentencepiece tokens,
a token labelled when its bytes lie inside an assistant reply's span of the text).
Prints one line per check, ends with `N passed, M failed`, exits 1 when anything failed.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
from report import Report  # noqa: E402

LOSS_TOL = 1e-5
GRAD_TOL = 1e-4

LLAMA3_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 32, "rope_type": "llama3"}

# name: (architecture, config overrides, (batch, seq len, seed))
# head_dim 16, theta 10000: pair wavelengths 6.3, 20, 63, 199, ... so that with
# original_max_position_embeddings 32 (llama3: high band < 8, low band > 32) every band is hit.
CASES = {
    "llama31_rope_llama3": ("LlamaForCausalLM", {"rope_scaling": LLAMA3_SCALING}, (2, 48, 1)),
    "llama32_tied_llama3": ("LlamaForCausalLM", {"rope_scaling": dict(LLAMA3_SCALING, factor=32.0),
                                                 "tie_word_embeddings": True, "rope_theta": 500000.0},
                            (2, 40, 2)),
    "qwen2_bias_gqa": ("Qwen2ForCausalLM", {"rope_theta": 1000000.0, "sliding_window": 16,
                                            "use_sliding_window": False}, (3, 24, 3)),
    "qwen25_tied_bias": ("Qwen2ForCausalLM", {"tie_word_embeddings": True}, (2, 20, 4)),
    "linear_rope": ("LlamaForCausalLM", {"rope_scaling": {"type": "linear", "factor": 2.0}}, (2, 40, 5)),
    "dynamic_rope": ("LlamaForCausalLM", {"rope_scaling": {"type": "dynamic", "factor": 4.0}}, (2, 40, 6)),
    "mistral_theta": ("MistralForCausalLM", {"rope_theta": 1000000.0, "sliding_window": None}, (2, 30, 7)),
}
SCALED = {"llama31_rope_llama3", "llama32_tied_llama3", "linear_rope"}
MODEL_TYPES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}


def hf_config(arch, overrides):
    cfg = {"architectures": [arch], "model_type": MODEL_TYPES[arch], "hidden_size": 64,
           "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "vocab_size": 97, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "max_position_embeddings": 64, "tie_word_embeddings": False, "hidden_act": "silu",
           "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
    cfg.update(overrides)
    return cfg


def parameter_shapes(cfg):
    shapes = llama_ref.parameter_shapes(cfg)
    if cfg["bias"]:
        H, Hkv, Dh = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
        for i in range(cfg["layers"]):
            p = f"model.layers.{i}.self_attn."
            shapes[p + "q_proj.bias"] = [H * Dh]
            shapes[p + "k_proj.bias"] = [Hkv * Dh]
            shapes[p + "v_proj.bias"] = [Hkv * Dh]
    return shapes


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    cfg = {"dim": raw["hidden_size"], "hidden": raw["intermediate_size"], "layers": raw["num_hidden_layers"],
           "heads": raw["num_attention_heads"], "kv_heads": raw["num_key_value_heads"],
           "vocab": raw["vocab_size"], "eps": raw["rms_norm_eps"], "rope_theta": raw["rope_theta"],
           "tie": raw["tie_word_embeddings"], "max_pos": raw["max_position_embeddings"],
           "rope_scaling": raw.get("rope_scaling"), "bias": raw["model_type"] == "qwen2"}
    cfg["head_dim"] = raw.get("head_dim") or cfg["dim"] // cfg["heads"]
    return cfg


def write_model(out, arch, overrides, seed):
    """Matrices normal(0, 0.02) except q/k at 0.2 (attention far from uniform, so that rope
    matters); norms 1 + 0.1 normal; biases normal(0, 0.5)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(hf_config(arch, overrides), f, indent=2)
    cfg = load_config(out)
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in parameter_shapes(cfg).items():
        w = torch.randn(shape, generator=gen, dtype=torch.float32)
        if name.endswith(".bias"):
            w = 0.5 * w
        elif len(shape) == 1:
            w = 1.0 + 0.1 * w
        else:
            w = (0.2 if ("q_proj" in name or "k_proj" in name) else 0.02) * w
        weights[name] = w
    llama_ref.write_safetensors(os.path.join(out, "model.safetensors"), weights, {"format": "pt"})
    return cfg


# ---------------------------------------------------------------------------
# Reference: transformers' rope initialisers and Qwen2/Llama attention, fp32.
# ---------------------------------------------------------------------------


def default_inv_freq(cfg):
    dim = cfg["head_dim"]
    return 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def llama3_inv_freq(inv_freq, s):
    # transformers' _compute_llama3_parameters
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old_context_len = s["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low
    high_freq_wavelen = old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rope_cos_sin(cfg, T, use_scaling=True):
    """cos/sin [T, Dh] as transformers' LlamaRotaryEmbedding/Qwen2RotaryEmbedding compute them."""
    s = cfg["rope_scaling"] if use_scaling else None
    kind = (s or {}).get("rope_type", (s or {}).get("type", "default"))
    inv_freq = default_inv_freq(cfg)
    pos = torch.arange(T, dtype=torch.float32)
    if kind == "llama3":
        inv_freq = llama3_inv_freq(inv_freq, s)
    elif kind == "linear":
        inv_freq = inv_freq / s["factor"]
    elif kind == "dynamic" and T > cfg["max_pos"]:
        # _compute_dynamic_ntk_parameters: only sequences past max_position_embeddings change base.
        dim, factor = cfg["head_dim"], s["factor"]
        base = cfg["rope_theta"] * ((factor * T / cfg["max_pos"]) - (factor - 1)) ** (dim / (dim - 2))
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def projection(p, name, h):
    y = h @ p[name + ".weight"].t()
    return y + p[name + ".bias"] if name + ".bias" in p else y


def attention(cfg, p, prefix, h, cos, sin):
    B, T, _ = h.shape
    H, Hkv, Dh = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    q = projection(p, prefix + "q_proj", h).view(B, T, H, Dh).transpose(1, 2)  # [B, H, T, Dh]
    k = projection(p, prefix + "k_proj", h).view(B, T, Hkv, Dh).transpose(1, 2)
    v = projection(p, prefix + "v_proj", h).view(B, T, Hkv, Dh).transpose(1, 2)
    q = llama_ref.apply_rope(q, cos, sin)
    k = llama_ref.apply_rope(k, cos, sin)
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    out = (probs @ v).transpose(1, 2).reshape(B, T, H * Dh)
    return out @ p[prefix + "o_proj.weight"].t()


def forward_logits(cfg, p, ids, use_scaling=True):
    x = p["model.embed_tokens.weight"][ids]
    cos, sin = rope_cos_sin(cfg, ids.shape[1], use_scaling)
    for i in range(cfg["layers"]):
        pre = f"model.layers.{i}."
        h = llama_ref.rms_norm(x, p[pre + "input_layernorm.weight"], cfg["eps"])
        x = x + attention(cfg, p, pre + "self_attn.", h, cos, sin)
        h = llama_ref.rms_norm(x, p[pre + "post_attention_layernorm.weight"], cfg["eps"])
        x = x + llama_ref.mlp(p, pre + "mlp.", h)
    x = llama_ref.rms_norm(x, p["model.norm.weight"], cfg["eps"])
    head = p["model.embed_tokens.weight"] if cfg["tie"] else p["lm_head.weight"]
    return x @ head.t()


def reference(model_dir, batch, use_scaling=True):
    cfg = load_config(model_dir)
    stored, _ = llama_ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    params = {n: t.float().clone().requires_grad_(True) for n, t in stored.items()}
    ids, labels = llama_ref.read_batch(batch)
    loss, tokens = llama_ref.causal_lm_loss(forward_logits(cfg, params, ids, use_scaling), labels)
    loss.backward()
    return float(loss), tokens, {n: t.grad for n, t in params.items()}


def rel_err(a, b):
    denom = float(b.double().norm())
    diff = float((a.double() - b.double()).norm())
    return diff / denom if denom > 0 else diff


def run_case(report, zt, workdir, name):
    arch, overrides, (B, T, seed) = CASES[name]
    model_dir = os.path.join(workdir, name)
    cfg = write_model(model_dir, arch, overrides, seed + 100)
    batch = os.path.join(workdir, name + ".jsonl")
    import make_model  # noqa: E402 - its batch writer
    make_model.main(["--batch", batch, "--batch-size", str(B), "--seq-len", str(T),
                     "--vocab", str(cfg["vocab"]), "--seed", str(seed)])
    out = os.path.join(workdir, name + ".grads.safetensors")
    proc = subprocess.run([zt, "debug", "grads", "--model", model_dir, "--batch", batch, "--out", out],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        report.check(False, f"{name} zerotune debug grads", proc.stderr.strip().splitlines()[-1:])
        return
    res = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    got, _ = llama_ref.read_safetensors(out)
    loss, tokens, want = reference(model_dir, batch)
    e = abs(res["loss"] - loss) / abs(loss)
    report.check(e <= LOSS_TOL and res["tokens"] == tokens, f"{name} loss",
                 f"zerotune {res['loss']:.9g} ref {loss:.9g} rel err {e:.2e}; tokens {res['tokens']}/{tokens}")
    names_ok = set(got) == set(want)
    report.check(names_ok, f"{name} grad names", f"{len(want)} tensors, "
                 f"{sum(n.endswith('.bias') for n in want)} biases" if names_ok else
                 f"missing {sorted(set(want) - set(got))[:3]} extra {sorted(set(got) - set(want))[:3]}")
    errs = {n: rel_err(got[n], want[n]) for n in sorted(set(got) & set(want))
            if tuple(got[n].shape) == tuple(want[n].shape)}
    worst = max(errs, key=lambda n: errs[n]) if errs else "-"
    ok = len(errs) == len(want) and all(e <= GRAD_TOL for e in errs.values())
    report.check(ok, f"{name} grads", f"max rel err {errs.get(worst, float('nan')):.2e} ({worst})")
    if name in SCALED:
        unscaled, _, _ = reference(model_dir, batch, use_scaling=False)
        gap = abs(res["loss"] - unscaled) / abs(unscaled)
        report.check(gap > 10 * LOSS_TOL, f"{name} scaling matters",
                     f"loss without rope scaling differs by {gap:.2e} (T={T} > original context)")


# ---------------------------------------------------------------------------
# ZeRO: a Qwen2 model (tied, q/k/v biases, llama3 rope) trained on chat rows through `zerotune
# train`: N ranks x b per rank must give the losses, gradient norms and weights of 1 rank x N*b.
# ---------------------------------------------------------------------------

CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
                 "{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_qwen_folder(zt, work, env, chat_tokens_in_vocab=False):
    """A tiny folder from `zerotune init` (its SentencePiece tokenizer) turned into a Qwen2 one.
    With chat_tokens_in_vocab the ChatML markers are in its vocabulary from the start."""
    data, tok, model = f"{work}/data", f"{work}/tok", f"{work}/qwen"
    os.makedirs(work, exist_ok=True)
    with open(f"{work}/vocab_tokens.json", "w") as f:
        json.dump({"tokens": ["<START_Q>", "<END_Q>", "<START_A>", "<END_A>"]
                   + (["<|im_start|>", "<|im_end|>"] if chat_tokens_in_vocab else [])}, f)
    for cmd in ([zt, "data", "synth", "--out", data, "--train", "24", "--test", "6", "--seed", "4",
                 "--format", "chat"],
                [zt, "data", "synth", "--out", f"{work}/qa", "--train", "60", "--test", "2"],
                [zt, "tokenizer", "train", "--input", f"{work}/qa/train.jsonl", "--vocab-size", "400",
                 "--out", tok, "--special_token_path", f"{work}/vocab_tokens.json"],
                [zt, "init", "--out", model, "--dim", "48", "--n-layers", "2", "--n-heads", "4",
                 "--n-kv-heads", "2", "--hidden", "96", "--tokenizer", tok, "--max-positions", "512",
                 "--save-dtype", "f32", "--tie"]):
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: {r.stderr.strip()[-300:]}")
    with open(f"{model}/config.json") as f:
        cfg = json.load(f)
    for key in ("attention_bias", "mlp_bias", "pretraining_tp", "head_dim"):
        cfg.pop(key, None)
    cfg.update({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "use_sliding_window": False,
                "sliding_window": 32, "rope_scaling": dict(LLAMA3_SCALING, original_max_position_embeddings=64)})
    with open(f"{model}/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    weights, _ = llama_ref.read_safetensors(f"{model}/model.safetensors")
    gen = torch.Generator().manual_seed(9)
    q, kv = cfg["hidden_size"], cfg["hidden_size"] // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    for i in range(cfg["num_hidden_layers"]):
        for proj, n in (("q", q), ("k", kv), ("v", kv)):
            weights[f"model.layers.{i}.self_attn.{proj}_proj.bias"] = 0.5 * torch.randn(n, generator=gen)
    llama_ref.write_safetensors(f"{model}/model.safetensors", weights, {"format": "pt"})
    with open(f"{model}/tokenizer_config.json") as f:
        tc = json.load(f)
    tc["chat_template"] = CHAT_TEMPLATE
    with open(f"{model}/tokenizer_config.json", "w") as f:
        json.dump(tc, f, indent=2)
    return data, model


def train_curve(out):
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    train = [r for r in rows if r.get("type") == "train"]
    return [r["loss"] for r in train] + [r["grad_norm"] for r in train] + \
        [r["eval_loss"] for r in rows if r.get("type") == "eval"]


def check_zero_stages(report, zt, workdir):
    work = os.path.join(workdir, "zero")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    if shutil.which("mpirun") is None:
        report.check(False, "zero: mpirun available", "install openmpi-bin (scripts/setup.sh)")
        return
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        data, model = make_qwen_folder(zt, work, env)
    except RuntimeError as e:
        report.check(False, "zero: setup", str(e))
        return
    # The turn markers as added special tokens: the tied vocabulary grows on load (404 -> 406).
    with open(f"{work}/chat_tokens.json", "w") as f:
        json.dump({"tokens": ["<|im_start|>", "<|im_end|>"]}, f)
    base = [zt, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
            "--test_path", f"{data}/test.jsonl", "--special_token_path", f"{work}/chat_tokens.json",
            "--lr", "3e-3", "--ctx-len", "200", "--warmup-steps", "1",
            "--pad-to-longest", "--save-dtype", "f32", "--param-persistence-threshold", "0",
            "--num-epochs", "1", "--mx", "no", "--seed", "3"]

    def train(out, ranks, extra):
        cmd = base + ["--output_dir", out] + extra
        if ranks > 1:
            cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, env=env)

    ref = os.path.join(work, "ref")
    r = train(ref, 1, ["-bs", "4"])
    summary = [ln for ln in r.stderr.splitlines() if "qkv-bias" in ln]
    if not report.check(r.returncode == 0 and summary, "zero: 1 rank x 4 (qwen2, chat rows)",
                        summary[0][:110] if summary else r.stderr.strip()[-300:]):
        return
    with open(os.path.join(ref, "epoch-0", "config.json")) as f:
        saved = json.load(f)
    tensors, _ = llama_ref.read_safetensors(os.path.join(ref, "epoch-0", "model.safetensors"))
    biases = sorted(n for n in tensors if n.endswith(".bias"))
    vocab = tuple(tensors["model.embed_tokens.weight"].shape)
    report.check(saved.get("model_type") == "qwen2" and len(biases) == 6 and "lm_head.weight" not in tensors
                 and (saved.get("rope_scaling") or {}).get("rope_type") == "llama3"
                 and saved.get("vocab_size") == 406 and vocab[0] == 406,
                 "zero: checkpoint is a Qwen2 folder",
                 f"model_type {saved.get('model_type')}, {len(biases)} biases, tied [V, D] {list(vocab)}, "
                 f"rope {(saved.get('rope_scaling') or {}).get('rope_type')}")
    want = train_curve(ref)
    for stage in (0, 1, 2, 3):
        out = os.path.join(work, f"s{stage}")
        r = train(out, 2, ["-bs", "2", "--zero-stage", str(stage)])
        if r.returncode != 0:
            report.check(False, f"zero: 2 ranks x 2, stage {stage}", r.stderr.strip()[-300:])
            continue
        got = train_curve(out)
        d = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got, want)) if len(got) == len(want) else 1.0
        saved, _ = llama_ref.read_safetensors(os.path.join(out, "epoch-0", "model.safetensors"))
        wd = max((rel_err(saved[n], tensors[n]) for n in tensors), default=1.0) \
            if set(saved) == set(tensors) else float("inf")
        report.check(d <= 1e-5 and wd <= 1e-4, f"zero: 2 ranks x 2, stage {stage}",
                     f"{len(want)} losses/grad norms/eval losses, max rel diff {d:.2e}; saved weights "
                     f"(biases included) {wd:.1e} vs 1 rank x 4")


# ---------------------------------------------------------------------------
# Chat rows end to end: the first step's loss of `zerotune train` on {"messages": [...]} rows
# against the reference model on labels found independently: the conversation rendered by Python's
# jinja2, tokenised by python3-sentencepiece with the special tokens split out, and a token labelled
# when its bytes lie inside an assistant reply's span of the text, [len(render(messages[:i],
# add_generation_prompt=True)), len(render(messages[:i+1]))).
# ---------------------------------------------------------------------------


def piece_bytes(piece, first):
    if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
        return 1
    n = len(piece.replace("\u2581", " ").encode("utf-8"))
    return n - 1 if first and piece.startswith("\u2581") else n  # the dummy prefix is not text


def reference_tokens(sp, specials, text):
    """(ids, [start, end) byte span of each token) as zerotune's tokenizer splits the text: special
    tokens first (leftmost, longest), each other segment encoded on its own."""
    pattern = "(" + "|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)) + ")"
    ids, spans, pos = [], [], 0
    for seg in re.split(pattern, text):
        if not seg:
            continue
        if seg in specials:
            ids.append(specials[seg])
            spans.append((pos, pos + len(seg.encode("utf-8"))))
        else:
            for k, (tid, piece) in enumerate(zip(sp.encode(seg), sp.encode(seg, out_type=str))):
                n = piece_bytes(piece, k == 0)
                ids.append(tid)
                spans.append((pos, pos + n))
                pos += n
            continue
        pos += len(seg.encode("utf-8"))
    if pos != len(text.encode("utf-8")):
        raise ValueError(f"token spans cover {pos} of {len(text.encode('utf-8'))} bytes")
    return ids, spans


def reference_chat_labels(template, sp, specials, messages):
    render = lambda msgs, agp: template.render(messages=msgs, tools=None, documents=None,  # noqa: E731
                                               add_generation_prompt=agp)
    full = render(messages, False)
    ids, spans = reference_tokens(sp, specials, full)
    labels = [-100] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before, after = render(messages[:i], True), render(messages[: i + 1], False)
        assert full.startswith(after) and after.startswith(before), "template is not prefix-stable"
        lo, hi = len(before.encode("utf-8")), len(after.encode("utf-8"))
        for t, (a, b) in enumerate(spans):
            if lo <= a and b <= hi:
                labels[t] = ids[t]
    return ids, labels


def check_chat_loss(report, zt, workdir):
    import sentencepiece as spm
    from check_chat_template import transformers_environment
    work = os.path.join(workdir, "chat_loss")
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    try:
        data, model = make_qwen_folder(zt, work, env, chat_tokens_in_vocab=True)
    except RuntimeError as e:
        report.check(False, "chat rows: setup", str(e))
        return
    sp = spm.SentencePieceProcessor(model_file=f"{model}/tokenizer.model")
    with open(f"{model}/added_tokens.json") as f:
        specials = json.load(f)
    specials.update({sp.id_to_piece(i): i for i in (sp.unk_id(), sp.bos_id(), sp.eos_id())})
    template = transformers_environment().from_string(CHAT_TEMPLATE)
    rows = [json.loads(line)["messages"] for line in open(f"{data}/train.jsonl")]
    encoded = [reference_chat_labels(template, sp, specials, m) for m in rows]
    T = max(len(ids) for ids, _ in encoded)
    ids = torch.tensor([x + [sp.eos_id()] * (T - len(x)) for x, _ in encoded])
    labels = torch.tensor([y + [-100] * (T - len(y)) for _, y in encoded])
    loss, tokens, _ = reference_from(model, ids, labels)
    out = os.path.join(work, "run")
    r = subprocess.run([zt, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
                        "--test_path", f"{data}/test.jsonl", "--output_dir", out, "-bs", str(len(rows)),
                        "--max-steps", "1", "--no-shuffle", "--mx", "no", "--ctx-len", "512",
                        "--pad-to-longest", "--save-dtype", "f32"],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        report.check(False, "chat rows: zerotune train", r.stderr.strip()[-300:])
        return
    check_tokenize_chat(report, zt, model, f"{data}/train.jsonl", encoded, os.path.join(work, "ids"))
    first = [json.loads(ln) for ln in open(os.path.join(out, "metrics.jsonl"))][0]
    e = abs(first["loss"] - loss) / abs(loss)
    report.check(e <= LOSS_TOL and first["tokens"] == tokens, "chat rows: first step's loss",
                 f"{len(rows)} conversations of {ids.numel()} padded tokens, {tokens} labelled "
                 f"(zerotune {first['tokens']}); loss {first['loss']:.8f} vs ref {loss:.8f}, rel err {e:.1e}")


def check_tokenize_chat(report, zt, model, rows_path, encoded, out):
    """`zerotune tokenize` of the chat rows: ids and labels equal the reference's, whole and cut."""
    for ctx_len in (0, 24):
        r = subprocess.run([zt, "tokenize", "--tokenizer", model, "--input", rows_path, "--output",
                            out, "--ctx-len", str(ctx_len)], capture_output=True, text=True)
        got = [json.loads(ln) for ln in open(out)] if r.returncode == 0 else []
        want = [(ids[:ctx_len or None], labels[:ctx_len or None]) for ids, labels in encoded]
        same = [(g["input_ids"], g["labels"]) for g in got] == want
        report.check(r.returncode == 0 and same,
                     f"chat rows: `zerotune tokenize --ctx-len {ctx_len}` gives the reference's ids "
                     "and labels", r.stderr.strip()[-200:] or r.stdout.strip())


def reference_from(model_dir, ids, labels):
    cfg = load_config(model_dir)
    stored, _ = llama_ref.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    params = {n: t.float().clone() for n, t in stored.items()}
    with torch.no_grad():
        loss, tokens = llama_ref.causal_lm_loss(forward_logits(cfg, params, ids), labels)
    return float(loss), tokens, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zerotune", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only")
    args = ap.parse_args(argv)
    zt = os.path.abspath(args.zerotune)
    os.makedirs(args.workdir, exist_ok=True)
    names = args.only.split(",") if args.only else list(CASES)
    names_cases = [n for n in names if n in CASES]
    report = Report(34)
    for name in names_cases:
        run_case(report, zt, args.workdir, name)
    if not args.only or "zero" in names:
        check_zero_stages(report, zt, args.workdir)
    if not args.only or "chat" in names:
        check_chat_loss(report, zt, args.workdir)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
