#!/usr/bin/python3
"""Model download progress from a Hub-like server on loopback (fake_hub.py): with stderr on a
terminal (a pseudo-terminal here) the large file's download redraws one line in place with its
bytes and rate, ending at the file's full size; with stderr a pipe no progress is printed.

  check_download_progress.py --zerotune BIN --workdir DIR

Ends with `N passed, M failed`; exits 1 when anything failed.
"""

import os
import re
import select
import shutil
import subprocess
import sys

from servers import Servers, base_env, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model  # noqa: E402

report = Report(60)
check = report.check
# Large enough that its download outlasts the first redraw (a quarter second) on loopback.
BIG_BYTES = 300_000_000


def run_on_terminal(cmd, env):
    """(exit status, what the command wrote to its terminal) with stdout and stderr on a pty."""
    leader, follower = os.openpty()
    p = subprocess.Popen(cmd, env=env, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            p.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the pty closes when the command ends
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return p.wait(), out.decode(errors="replace")


def main():
    _, z, w = check_args()
    try:
        _, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "make a tiny model", str(e))
        return report.finish()
    root = f"{w}/hub"
    shutil.copytree(model, f"{root}/org/big")
    with open(f"{root}/org/big/model.safetensors", "wb") as f:
        f.truncate(BIG_BYTES)  # the server hashes and sends whatever the file holds
    shutil.copytree(f"{root}/org/big", f"{root}/org/piped")
    with Servers(w) as servers:
        try:
            endpoint = servers.fake_hub(root)
        except RuntimeError as e:
            check(False, "start the Hub server", str(e))
            return report.finish()
        env = base_env(HF_ENDPOINT=endpoint, ZEROTUNE_CACHE=f"{w}/cache")
        status, shown = run_on_terminal([z, "storage", "fetch", "org/big"], env)
        check(status == 0, "fetch on a terminal", shown.strip()[-200:] if status else "")
        size = r"([0-9.]+ [KMG]?i?B)"
        lines = re.findall(rf"\rmodel\.safetensors: {size}, {size}/s", shown)
        full = f"{BIG_BYTES / 2**20:.2f} MiB"
        check(len(lines) >= 2 and lines[-1][0] == full,
              "the progress line is redrawn in place, ending at the full size",
              f"{len(lines)} redraws, last {lines[-1] if lines else None}, want {full}")
        check(not re.search(r"config\.json: ", shown), "small files show no progress")
        r = run([z, "storage", "fetch", "org/piped"], env)
        check(r.returncode == 0 and not re.search(r"B/s", r.stderr) and "\r" not in r.stderr,
              "no progress when stderr is not a terminal", "" if r.returncode else r.stderr[-200:])
    shutil.rmtree(f"{w}/hub", ignore_errors=True)
    shutil.rmtree(f"{w}/cache", ignore_errors=True)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
