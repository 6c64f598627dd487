"""A tiny Llama folder with tokenizer, made by zerotune itself (as tests/cli/check_train_cli.py
does), for the storage checks."""

import subprocess


def make_tiny_model(z, w):
    """Returns (data_dir, model_dir), or raises RuntimeError naming the failed command."""
    data, tok, model = f"{w}/data", f"{w}/tok", f"{w}/model"
    for cmd in ([z, "data", "synth", "--out", data, "--train", "24", "--test", "8", "--seed", "2"],
                [z, "tokenizer", "train", "--input", f"{data}/train.jsonl", "--vocab-size", "400",
                 "--out", tok, "--special_token_path", f"{data}/tokens.json"],
                [z, "init", "--out", model, "--preset", "tiny", "--dim", "48", "--n-layers", "2",
                 "--n-heads", "4", "--n-kv-heads", "2", "--hidden", "96", "--tokenizer", tok,
                 "--special_token_path", f"{data}/tokens.json", "--max-positions", "256"]):
        r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return data, model
