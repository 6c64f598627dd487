"""Starting and stopping the loopback servers the storage checks use, and running zerotune with
an environment that names them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def _wait_port_file(path, proc, what):
    for _ in range(300):
        if os.path.exists(path):
            return int(open(path).read())
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within 15 s")


def _wait_connect(port, proc, what):
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} within 20 s")


class Servers:
    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def _spawn(self, cmd, log_name, env=None):
        log = open(os.path.join(self.workdir, log_name), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def s3rver(self, node_dir, buckets):
        """s3rver from `node_dir`/node_modules (installed by the storage.npm_install test)."""
        bin_path = os.path.join(node_dir, "node_modules", ".bin", "s3rver")
        if not os.path.exists(bin_path):
            raise RuntimeError(f"{bin_path} missing: the storage.npm_install test did not run or "
                               "failed (npm ci of tests/storage/package-lock.json)")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        data = os.path.join(self.workdir, "s3rver-data")
        os.makedirs(data, exist_ok=True)
        cmd = [bin_path, "-d", data, "-a", "127.0.0.1", "-p", str(port), "--silent"]
        for b in buckets:
            cmd += ["--configure-bucket", b]
        # s3rver encrypts continuation tokens with DES, which Node 17+ (OpenSSL 3) only offers
        # through the legacy provider; without it every listing past one page fails with a 500.
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        p = self._spawn(cmd, "s3rver.log", env)
        _wait_connect(port, p, "s3rver")
        return f"http://127.0.0.1:{port}"

    def fake_s3(self, access_key, secret_key, session_token=""):
        port_file = os.path.join(self.workdir, "fake_s3.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        cmd = [sys.executable, os.path.join(HERE, "fake_s3.py"), "--port-file", port_file,
               "--access-key", access_key, "--secret-key", secret_key]
        if session_token:
            cmd += ["--session-token", session_token]
        p = self._spawn(cmd, "fake_s3.log")
        return f"http://127.0.0.1:{_wait_port_file(port_file, p, 'fake_s3.py')}"

    def fake_hub(self, root, extra=()):
        port_file = os.path.join(self.workdir, "fake_hub.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        cmd = [sys.executable, os.path.join(HERE, "fake_hub.py"), "--root", root,
               "--port-file", port_file, *extra]
        p = self._spawn(cmd, "fake_hub.log")
        return f"http://127.0.0.1:{_wait_port_file(port_file, p, 'fake_hub.py')}"


def http_json(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def base_env(**extra):
    """The environment without any AWS/HF settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "HF_", "ZEROTUNE_"))}
    env.update({"ZEROTUNE_STORAGE_RETRY_BASE_MS": "20", "OMP_NUM_THREADS": "2"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, env, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
