"""ZeRO data parallelism over MPI, end to end through `zerotune train`:

- N ranks x per-rank batch b == 1 rank x batch N*b, step for step (losses, gradient norms, eval
  loss within 1e-5 relative; final weights close), for stages 0-3 and N in {2, 3, 4} (3 gives
  uneven shards), with gradient accumulation and with the optimizer offloaded (cpu, nvme);
- memory: per-rank parameter + gradient + optimizer + gather-slot bytes at N=4, stage 3 are at
  most 1/3 of one rank's on a model whose optimizer state dominates;
- resume with the same and with another rank count equals an uninterrupted run;
- a killed rank and a hung rank end the job within a bound, naming the rank, and leave the last
  complete checkpoint intact.

  check_zero.py --zerotune BIN --workdir DIR [--quick]

Ends with `N passed, M failed`; exits 1 when anything failed.
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, metrics, tree_digest  # noqa: E402

report = Report(62)
check = report.check

ENV = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE",
           OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def run(cmd, timeout=600):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def mpi(n, cmd):
    return ["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none"] + cmd


def curve(out):
    """(step losses, grad norms, eval losses) of a run."""
    m = metrics(out)
    train = [r for r in m if r["type"] == "train"]
    return ([r["loss"] for r in train], [r["grad_norm"] for r in train],
            [r["eval_loss"] for r in m if r["type"] == "eval"])


def rel_diff(a, b):
    if len(a) != len(b) or not a:
        return float("inf")
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


def read_safetensors_f32(path):
    """{name: list of floats} of an F32 safetensors file (no numpy needed)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = struct.unpack(f"<{(end - b) // 4}f", data[b:end])
    return out


def weights_diff(a_dir, b_dir):
    a = read_safetensors_f32(os.path.join(a_dir, "model.safetensors"))
    b = read_safetensors_f32(os.path.join(b_dir, "model.safetensors"))
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for k in a:
        scale = max(max(abs(x) for x in b[k]), 1e-12)
        worst = max(worst, max(abs(x - y) for x, y in zip(a[k], b[k])) / scale)
    return worst


def rank_pids(marker):
    """{rank: pid} of the zerotune processes whose command line contains `marker`."""
    pids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if not cmd or not cmd[0].endswith(b"zerotune") or marker.encode() not in b" ".join(cmd):
            continue
        if b"OMPI_COMM_WORLD_RANK" in env:
            pids[int(env[b"OMPI_COMM_WORLD_RANK"])] = int(pid)
    return pids


def main():
    _, z, w = check_args()
    if shutil.which("mpirun") is None:
        check(False, "mpirun available", "install openmpi-bin (scripts/setup.sh)")
        return report.finish()
    data, tok, model, big = f"{w}/data", f"{w}/tok", f"{w}/model", f"{w}/big"
    for cmd in ([z, "data", "synth", "--out", data, "--train", "24", "--test", "10", "--seed", "3"],
                [z, "tokenizer", "train", "--input", f"{data}/train.jsonl", "--vocab-size", "400",
                 "--out", tok, "--special_token_path", f"{data}/tokens.json"],
                # 3 layers; vocabulary grown by the added tokens on load (resize while sharded)
                [z, "init", "--out", model, "--preset", "tiny", "--dim", "48", "--n-layers", "3",
                 "--n-heads", "4", "--n-kv-heads", "2", "--hidden", "100", "--tokenizer", tok,
                 "--max-positions", "256", "--save-dtype", "f32"],
                # parameters dominate: 16 layers of 256, a small vocabulary
                [z, "init", "--out", big, "--preset", "tiny", "--dim", "256", "--n-layers", "16",
                 "--n-heads", "4", "--n-kv-heads", "4", "--hidden", "688", "--tokenizer", tok,
                 "--max-positions", "64", "--save-dtype", "f32"]):
        r = run(cmd)
        if r.returncode != 0:
            check(False, "setup", f"{' '.join(map(str, cmd))}: {r.stderr.strip()[-300:]}")
            return report.finish()

    base = [z, "train", "--model_name", model, "--train_path", f"{data}/train.jsonl",
            "--test_path", f"{data}/test.jsonl", "--special_token_path", f"{data}/tokens.json",
            "--eval-batch-size-per-device", "3", "--lr", "3e-3", "--ctx-len", "160",
            "--warmup-steps", "2", "--seed", "5", "--pad-to-longest", "--save-dtype", "f32",
            "--param-persistence-threshold", "0", "--num-epochs", "2", "--mx", "no"]

    def train(out, ranks, extra):
        cmd = base + ["--output_dir", out] + extra
        return run(mpi(ranks, cmd) if ranks > 1 else cmd)

    def compare(name, out, ref, r):
        if r.returncode != 0:
            check(False, name, r.stderr.strip()[-400:])
            return
        lo, gn, ev = curve(out)
        rlo, rgn, rev = curve(ref)
        d = max(rel_diff(lo, rlo), rel_diff(gn, rgn), rel_diff(ev, rev))
        wd = weights_diff(f"{out}/epoch-1", f"{ref}/epoch-1")
        check(d <= 1e-5 and wd <= 1e-4, name,
              f"{len(lo)} steps: loss/grad-norm/eval max rel diff {d:.2e} (tol 1e-5), "
              f"weights {wd:.2e} (tol 1e-4)")

    # 1. Equivalence: N ranks x b == 1 rank x N*b, every stage.
    b = 2
    for n in (2, 3, 4):
        ref = f"{w}/ref{n}"
        r = train(ref, 1, ["-bs", str(n * b)])
        if not check(r.returncode == 0, f"1 rank, batch {n * b}", r.stderr.strip()[-300:]):
            continue
        for stage in (0, 1, 2, 3):
            out = f"{w}/n{n}s{stage}"
            r = train(out, n, ["-bs", str(b), "--zero-stage", str(stage)])
            compare(f"{n} ranks x {b}, stage {stage} == 1 rank x {n * b}", out, ref, r)

    # Gradient accumulation, offloaded optimizer, a DeepSpeed config.
    ref = f"{w}/ref_accum"
    r = train(ref, 1, ["-bs", "4", "--grad_accum", "2"])
    for stage in (1, 3):
        out = f"{w}/accum_s{stage}"
        r2 = train(out, 2, ["-bs", "2", "--grad_accum", "2", "--zero-stage", str(stage)])
        compare(f"2 ranks x 2 x accum 2, stage {stage} == 1 rank x 4 x accum 2", out, ref, r2)
    out = f"{w}/off_cpu"
    r = train(out, 2, ["-bs", "2", "--zero-stage", "3", "--offload-optimizer", "cpu"])
    compare("2 ranks, stage 3, --offload-optimizer cpu", out, f"{w}/ref2", r)
    for n, stage in ((3, 3), (2, 1)):
        out = f"{w}/off_nvme{n}{stage}"
        r = train(out, n, ["-bs", "2", "--zero-stage", str(stage), "--offload-optimizer", "nvme",
                           "--nvme-path", f"{w}/nvme{n}{stage}"])
        compare(f"{n} ranks, stage {stage}, --offload-optimizer nvme", out, f"{w}/ref{n}", r)
        left = os.listdir(f"{w}/nvme{n}{stage}") if os.path.isdir(f"{w}/nvme{n}{stage}") else []
        check(left == [], "  nvme state files removed at the end", str(left))
    # The GPU's engine paths on CPU ranks: an f32 master apart from the compute copy, rounded
    # into it after each update, and AdamW on the host thread overlapping the next forward.
    ENV["ZEROTUNE_ZERO_PATHS"] = "separate-master,host-thread"
    for n, stage, offload in ((3, 3, "cpu"), (2, 1, "cpu"), (2, 2, "nvme"), (2, 3, "none")):
        out = f"{w}/gpu_paths{n}{stage}{offload}"
        extra = ["--nvme-path", f"{w}/nvme_gp"] if offload == "nvme" else []
        r = train(out, n, ["-bs", "2", "--zero-stage", str(stage), "--offload-optimizer", offload]
                  + extra)
        compare(f"{n} ranks, stage {stage}, offload {offload}, GPU engine paths", out,
                f"{w}/ref{n}", r)
    del ENV["ZEROTUNE_ZERO_PATHS"]
    ds = f"{w}/ds.json"
    with open(ds, "w") as f:
        json.dump({"train_micro_batch_size_per_gpu": 2, "zero_optimization": {
            "stage": 2, "offload_optimizer": {"device": "cpu"}}}, f)
    out = f"{w}/ds"
    r = train(out, 3, ["--ds-config", ds])
    compare("3 ranks from --ds-config (stage 2, optimizer on cpu)", out, f"{w}/ref3", r)
    # Messages split into pieces (as above 2^30 elements), here at 777 elements.
    out = f"{w}/split_msgs"
    ENV["ZEROTUNE_MAX_MESSAGE_ELEMENTS"] = "777"
    r = train(out, 3, ["-bs", "2", "--zero-stage", "3"])
    r0 = train(f"{w}/split_msgs0", 3, ["-bs", "2", "--zero-stage", "0"])
    del ENV["ZEROTUNE_MAX_MESSAGE_ELEMENTS"]
    compare("3 ranks, stage 3, messages split at 777 elements", out, f"{w}/ref3", r)
    compare("3 ranks, stage 0, messages split at 777 elements", f"{w}/split_msgs0", f"{w}/ref3", r0)
    # -nd N starts mpirun itself.
    out = f"{w}/nd"
    r = run(base + ["--output_dir", out, "-bs", "2", "-nd", "2"])
    compare("-nd 2 without mpirun == 1 rank x 4", out, f"{w}/ref2", r)

    # scripts/run_llama.sh: the old job's per-size settings (dry run: the command it would launch).
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "run_llama.sh")
    env = dict(ENV, ZEROTUNE=z, DATA_DIR=data, OUTPUT_DIR=f"{w}/runs", MODEL=model)
    for size, want in (("7b", ["-np 16", "-bs 16", "--zero-stage 3", "--offload-optimizer none"]),
                       ("13b", ["-np 16", "-bs 16"]),
                       ("70b", ["-np 32", "-bs 8", "--offload-optimizer nvme", "--nvme-path"])):
        r = subprocess.run(["bash", script, "--size", size, "--dry-run", "--as-test"],
                           capture_output=True, text=True, env=env)
        missing = [x for x in want + ["--as-test", "--ctx-len 512"] if x not in r.stderr]
        check(r.returncode == 0 and not missing, f"run_llama.sh --size {size}: the job's settings",
              f"missing {missing}" if missing else r.stderr.strip().splitlines()[-1][:90])
    r = subprocess.run(["bash", script, "--size", "9b"], capture_output=True, text=True, env=env)
    check(r.returncode == 2 and "7b, 13b or 70b" in r.stderr, "run_llama.sh refuses --size 9b",
          r.stderr.strip())

    # 2. Memory at N=4, stage 3 vs one rank.
    mem = {}
    for n, stage in ((1, 0), (4, 3), (4, 0)):
        out = f"{w}/mem{n}s{stage}"
        cmd = [z, "train", "--model_name", big, "--train_path", f"{data}/train.jsonl",
               "--test_path", f"{data}/test.jsonl", "--output_dir", out, "-bs", "1",
               "--ctx-len", "32", "--max-steps", "1", "--as-test", "--zero-stage", str(stage),
               "--param-persistence-threshold", "0", "--mx", "no"]
        r = run(mpi(n, cmd) if n > 1 else cmd)
        if r.returncode != 0:
            check(False, f"memory run {n} ranks stage {stage}", r.stderr.strip()[-300:])
            return report.finish()
        with open(f"{out}/memory.json") as f:
            m = json.load(f)
        held = m["held_bytes"]
        check(all(h == sum(m[k][i] for k in ("params_bytes", "master_bytes", "grads_bytes",
                                             "host_grads_bytes", "optimizer_bytes", "slot_bytes",
                                             "staging_bytes"))
                  for i, h in enumerate(held)),
              f"memory.json of {n} ranks stage {stage}: held_bytes is the sum of its parts")
        mem[(n, stage)] = (max(held), max(m["peak_rss_bytes"]))
    one, four3, four0 = mem[(1, 0)], mem[(4, 3)], mem[(4, 0)]
    check(four3[0] <= one[0] / 3, "4 ranks stage 3 hold <= 1/3 of 1 rank's bytes",
          f"{four3[0] / 2**20:.1f} MiB vs {one[0] / 2**20:.1f} MiB ({four3[0] / one[0]:.2f}); "
          f"peak RSS {four3[1] / 2**20:.0f} vs {one[1] / 2**20:.0f} MiB")
    check(four0[0] >= one[0] * 0.99, "4 ranks stage 0 hold everything (control)",
          f"{four0[0] / 2**20:.1f} MiB")

    # 3. Resume: same rank count (bit for bit) and another rank count (global batch kept).
    full = f"{w}/res_full"
    r = train(full, 2, ["-bs", "3", "--num-epochs", "3"])
    split = f"{w}/res_same"
    r1 = train(split, 2, ["-bs", "3", "--num-epochs", "3", "--stop-after-epochs", "1"])
    r2 = train(split, 2, ["-bs", "3", "--num-epochs", "3", "--resume"])
    ok = r.returncode == 0 and r1.returncode == 0 and r2.returncode == 0
    check(ok and curve(split) == curve(full) and
          tree_digest(f"{split}/epoch-2") == tree_digest(f"{full}/epoch-2"),
          "resume on 2 ranks == uninterrupted 2 ranks, bit for bit", (r2.stderr or r1.stderr)[-300:] if not ok else "")
    other = f"{w}/res_other"
    r1 = train(other, 2, ["-bs", "3", "--num-epochs", "3", "--stop-after-epochs", "1"])
    r2 = train(other, 3, ["-bs", "2", "--num-epochs", "3", "--resume", "--zero-stage", "2"])
    ok = r1.returncode == 0 and r2.returncode == 0 and "re-partitioned" in r2.stderr
    if ok:
        lo, gn, ev = curve(other)
        flo, fgn, fev = curve(full)
        d = max(rel_diff(lo, flo), rel_diff(gn, fgn), rel_diff(ev, fev))
        wd = weights_diff(f"{other}/epoch-2", f"{full}/epoch-2")
        check(d <= 1e-5 and wd <= 1e-4, "resume 2 ranks (stage 3) on 3 ranks (stage 2) == uninterrupted",
              f"max rel diff {d:.2e}, weights {wd:.2e}")
    else:
        check(False, "resume 2 ranks on 3 ranks", (r2.stderr or r1.stderr)[-300:])
    # The same with the GPU's engine paths (separate master, host thread), bit for bit with the
    # uninterrupted run, and the state they write readable by the default paths.
    ENV["ZEROTUNE_ZERO_PATHS"] = "separate-master,host-thread"
    gp = f"{w}/res_gpu_paths"
    r1 = train(gp, 2, ["-bs", "3", "--num-epochs", "3", "--stop-after-epochs", "1",
                       "--offload-optimizer", "cpu"])
    r2 = train(gp, 2, ["-bs", "3", "--num-epochs", "3", "--resume", "--offload-optimizer", "cpu"])
    del ENV["ZEROTUNE_ZERO_PATHS"]
    ok = r1.returncode == 0 and r2.returncode == 0
    check(ok and curve(gp) == curve(full) and
          tree_digest(f"{gp}/epoch-2") == tree_digest(f"{full}/epoch-2"),
          "resume with the GPU engine paths == uninterrupted 2 ranks, bit for bit",
          (r2.stderr or r1.stderr)[-300:] if not ok else "")

    # 4. Failures: a killed rank, a hung rank.
    for how in ("kill", "hang"):
        out = f"{w}/fail_{how}"
        cmd = mpi(2, base + ["--output_dir", out, "-bs", "2", "--num-epochs", "400",
                             "--collective-timeout", "4"])
        proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(f"{out}/epoch-1/config.json"):
            time.sleep(0.05)
        pids = rank_pids(out)
        digest = tree_digest(f"{out}/epoch-0") if os.path.exists(f"{out}/epoch-0") else None
        if 1 not in pids or digest is None:
            proc.kill()
            check(False, f"{how}: the run saved two epochs with 2 ranks", str(pids))
            continue
        t0 = time.time()
        os.kill(pids[1], signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            err = "still running after 60 s\n" + err
        finally:
            try:
                os.kill(pids[1], signal.SIGKILL)
            except ProcessLookupError:
                pass
        elapsed = time.time() - t0
        if how == "kill":
            named = "rank 1" in err
        else:
            named = "rank(s) 1 never arrived" in err
        lines = [ln for ln in err.splitlines() if "rank" in ln and ("never" in ln or "noticed" in ln)]
        check(proc.returncode != 0 and elapsed < 60 and named,
              f"a {'killed' if how == 'kill' else 'hung (SIGSTOP)'} rank ends the job, naming it",
              f"exit {proc.returncode} after {elapsed:.1f} s: {lines[0].strip()[:150] if lines else err[-300:]}")
        check(tree_digest(f"{out}/epoch-0") == digest and os.path.exists(f"{out}/train_state/state.json"),
              f"  {how}: epoch-0 and the training state are intact")

    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
