#!/usr/bin/python3
"""A training run from an s3:// model to an s3:// output equals the same run on local folders,
file for file (metrics without timings), with `.complete` markers on the kept checkpoints and
keep-best deletions mirrored remotely; a failing upload fails the run, names the object and
keeps the local copy.

  check_train_s3.py --zerotune BIN --workdir DIR --node-dir DIR
"""

import filecmp
import json
import os
import sys

from servers import Servers, base_env, http_json, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model  # noqa: E402

report = Report(60)
check = report.check
TIME_FIELDS = {"tokens_per_s", "step_time_s", "train_time_s", "eval_time_s"}


# Files naming the run's own folders and times: compared with the run's local copy, not across runs.
RUN_FILES = ("metrics.jsonl", "report.html", "settings.json")


def files_of(root, skip=()):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if not any(rel == s or rel.startswith(s + "/") for s in skip):
                out.add(rel)
    return out


def metrics_without_times(path):
    with open(path) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIME_FIELDS}
                for line in f if line.strip()]


def main():
    args, z, w = check_args("--node-dir")
    try:
        data, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "make a tiny model", str(e))
        return report.finish()
    flags = ["--train_path", f"{data}/train.jsonl", "--test_path", f"{data}/test.jsonl",
             "--special_token_path", f"{data}/tokens.json", "-bs", "4",
             "--eval-batch-size-per-device", "8", "--lr", "3e-3", "--ctx-len", "192",
             "--warmup-steps", "2", "--seed", "7", "--packing", "--num-epochs", "3",
             "--num-checkpoints-to-keep", "2"]

    with Servers(w) as servers:
        try:
            endpoint = servers.s3rver(args.node_dir, ["zt-train"])
            fake = servers.fake_s3("AKIDZEROTUNETRAIN", "zt-train-secret-never-printed")
        except RuntimeError as e:
            check(False, "start servers", str(e))
            return report.finish()
        env = base_env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                       AWS_ENDPOINT_URL=endpoint, ZEROTUNE_CACHE=f"{w}/cache")
        r = run([z, "storage", "cp", model, "s3://zt-train/models/tiny"], env)
        check(r.returncode == 0, "upload the model", r.stderr.strip()[-200:])

        local = f"{w}/local_out"
        r_local = run([z, "train", "--model_name", model, "--output_dir", local, *flags], env)
        check(r_local.returncode == 0, "local run", r_local.stderr.strip()[-300:])
        staged = f"{w}/s3_local"
        r_s3 = run([z, "train", "--model_name", "s3://zt-train/models/tiny", "--output_dir",
                    "s3://zt-train/runs/r1", "--local-dir", staged, *flags], env)
        check(r_s3.returncode == 0, "s3:// model to s3:// output", r_s3.stderr.strip()[-300:])
        if r_local.returncode or r_s3.returncode:
            return report.finish()

        remote = f"{w}/remote"
        r = run([z, "storage", "cp", "s3://zt-train/runs/r1", remote], env)
        check(r.returncode == 0, "download the remote output", r.stderr.strip()[-200:])
        # memory.json (bytes per rank, peak RSS among them) stays local: it is not a result.
        local_files = files_of(local, skip=("train_state", "memory.json", *RUN_FILES))
        remote_files = files_of(remote, skip=RUN_FILES)
        markers = {f for f in remote_files if f.endswith("/.complete")}
        epochs_local = sorted(d for d in os.listdir(local) if d.startswith("epoch-"))
        epochs_remote = sorted(d for d in os.listdir(remote) if d.startswith("epoch-"))
        check(len(epochs_local) == 2 and epochs_remote == epochs_local,
              "keep-best: the same 2 of 3 epochs kept remotely", f"{epochs_remote} vs {epochs_local}")
        check(markers == {f"{e}/.complete" for e in epochs_local}, "a .complete marker per epoch",
              str(sorted(markers)))
        same = remote_files - markers == local_files and all(
            filecmp.cmp(f"{local}/{f}", f"{remote}/{f}", shallow=False) for f in local_files)
        check(same, "every remote checkpoint file equals the local run's, byte for byte",
              f"{len(local_files)} files; differ: {sorted(local_files ^ (remote_files - markers))}")
        check(metrics_without_times(f"{local}/metrics.jsonl") ==
              metrics_without_times(f"{remote}/metrics.jsonl"),
              "remote metrics.jsonl equals the local run's (timings aside)")
        staged_files = files_of(staged, skip=("train_state", "memory.json", *RUN_FILES))
        check(staged_files == local_files, "--local-dir holds the same checkpoints, nothing staged",
              str(sorted(staged_files ^ local_files)))
        check(all(filecmp.cmp(f"{staged}/{f}", f"{remote}/{f}", shallow=False)
                  for f in ("report.html", "settings.json")),
              "report.html and settings.json uploaded as the run wrote them last")
        check(os.path.isdir(f"{w}/cache/s3/zt-train/models/tiny"), "model cached under "
              "ZEROTUNE_CACHE")

        # Two ranks (mpirun, started by -nd): rank 0 alone uploads, from the default local
        # folder every rank shares; the result equals the same 2-rank run on a local folder.
        flags2 = [*flags, "-nd", "2", "--zero-stage", "3"]
        local2 = f"{w}/local_out2"
        r_l2 = run([z, "train", "--model_name", model, "--output_dir", local2, *flags2], env)
        env2 = dict(env, TMPDIR=f"{w}/tmp")
        os.makedirs(f"{w}/tmp")
        r_s2 = run([z, "train", "--model_name", "s3://zt-train/models/tiny", "--output_dir",
                    "s3://zt-train/runs/r2", *flags2], env2)
        r = run([z, "storage", "cp", "s3://zt-train/runs/r2", f"{w}/remote2"], env)
        if r_l2.returncode == 0 and r_s2.returncode == 0 and r.returncode == 0:
            want = files_of(local2, skip=("train_state", "memory.json", *RUN_FILES))
            got = files_of(f"{w}/remote2", skip=RUN_FILES)
            got_markers = {f for f in got if f.endswith("/.complete")}
            same = got - got_markers == want and len(got_markers) == 2 and all(
                filecmp.cmp(f"{local2}/{f}", f"{w}/remote2/{f}", shallow=False) for f in want)
            uploads = r_s2.stderr.count("zerotune: uploaded s3://zt-train/runs/r2/")
            shared = [d for d in os.listdir(f"{w}/tmp") if d.startswith("zerotune-output-")]
            check(same and uploads == 3 and len(shared) == 1,
                  "2 ranks: s3:// output equals the local 2-rank run, uploaded once",
                  f"{uploads} uploads, local folders {shared}; differ {sorted(want ^ (got - got_markers))}")
        else:
            check(False, "2 ranks: s3:// output equals the local 2-rank run",
                  (r_l2.stderr + r_s2.stderr + r.stderr).strip()[-300:])

        r = run([z, "train", "--model_name", model, "--output_dir", "s3://zt-train/runs/r1",
                  "--local-dir", f"{w}/again", *flags], env)
        r2 = run([z, "storage", "ls", "s3://zt-train/runs/r1/"], env)
        check(r.returncode != 0 and "already holds a run" in r.stderr
              and len(r2.stdout.splitlines()) == len(remote_files) + len(RUN_FILES),
              "a new run into a used s3:// output is refused, nothing touched",
              r.stderr.strip()[-200:])

        r = run([z, "train", "--model_name", model, "--output_dir", f"{w}/plain",
                 "--local-dir", f"{w}/x", *flags], env)
        check(r.returncode != 0 and "--local-dir needs an s3://" in r.stderr,
              "--local-dir with a local --output_dir refused", r.stderr.strip()[-160:])
        r = run([z, "train", "--model_name", f"{w}/no/such/model", "--output_dir", f"{w}/plain",
                 *flags], env)
        check(r.returncode != 0 and "no such folder" in r.stderr and not os.path.exists(
            f"{w}/plain"), "a missing model folder is refused before any work",
            r.stderr.strip()[-160:])

        # A failing upload: retried, then the run fails naming the object; local copy kept.
        http_json(f"{fake}/__faults", data=json.dumps([
            {"method": "PUT", "match": "epoch-1/model.safetensors", "action": "500",
             "count": -1}]).encode())
        fenv = base_env(AWS_ACCESS_KEY_ID="AKIDZEROTUNETRAIN",
                        AWS_SECRET_ACCESS_KEY="zt-train-secret-never-printed",
                        AWS_ENDPOINT_URL=fake, ZEROTUNE_STORAGE_RETRIES=2)
        failing = f"{w}/failing_local"
        r = run([z, "train", "--model_name", model, "--output_dir", "s3://zt-bucket/runs/f",
                 "--local-dir", failing, *flags[:-2]], fenv)
        keys = set(http_json(f"{fake}/__stats")["keys"])
        check(r.returncode != 0 and "s3://zt-bucket/runs/f/epoch-1/model.safetensors" in r.stderr
              and "HTTP 500" in r.stderr, "a failed upload fails the run, naming the object",
              r.stderr.strip().splitlines()[-1][:200] if r.stderr.strip() else "")
        check("runs/f/epoch-0/.complete" in keys and "runs/f/epoch-2/.complete" in keys and
              "runs/f/epoch-1/.complete" not in keys, "only complete uploads get a marker",
              str(sorted(k for k in keys if k.endswith(".complete"))))
        check(os.path.exists(f"{failing}/epoch-1/model.safetensors"),
              "the local copy of the failed upload is kept")
        check("zt-train-secret-never-printed" not in r.stdout + r.stderr, "no secret printed")
        s = http_json(f"{fake}/__stats")
        check(not s["sig_bad"], "training's requests carry botocore-equal signatures",
              f"{s['sig_ok']} verified")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
