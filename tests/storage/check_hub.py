#!/usr/bin/python3
"""Model downloads from a Hub-like server on loopback (fake_hub.py): only the files a fine-tune
needs (never pickles), verified by sha256 / git blob id, once per machine when four processes
start together, resumed after a dropped connection, gated repos with HF_TOKEN, and clear errors.

  check_hub.py --zerotune BIN --workdir DIR
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

from servers import Servers, base_env, http_json, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model  # noqa: E402

report = Report(60)
check = report.check
HF_TOKEN = "hf_zerotuneGatedTokenNeverPrinted42"


def main():
    _, z, w = check_args()
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "make a tiny model", str(e))
        return report.finish()

    root = f"{w}/hub"
    for repo in ("org/tiny", "org/gated", "org/resume", "org/corrupt"):
        shutil.copytree(model, f"{root}/{repo}")
    with open(f"{root}/org/tiny/pytorch_model.bin", "wb") as f:
        f.write(b"pickle that must never be fetched")
    os.makedirs(f"{root}/org/sharded")
    shutil.copy(f"{model}/config.json", f"{root}/org/sharded/")
    with open(f"{root}/org/sharded/model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
            "c": "model-00001-of-00002.safetensors"}}, f)
    for i in (1, 2):
        with open(f"{root}/org/sharded/model-0000{i}-of-00002.safetensors", "wb") as f:
            f.write(os.urandom(1000 * i))

    with Servers(w) as servers:
        try:
            endpoint = servers.fake_hub(root, ["--gated", f"org/gated={HF_TOKEN}",
                                               "--drop-first", "org/resume/model.safetensors",
                                               "--corrupt", "org/corrupt/model.safetensors"])
        except RuntimeError as e:
            check(False, "start the Hub server", str(e))
            return report.finish()
        cache = f"{w}/cache"
        env = base_env(HF_ENDPOINT=endpoint, ZEROTUNE_CACHE=cache)

        # Four processes at once: one downloads under the lock, the others reuse its files.
        procs = [subprocess.Popen([z, "storage", "fetch", "org/tiny"], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        outs = [p.communicate(timeout=300) for p in procs]
        folders = {o[0].strip() for o in outs}
        check(all(p.returncode == 0 for p in procs) and len(folders) == 1,
              "4 concurrent fetches succeed with one folder",
              str(folders) + " " + " | ".join(o[1].strip()[-120:] for o in outs if o[1].strip()))
        log = http_json(f"{endpoint}/__stats")
        counts = Counter(e["path"] for e in log)
        check(counts and max(counts.values()) == 1, "every file requested once (file lock)",
              str({k: v for k, v in counts.items() if v > 1}))
        check(not any(p.endswith(".bin") for p in counts), "pickled .bin weights never requested")
        folder = folders.pop() if len(folders) == 1 else ""
        want = sorted(f for f in os.listdir(model))
        got = sorted(os.listdir(folder)) if folder else []
        check(got == want and all(filecmp.cmp(f"{model}/{f}", f"{folder}/{f}", shallow=False)
                                  for f in want), "downloaded files equal the repo's", str(got))
        before = len(log)
        r = run([z, "storage", "fetch", "org/tiny"], env)
        check(r.returncode == 0 and len(http_json(f"{endpoint}/__stats")) == before,
              "a second fetch is served from the cache")

        r = run([z, "storage", "fetch", "org/sharded"], env)
        sharded = r.stdout.strip()
        check(r.returncode == 0 and sorted(os.listdir(sharded)) == [
            "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"], "sharded repo: the shards its index names",
            r.stderr.strip()[-200:])

        r = run([z, "storage", "fetch", "org/gated"], env)
        check(r.returncode != 0 and "HTTP 401" in r.stderr and "HF_TOKEN" in r.stderr,
              "gated repo without HF_TOKEN: explained", r.stderr.strip()[-160:])
        wrong = "hf_wrongTokenNeverPrinted0000"
        r = run([z, "storage", "fetch", "org/gated"], dict(env, HF_TOKEN=wrong))
        check(r.returncode != 0 and "refused" in r.stderr and wrong not in r.stdout + r.stderr,
              "wrong HF_TOKEN refused, not printed", r.stderr.strip()[-160:])
        r = run([z, "storage", "fetch", "org/gated"], dict(env, HF_TOKEN=HF_TOKEN))
        check(r.returncode == 0 and HF_TOKEN not in r.stdout + r.stderr,
              "gated repo with HF_TOKEN", r.stderr.strip()[-160:])

        r = run([z, "storage", "fetch", "org/resume"], env)
        log = http_json(f"{endpoint}/__stats")
        ranges = [e["range"] for e in log if e["path"] == "/cdn/org/resume/model.safetensors"]
        ok = r.returncode == 0 and filecmp.cmp(f"{model}/model.safetensors",
                                               f"{r.stdout.strip()}/model.safetensors",
                                               shallow=False)
        check(ok and len(ranges) == 2 and ranges[0] is None and ranges[1].startswith("bytes="),
              "dropped download resumed with a Range request", f"ranges {ranges}")

        r = run([z, "storage", "fetch", "org/corrupt"], env)
        check(r.returncode != 0 and "sha256" in r.stderr and "model.safetensors" in r.stderr,
              "corrupted bytes fail the sha256 check", r.stderr.strip()[-200:])
        check(not os.path.exists(f"{cache}/hub/org/corrupt/main.complete"),
              "a failed download is not marked complete")
        corrupt = f"{cache}/hub/org/corrupt/main/model.safetensors"
        check(not os.path.exists(corrupt) and not os.path.exists(corrupt + ".partial"),
              "the refused bytes are left nowhere (no file, no .partial)")

        r = run([z, "storage", "fetch", "org/missing"], env)
        check(r.returncode != 0 and "no such local folder" in r.stderr and "org/missing" in
              r.stderr, "missing Hub repo: explained", r.stderr.strip()[-200:])
        r = run([z, "storage", "fetch", "./no/such/folder"], env)
        check(r.returncode != 0 and "no such folder, and not a Hub id" in r.stderr,
              "missing local path is not sent to the Hub", r.stderr.strip()[-200:])

        out = f"{w}/out"
        r = run([z, "train", "--model_name", "org/tiny", "--train_path", f"{data}/train.jsonl",
                 "--test_path", f"{data}/test.jsonl", "--special_token_path",
                 f"{data}/tokens.json", "-bs", "4", "--ctx-len", "128", "--as-test",
                 "--output_dir", out], env)
        check(r.returncode == 0 and os.path.exists(f"{out}/epoch-0/model.safetensors"),
              "train --model_name <Hub id>", r.stderr.strip()[-200:])
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
