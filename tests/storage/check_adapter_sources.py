#!/usr/bin/python3
"""PEFT adapters read from s3:// (s3rver) and from the Hub (fake_hub.py) are the local folder's:

  merge     zerotune merge --adapter s3://... and --adapter owner/name write byte for byte the
            folder the local adapter's merge writes
  cache     the download lands where models land (ZEROTUNE_CACHE/s3/<bucket>/<key>,
            ZEROTUNE_CACHE/hub/<owner>/<name>/<revision>), marked complete; a second use downloads
            nothing
  train     zerotune train --lora --adapter s3://... (and owner/name) starts from the adapter's
            tensors: every step's loss equals the local-adapter run's, and the first differs from a
            fresh --lora run's (whose B is zero)
  missing   a remote adapter without adapter_config.json: exit 1, one line naming the source and
            the file

  check_adapter_sources.py --zerotune BIN --workdir DIR --node-dir DIR
"""

import filecmp
import os
import shutil
import sys

from servers import Servers, base_env, http_json, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, metrics, write_random_adapter  # noqa: E402

report = Report(60)
check = report.check
S3_ADAPTER = "s3://zt-adapters/runs/1/epoch-0"


def same_folders(a, b):
    names = sorted(os.listdir(a))
    return names == sorted(os.listdir(b)) and all(
        filecmp.cmp(f"{a}/{n}", f"{b}/{n}", shallow=False) for n in names)


def merge(z, env, model, adapter, out):
    return run([z, "merge", "--base", model, "--adapter", adapter, "--out", out], env)


def train_losses(z, env, model, data, out, adapter_flags):
    r = run([z, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
             "--test_path", f"{data}/test.jsonl", "--special_token_path", f"{data}/tokens.json",
             "-bs", "4", "--ctx-len", "128", "--max-steps", "3", "--lr", "1e-2",
             "--output_dir", out, *adapter_flags], env)
    if r.returncode != 0:
        return r.stderr.strip()[-300:]
    return [m["loss"] for m in metrics(out) if m["type"] == "train"]


def check_source(z, env, w, name, source, model, local_merge, cache_dir, downloads):
    """merge from `source` equals the local merge; the download is cached in `cache_dir`;
    `downloads()` counts the server's requests, unchanged by a second merge."""
    r = merge(z, env, model, source, f"{w}/merged_{name}")
    check(r.returncode == 0 and same_folders(local_merge, f"{w}/merged_{name}"),
          f"{name}: merge equals the local adapter's, byte for byte", r.stderr.strip()[-200:])
    check(os.path.isfile(f"{cache_dir}/adapter_config.json") and
          os.path.isfile(f"{cache_dir}/adapter_model.safetensors") and
          "downloading" in r.stderr and cache_dir in r.stderr,
          f"{name}: downloaded into {os.path.relpath(cache_dir, w)}", r.stderr.strip()[-200:])
    before = downloads()
    r = merge(z, env, model, source, f"{w}/merged_{name}_again")
    check(r.returncode == 0 and "downloading" not in r.stderr and downloads() == before,
          f"{name}: a second merge downloads nothing", r.stderr.strip()[-200:])


def check_missing_config(z, env, model, w, name, source):
    r = merge(z, env, model, source, f"{w}/merged_missing_{name}")
    error = (r.stderr.strip().splitlines() or [""])[-1]  # after the download's progress line
    check(r.returncode == 1 and error.startswith("zerotune merge: error: ") and source in error and
          "adapter_config.json" in error and not os.path.exists(f"{w}/merged_missing_{name}"),
          f"{name}: no adapter_config.json is explained", error[-200:])


def main():
    args, z, w = check_args("--node-dir")
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "make a tiny model", str(e))
        return report.finish()
    adapter = write_random_adapter(model, f"{w}/adapter", seed=9,
                                   targets=("q_proj", "k_proj", "up_proj", "down_proj"))
    hub = f"{w}/hub"
    shutil.copytree(adapter, f"{hub}/org/adapter")
    os.makedirs(f"{hub}/org/noconfig")
    shutil.copy(f"{adapter}/adapter_model.safetensors", f"{hub}/org/noconfig/")
    cache = f"{w}/cache"
    local_env = base_env(ZEROTUNE_CACHE=cache)
    r = merge(z, local_env, model, adapter, f"{w}/merged_local")
    check(r.returncode == 0, "merge of the local adapter", r.stderr.strip()[-200:])
    local_losses = train_losses(z, local_env, model, data, f"{w}/train_local",
                                ["--adapter", adapter])
    fresh_losses = train_losses(z, local_env, model, data, f"{w}/train_fresh", ["--lora"])

    with Servers(w) as servers:
        try:
            s3 = servers.s3rver(args.node_dir, ["zt-adapters"])
            hub_url = servers.fake_hub(hub)
        except RuntimeError as e:
            check(False, "start servers", str(e))
            return report.finish()
        env = base_env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                       AWS_ENDPOINT_URL=s3, HF_ENDPOINT=hub_url, ZEROTUNE_CACHE=cache)
        r1 = run([z, "storage", "cp", adapter, S3_ADAPTER], env)
        r2 = run([z, "storage", "cp", f"{adapter}/adapter_model.safetensors",
                  "s3://zt-adapters/noconfig/adapter_model.safetensors"], env)
        check(r1.returncode == 0 and r2.returncode == 0, "upload the adapters to s3rver",
              (r1.stderr + r2.stderr).strip()[-200:])

        # s3rver keeps no request log: a download would rewrite the cached files and marker.
        s3_cache = f"{cache}/s3/zt-adapters/runs/1/epoch-0"
        check_source(z, env, w, "s3", S3_ADAPTER, model, f"{w}/merged_local", s3_cache,
                     lambda: [os.stat(p).st_mtime_ns for p in (
                         f"{s3_cache}.complete", f"{s3_cache}/adapter_model.safetensors")])
        check_source(z, env, w, "hub", "org/adapter", model, f"{w}/merged_local",
                     f"{cache}/hub/org/adapter/main", lambda: len(http_json(f"{hub_url}/__stats")))
        check_missing_config(z, env, model, w, "s3", "s3://zt-adapters/noconfig")
        check_missing_config(z, env, model, w, "hub", "org/noconfig")

        for name, source in (("s3", S3_ADAPTER), ("hub", "org/adapter")):
            losses = train_losses(z, env, model, data, f"{w}/train_{name}", ["--adapter", source])
            check(isinstance(losses, list) and len(losses) == 3 and losses == local_losses,
                  f"{name}: train --adapter losses == the local adapter's", f"{losses}")
    check(isinstance(local_losses, list) and isinstance(fresh_losses, list) and
          local_losses[0] != fresh_losses[0],
          "train --adapter starts from the adapter, not from B = 0",
          f"step 0: {local_losses[0] if local_losses else None} vs fresh "
          f"{fresh_losses[0] if fresh_losses else None}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
