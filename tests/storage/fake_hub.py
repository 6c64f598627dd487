#!/usr/bin/python3
"""A local HTTP server laid out like the Hugging Face Hub, for tests.

  fake_hub.py --root DIR --port-file FILE [--gated owner/name=TOKEN ...]
              [--drop-first owner/name/FILE] [--corrupt owner/name/FILE]

Serves DIR/<owner>/<name>/<file> at /<owner>/<name>/resolve/<revision>/<file>. Like the Hub,
.safetensors files answer with a redirect to /cdn/... carrying X-Linked-Etag (sha256) and
X-Linked-Size; other files answer directly with the git blob id as ETag. Ranges are honoured.
Gated repos need "Authorization: Bearer TOKEN" (401 otherwise). --drop-first: the first GET of
that file sends half the bytes and closes the connection. --corrupt: that file's bytes are
altered while its hashes stay those of the original. GET /__stats returns the request log.
"""

import argparse
import hashlib
import json
import os
import sys
import threading
import urllib.parse

from fake_http import QuietHandler, serve

ARGS = None
LOCK = threading.Lock()
LOG = []
DROPPED = set()


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(QuietHandler):
    def do_GET(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path == "/__stats":
            with LOCK:
                return self.reply(200, json.dumps(LOG).encode())
        with LOCK:
            LOG.append({"path": path, "range": self.headers.get("Range"),
                        "auth": bool(self.headers.get("Authorization"))})
        if path.startswith("/cdn/"):
            return self.serve_file(path[len("/cdn/"):], lfs=True)
        parts = path.lstrip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self.reply(404, b"not found")
        repo, file_name = "/".join(parts[:2]), "/".join(parts[4:])
        token = dict(g.split("=", 1) for g in ARGS.gated).get(repo)
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            return self.reply(401, b"gated repo")
        full = os.path.join(ARGS.root, repo, file_name)
        if not os.path.isfile(full):
            return self.reply(404, b"Entry not found")
        if file_name.endswith(".safetensors"):
            data = open(full, "rb").read()
            return self.reply(302, b"", {
                "Location": f"/cdn/{repo}/{file_name}",
                "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_id(b"lfs pointer")}"'})
        return self.serve_file(f"{repo}/{file_name}", lfs=False)

    def serve_file(self, rel, lfs):
        full = os.path.join(ARGS.root, rel)
        if not os.path.isfile(full):
            return self.reply(404, b"Entry not found")
        data = open(full, "rb").read()
        etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_id(data)
        name = rel  # owner/name/file
        if name in ARGS.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        headers = {"ETag": f'"{etag}"'}
        status, start = 200, 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        payload = data[start:]
        with LOCK:
            drop = name in ARGS.drop_first and name not in DROPPED
            DROPPED.add(name)
        if drop:
            self.reply_truncated(status, payload, headers)
            return None
        return self.reply(status, payload, headers)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--gated", action="append", default=[])
    ap.add_argument("--drop-first", action="append", default=[])
    ap.add_argument("--corrupt", action="append", default=[])
    ARGS = ap.parse_args()
    serve(Handler, ARGS.port_file)


if __name__ == "__main__":
    sys.exit(main())
