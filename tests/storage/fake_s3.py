#!/usr/bin/python3
"""A small in-memory S3 API server for tests: path-style buckets, PUT/GET (ranges)/HEAD/DELETE,
ListObjectsV2 with pagination, multipart uploads. Unlike s3rver it verifies every request's
SigV4 signature by re-signing it with botocore and comparing the Authorization header byte for
byte, and it injects faults on request.

  fake_s3.py --port-file FILE --access-key K --secret-key S [--session-token T]

Control endpoints (unsigned): POST /__faults with a JSON list of
  {"method": "PUT", "match": "substring of the path+query", "action": "500|503|429|drop|truncate",
   "count": N}
(count -1: forever), GET /__stats for the request log and signature counts, POST /__reset.
"""

import argparse
import base64
import datetime
import hashlib
import json
import sys
import threading
import urllib.parse

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fake_http import QuietHandler, serve

_SIGN_LOCK = threading.Lock()
_FIXED_NOW = [None]


class _FixedDateTime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return _FIXED_NOW[0]


botocore.auth.datetime.datetime = _FixedDateTime


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.objects = {}  # (bucket, key) -> bytes, etag
        self.uploads = {}  # upload id -> {"bucket", "key", "parts": {n: bytes}}
        self.faults = []
        self.log = []
        self.sig_ok = 0
        self.sig_bad = []
        self.next_upload = 1


STATE = State()
ARGS = None


def botocore_authorization(method, url, headers, body, amz_date):
    creds = Credentials(ARGS.access_key, ARGS.secret_key, ARGS.session_token or None)
    with _SIGN_LOCK:
        _FIXED_NOW[0] = _FixedDateTime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        request = AWSRequest(method=method, url=url, headers=headers, data=body)
        botocore.auth.S3SigV4Auth(creds, "s3", ARGS.region).add_auth(request)
        return request.headers["Authorization"]


class Handler(QuietHandler):
    def error(self, status, code, message=""):
        body = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message>"
                "</Error>").encode()
        self.reply(status, body, {"Content-Type": "application/xml"})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def take_fault(self):
        target = self.path
        with STATE.lock:
            for f in STATE.faults:
                if f["count"] != 0 and f.get("method", self.command) == self.command \
                        and f["match"] in target:
                    if f["count"] > 0:
                        f["count"] -= 1
                    return f["action"]
        return None

    def verify_signature(self, body):
        auth = self.headers.get("Authorization", "")
        signed = ""
        for part in auth.split(", "):
            if part.startswith("SignedHeaders="):
                signed = part[len("SignedHeaders="):]
        names = signed.split(";") if signed else []
        headers = {}
        for name in names:
            value = self.headers.get(name)
            if value is None:
                return f"signed header {name} missing"
            headers[name] = value
        if "x-amz-content-sha256" not in names or "host" not in names:
            return "host or x-amz-content-sha256 not signed"
        amz_date = self.headers.get("x-amz-date", "")
        url = "http://" + self.headers["Host"] + self.path
        try:
            expected = botocore_authorization(self.command, url, headers, body, amz_date)
        except Exception as e:  # noqa: BLE001 - any failure is a mismatch
            return f"cannot re-sign: {e}"
        if expected != auth:
            return f"expected {expected!r}, got {auth!r}"
        return None

    def handle_any(self):
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path.startswith("/__"):
            return self.control(parsed.path)
        body = self.read_body() if self.command in ("PUT", "POST") else b""
        entry = {"method": self.command, "path": self.path, "range": self.headers.get("Range")}
        mismatch = self.verify_signature(body)
        with STATE.lock:
            STATE.log.append(entry)
            if mismatch:
                STATE.sig_bad.append(f"{self.command} {self.path}: {mismatch}")
            else:
                STATE.sig_ok += 1
        if mismatch:
            entry["status"] = 403
            return self.error(403, "SignatureDoesNotMatch", "signature mismatch")
        fault = self.take_fault()
        entry["fault"] = fault
        if fault in ("500", "503", "429"):
            entry["status"] = int(fault)
            return self.error(int(fault), "InternalError" if fault == "500" else "SlowDown")
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        parts = urllib.parse.unquote(parsed.path).lstrip("/").split("/", 1)
        bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
        return self.s3(bucket, key, query, body, fault, entry)

    def control(self, path):
        if path == "/__faults":
            with STATE.lock:
                STATE.faults.extend(json.loads(self.read_body() or b"[]"))
            return self.reply(200, b"{}")
        if path == "/__reset":
            self.read_body()
            with STATE.lock:
                STATE.faults.clear()
                STATE.log.clear()
                STATE.sig_ok = 0
                STATE.sig_bad.clear()
            return self.reply(200, b"{}")
        with STATE.lock:
            stats = {"log": STATE.log, "sig_ok": STATE.sig_ok, "sig_bad": STATE.sig_bad,
                     "keys": sorted(k for b, k in STATE.objects)}
        return self.reply(200, json.dumps(stats).encode())

    # --- the S3 operations ----------------------------------------------------------------
    def s3(self, bucket, key, query, body, fault, entry):
        m = self.command
        entry["status"] = 200
        if m == "GET" and not key:
            return self.list_objects(bucket, query)
        if m == "POST" and "uploads" in query:
            with STATE.lock:
                upload_id = f"upload-{STATE.next_upload}"
                STATE.next_upload += 1
                STATE.uploads[upload_id] = {"bucket": bucket, "key": key, "parts": {}}
            xml = (f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                   f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>")
            return self.reply(200, xml.encode())
        if m == "PUT":
            md5 = hashlib.md5(body).digest()
            given = self.headers.get("Content-MD5")
            if given is not None and base64.b64decode(given) != md5:
                entry["status"] = 400
                return self.error(400, "BadDigest", "Content-MD5 mismatch")
            if "uploadId" in query:
                upload = STATE.uploads.get(query["uploadId"][0])
                if upload is None:
                    return self.error(404, "NoSuchUpload")
                upload["parts"][int(query["partNumber"][0])] = body
            else:
                with STATE.lock:
                    STATE.objects[(bucket, key)] = (body, md5.hex())
            return self.reply(200, b"", {"ETag": f'"{md5.hex()}"'})
        if m == "POST" and "uploadId" in query:
            with STATE.lock:
                upload = STATE.uploads.pop(query["uploadId"][0], None)
            if upload is None:
                return self.error(404, "NoSuchUpload")
            numbers = sorted(upload["parts"])
            data = b"".join(upload["parts"][n] for n in numbers)
            digests = b"".join(hashlib.md5(upload["parts"][n]).digest() for n in numbers)
            etag = f"{hashlib.md5(digests).hexdigest()}-{len(numbers)}"
            with STATE.lock:
                STATE.objects[(bucket, key)] = (data, etag)
            xml = (f"<CompleteMultipartUploadResult><Key>{key}</Key><ETag>&quot;{etag}&quot;"
                   "</ETag></CompleteMultipartUploadResult>")
            return self.reply(200, xml.encode())
        if m == "DELETE":
            if "uploadId" in query:
                STATE.uploads.pop(query["uploadId"][0], None)
            else:
                with STATE.lock:
                    STATE.objects.pop((bucket, key), None)
            return self.reply(204)
        if m in ("GET", "HEAD"):
            with STATE.lock:
                obj = STATE.objects.get((bucket, key))
            if obj is None:
                entry["status"] = 404
                return self.error(404, "NoSuchKey") if m == "GET" else self.reply(404, head_only=True)
            data, etag = obj
            status, start = 200, 0
            headers = {"ETag": f'"{etag}"'}
            rng = self.headers.get("Range")
            if rng and m == "GET":
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    return self.error(416, "InvalidRange")
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            payload = data[start:]
            if m == "HEAD":
                self.send_response(200)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return None
            if fault == "truncate":
                self.reply_truncated(status, payload, headers)
                return None
            entry["status"] = status
            return self.reply(status, payload, headers)
        return self.error(400, "NotImplemented", f"{m} {self.path}")

    def list_objects(self, bucket, query):
        prefix = query.get("prefix", [""])[0]
        max_keys = int(query.get("max-keys", ["1000"])[0])
        after = query.get("continuation-token", [""])[0]
        with STATE.lock:
            keys = sorted((k, v) for (b, k), v in STATE.objects.items()
                          if b == bucket and k.startswith(prefix) and k > after)
        page, truncated = keys[:max_keys], len(keys) > max_keys
        items = "".join(
            f"<Contents><Key>{k}</Key><Size>{len(d)}</Size><ETag>&quot;{e}&quot;</ETag></Contents>"
            for k, (d, e) in page)
        token = f"<NextContinuationToken>{page[-1][0]}</NextContinuationToken>" if truncated else ""
        xml = (f"<ListBucketResult><Name>{bucket}</Name><KeyCount>{len(page)}</KeyCount>"
               f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{token}{items}"
               "</ListBucketResult>")
        return self.reply(200, xml.encode())

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--session-token", default="")
    ap.add_argument("--region", default="us-east-1")
    ARGS = ap.parse_args()
    serve(Handler, ARGS.port_file)


if __name__ == "__main__":
    sys.exit(main())
