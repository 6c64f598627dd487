"""Starting `zerotune serve` on loopback for the checks, and talking HTTP to it with the standard
library: plain requests, raw bytes, Server-Sent Event streams, and the /metrics counters."""

import http.client
import json
import os
import re
import signal
import subprocess
import time

STARTUP_SECONDS = 180  # loading a model on a busy 2-core machine


class Server:
    """`zerotune serve --model DIR --host 127.0.0.1 --port 0 ...`, its log in WORKDIR/NAME.log.
    Use as a context manager: the process is stopped on the way out whatever happened."""

    def __init__(self, z, workdir, name, model, extra=()):
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        cmd = [z, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._wait_listening()
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_listening(self):
        deadline = time.time() + STARTUP_SECONDS
        while time.time() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_text())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"zerotune serve exited with {self.proc.returncode} before "
                                   f"listening: {self.log_text().strip()[-400:]}")
            time.sleep(0.1)
        raise RuntimeError(f"zerotune serve did not listen within {STARTUP_SECONDS} s")

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.terminate()
        if self.wait(30) is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def request(port, method, path, body=None, headers=None, timeout=300):
    """(status, headers dict lower-cased, body bytes). `body`: bytes, or an object sent as JSON."""
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post_json(port, path, body, headers=None):
    """(status, parsed JSON reply)."""
    status, _, data = request(port, "POST", path, body, headers)
    return status, json.loads(data)


def raw_exchange(port, data, timeout=30):
    """Sends raw bytes; returns the reply's head and body (by its Content-Length), or what came
    before the server closed."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        reply = b""
        while True:
            head, sep, body = reply.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                if m and len(body) >= int(m.group(1)):
                    return reply
            chunk = s.recv(65536)
            if not chunk:
                return reply
            reply += chunk


def parse_events(body):
    """The `data:` payloads of a Server-Sent Event body, in order ("[DONE]" kept as a string)."""
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = block.split("\n")
        if len(lines) != 1 or not lines[0].startswith("data: "):
            raise ValueError(f"not a single data line: {block!r}")
        payload = lines[0][len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def stream(port, path, body, headers=None):
    """(status, content type, events) of a streamed request."""
    status, h, data = request(port, "POST", path, dict(body, stream=True), headers)
    if status != 200:
        return status, h.get("content-type", ""), json.loads(data)
    return status, h.get("content-type", ""), parse_events(data)


def streamed_text(events, key="text"):
    """Per choice index: (concatenated text, finish reason) of a stream's chunks."""
    out = {}
    for e in events:
        if e == "[DONE]" or "error" in e:
            continue
        for c in e["choices"]:
            text, finish = out.get(c["index"], ("", None))
            piece = c.get("delta", {}).get("content") if key == "content" else c.get("text")
            out[c["index"]] = (text + (piece or ""), c.get("finish_reason") or finish)
    return out


def metrics(port):
    """The /metrics counters as {name: int}."""
    _, _, data = request(port, "GET", "/metrics")
    values = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split()
            values[name] = int(value)
    return values
