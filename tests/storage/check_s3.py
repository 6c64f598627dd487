#!/usr/bin/python3
"""The S3 client against real servers on loopback:

- s3rver (the npm package, pinned in package-lock.json): multipart upload with several parts,
  listing past 1000 keys with pagination, downloads, deletes, objects written by botocore.
- fake_s3.py: every request's SigV4 signature re-signed with botocore and compared byte for byte
  (PUT, multipart create/part/complete, list, GET, HEAD, DELETE, with a session token); injected
  500, 503 and 429 responses, dropped connections and truncated bodies; secrets never printed.

  check_s3.py --zerotune BIN --workdir DIR --node-dir DIR
"""

import filecmp
import os
import subprocess
import sys

from servers import Servers, base_env, http_json, run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args  # noqa: E402

report = Report(60)
check = report.check
MiB = 1 << 20

SECRET = "zt-Secret-Never-Printed-9f8e7d6c5b4a"
TOKEN = "zt-Session-Token-Never-Printed-0a1b2c3d"


def leaked(r):
    return SECRET in r.stdout + r.stderr or TOKEN in r.stdout + r.stderr


def botocore_client(endpoint):
    import botocore.session
    session = botocore.session.get_session()
    return session.create_client("s3", region_name="us-east-1", endpoint_url=endpoint,
                                 aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER")


def with_s3rver(z, w, endpoint):
    env = base_env(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
                   AWS_ENDPOINT_URL=endpoint, ZEROTUNE_S3_PART_SIZE=5 * MiB)
    boto = botocore_client(endpoint)
    big = f"{w}/big.bin"
    with open(big, "wb") as f:
        f.write(os.urandom(23 * MiB + 12345))  # 5 parts of 5 MiB
    r = run([z, "storage", "cp", big, "s3://zt-test/multi/big.bin"], env)
    check(r.returncode == 0, "multipart upload to s3rver (5 parts)", r.stderr.strip()[-300:])
    head = boto.head_object(Bucket="zt-test", Key="multi/big.bin")
    check(head["ContentLength"] == os.path.getsize(big), "botocore sees the uploaded size",
          str(head["ContentLength"]))
    body = boto.get_object(Bucket="zt-test", Key="multi/big.bin")["Body"].read()
    check(body == open(big, "rb").read(), "botocore reads back the same bytes")
    r = run([z, "storage", "cp", "s3://zt-test/multi/big.bin", f"{w}/big.back"], env)
    check(r.returncode == 0 and filecmp.cmp(big, f"{w}/big.back", shallow=False),
          "download equals the upload", r.stderr.strip()[-300:])

    payload = open(big, "rb").read()

    def cat(*extra):  # bytes as they are: text mode would turn a random b"\r" into b"\n"
        return subprocess.run([str(c) for c in [z, "storage", "cat", "s3://zt-test/multi/big.bin",
                                                *extra]], capture_output=True, env=env)

    r = cat("--offset", 5 * MiB - 3, "--length", 10)
    tail = cat("--offset", len(payload) - 4)
    check(r.returncode == 0 and r.stdout == payload[5 * MiB - 3:5 * MiB + 7]
          and tail.stdout == payload[-4:], "ranged GETs (middle, to the end)",
          f"{r.stdout!r} / {tail.stdout!r}" if r.stdout != payload[5 * MiB - 3:5 * MiB + 7] else "")
    boto.put_object(Bucket="zt-test", Key="boto/obj with space+plus.txt", Body=b"from botocore")
    r = run([z, "storage", "cp", "s3://zt-test/boto/obj with space+plus.txt", f"{w}/boto.txt"],
            env)
    check(r.returncode == 0 and open(f"{w}/boto.txt", "rb").read() == b"from botocore",
          "object written by botocore, key with space and '+'", r.stderr.strip()[-300:])

    many = f"{w}/many"
    os.makedirs(many)
    for i in range(1100):
        with open(f"{many}/k{i:05d}.txt", "w") as f:
            f.write(str(i))
    r = run([z, "storage", "cp", many, "s3://zt-test/many"], env)
    check(r.returncode == 0, "upload 1100 objects", r.stderr.strip()[-300:])
    pages = boto.get_paginator("list_objects_v2").paginate(Bucket="zt-test", Prefix="many/")
    boto_keys = sorted(o["Key"] for p in pages for o in p.get("Contents", []))
    check(len(boto_keys) == 1100, "botocore lists 1100 keys", str(len(boto_keys)))
    r = run([z, "storage", "ls", "s3://zt-test/many/"], env)
    ours = sorted(line.split()[-1].replace("s3://zt-test/", "") for line in r.stdout.splitlines())
    check(r.returncode == 0 and ours == boto_keys, "ls past 1000 keys (2 pages) equals botocore's",
          f"{len(ours)} keys")
    r = run([z, "storage", "ls", "s3://zt-test/many/", "--page-size", "150"], env)
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1100, "ls with 8 pages of 150",
          str(len(r.stdout.splitlines())))
    r = run([z, "storage", "rm", "--recursive", "s3://zt-test/many"], env)
    left = boto.list_objects_v2(Bucket="zt-test", Prefix="many/").get("KeyCount", 0)
    check(r.returncode == 0 and left == 0, "rm --recursive deletes every key", f"{left} left")


def with_fake_s3(z, w, endpoint):
    env = base_env(AWS_ACCESS_KEY_ID="AKIDZEROTUNETEST", AWS_SECRET_ACCESS_KEY=SECRET,
                   AWS_SESSION_TOKEN=TOKEN, AWS_ENDPOINT_URL=endpoint,
                   ZEROTUNE_S3_PART_SIZE=5 * MiB, ZEROTUNE_STORAGE_RETRIES=4)

    def faults(*items):
        http_json(f"{endpoint}/__faults", data=__import__("json").dumps(list(items)).encode())

    def reset():
        http_json(f"{endpoint}/__reset", data=b"")

    def stats():
        return http_json(f"{endpoint}/__stats")

    data = f"{w}/fake"
    os.makedirs(data)
    big, small = f"{data}/big.bin", f"{data}/small.txt"
    with open(big, "wb") as f:
        f.write(os.urandom(11 * MiB + 7))  # 3 parts
    with open(small, "w") as f:
        f.write("hello, signed world\n")

    # Signatures of every kind of request, compared with botocore's.
    steps = [["storage", "cp", small, "s3://zt-bucket/dir/small file.txt"],
             ["storage", "cp", big, "s3://zt-bucket/dir/big.bin"],
             ["storage", "ls", "s3://zt-bucket/dir/", "--page-size", "1"],
             ["storage", "cp", "s3://zt-bucket/dir/big.bin", f"{data}/big.back"],
             ["storage", "cp", "s3://zt-bucket/dir", f"{data}/tree"],
             ["storage", "rm", "s3://zt-bucket/dir/small file.txt"],
             ["storage", "cp", small, "s3://zt-bucket/odd/./x/../y=1&z.txt"]]
    ok = True
    for step in steps:
        r = run([z, *step], env)
        ok = ok and r.returncode == 0
        if r.returncode:
            check(False, " ".join(step[:2]), r.stderr.strip()[-300:])
    s = stats()
    kinds = {(e["method"], "uploads" if "uploads" in e["path"] else
              "part" if "partNumber" in e["path"] else
              "complete" if "uploadId" in e["path"] else
              "list" if "list-type" in e["path"] else "object") for e in s["log"]}
    want = {("PUT", "object"), ("POST", "uploads"), ("PUT", "part"), ("POST", "complete"),
            ("GET", "list"), ("GET", "object"), ("HEAD", "object"), ("DELETE", "object")}
    check(ok and not s["sig_bad"] and want <= kinds,
          "every signature equals botocore's, byte for byte",
          f"{s['sig_ok']} requests verified; mismatches: {s['sig_bad'][:2]}; kinds missing: "
          f"{sorted(want - kinds)}")
    check(filecmp.cmp(big, f"{data}/big.back", shallow=False), "multipart round trip (3 parts)")
    check("odd/./x/../y=1&z.txt" in s["keys"], "a key with '.', '..', '=' and '&' kept as is",
          str([k for k in s["keys"] if k.startswith("odd")]))
    check(sorted(os.listdir(f"{data}/tree")) == ["big.bin", "small file.txt"],
          "prefix download", str(os.listdir(f"{data}/tree")))

    # A model from s3:// fetched by four processes at once: each object downloaded once.
    model = f"{data}/model"
    os.makedirs(model)
    for name, size in (("config.json", 100), ("model.safetensors", 6 * MiB + 3),
                       ("tokenizer.model", 5000), ("pytorch_model.bin", 10)):
        with open(f"{model}/{name}", "wb") as f:
            f.write(os.urandom(size))
    r = run([z, "storage", "cp", model, "s3://zt-bucket/models/m"], env)
    reset()
    fenv = dict(env, ZEROTUNE_CACHE=f"{w}/cache")
    procs = [subprocess.Popen([z, "storage", "fetch", "s3://zt-bucket/models/m"], env=fenv,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    gets = [e["path"] for e in stats()["log"]
            if e["method"] == "GET" and "list-type" not in e["path"]]
    folders = {o[0].strip() for o in outs}
    check(r.returncode == 0 and all(p.returncode == 0 for p in procs) and len(folders) == 1
          and sorted(gets) == sorted(f"/zt-bucket/models/m/{n}" for n in
                                     ("config.json", "model.safetensors", "tokenizer.model")),
          "4 concurrent s3:// fetches download each object once, no .bin",
          f"GETs {sorted(gets)}; " + " | ".join(o[1].strip()[-100:] for o in outs))
    folder = folders.pop() if len(folders) == 1 else ""
    check(folder and all(filecmp.cmp(f"{model}/{n}", f"{folder}/{n}", shallow=False)
                         for n in ("config.json", "model.safetensors", "tokenizer.model")),
          "fetched files equal the uploaded ones")
    with open(f"{model}/config.json", "w") as f:
        f.write("{}")
    run([z, "storage", "cp", f"{model}/config.json", "s3://zt-bucket/models/m/config.json"], env)
    reset()
    r = run([z, "storage", "fetch", "s3://zt-bucket/models/m"], fenv)
    gets = [e["path"] for e in stats()["log"]
            if e["method"] == "GET" and "list-type" not in e["path"]]
    check(r.returncode == 0 and gets == ["/zt-bucket/models/m/config.json"]
          and open(f"{folder}/config.json").read() == "{}",
          "a changed object is fetched again, unchanged ones kept", str(gets))

    # The verifier can fail: a wrong secret is refused, and the secret is not printed.
    bad_env = dict(env, AWS_SECRET_ACCESS_KEY="zt-Wrong-Secret-Never-Printed")
    r = run([z, "storage", "ls", "s3://zt-bucket/dir/"], bad_env)
    check(r.returncode != 0 and "HTTP 403" in r.stderr and "SignatureDoesNotMatch" in r.stderr
          and "zt-Wrong-Secret" not in r.stdout + r.stderr,
          "a wrong secret is refused (HTTP 403), not printed", r.stderr.strip()[-200:])

    # Injected faults, recovered by retries.
    reset()
    faults({"method": "PUT", "match": "retry/small", "action": "500", "count": 2},
           {"method": "PUT", "match": "partNumber=2", "action": "drop", "count": 1},
           {"method": "PUT", "match": "partNumber=3", "action": "503", "count": 1},
           {"method": "POST", "match": "uploadId", "action": "429", "count": 1})
    r1 = run([z, "storage", "cp", small, "s3://zt-bucket/retry/small.txt"], env)
    r2 = run([z, "storage", "cp", big, "s3://zt-bucket/retry/big.bin"], env)
    log = stats()["log"]
    injected = sorted({e.get("fault") for e in log if e.get("fault")})
    check(r1.returncode == 0 and r2.returncode == 0 and injected == ["429", "500", "503", "drop"],
          "uploads survive 500, 503, 429 and a dropped connection",
          f"faults seen {injected}; {(r1.stderr + r2.stderr).strip()[-200:]}")
    check("retrying" in r1.stderr and "HTTP 500" in r1.stderr, "retries are reported",
          r1.stderr.strip()[-120:])
    faults({"method": "GET", "match": "retry/big.bin", "action": "truncate", "count": 1},
           {"method": "GET", "match": "retry/big.bin", "action": "503", "count": 1})
    r = run([z, "storage", "cp", "s3://zt-bucket/retry/big.bin", f"{data}/resumed.bin"], env)
    ranges = [e["range"] for e in stats()["log"] if "retry/big.bin" in e["path"] and e["range"]]
    check(r.returncode == 0 and filecmp.cmp(big, f"{data}/resumed.bin", shallow=False)
          and ranges and ranges[-1] != "bytes=0-",
          "a truncated download resumes with a Range request", f"ranges {ranges}")
    check(not any(leaked(x) for x in (r, r1, r2)), "no secret or session token in any output")

    # Persistent failures are reported with the URL, exit non-zero, and print no secret.
    faults({"method": "PUT", "match": "doomed", "action": "500", "count": -1})
    r = run([z, "storage", "cp", small, "s3://zt-bucket/doomed/small.txt"], env)
    check(r.returncode != 0 and "s3://zt-bucket/doomed/small.txt" in r.stderr
          and "HTTP 500" in r.stderr and "5 attempts" not in r.stdout and not leaked(r),
          "a persistent 500 fails, naming the object", r.stderr.strip().splitlines()[-1][:200]
          if r.stderr.strip() else "")
    faults({"method": "GET", "match": "list-type", "action": "drop", "count": -1})
    r = run([z, "storage", "ls", "s3://zt-bucket/"], env)
    check(r.returncode != 0 and "attempts" in r.stderr and not leaked(r),
          "persistently dropped connections fail after the retries",
          r.stderr.strip().splitlines()[-1][:200] if r.stderr.strip() else "")

    # Bad input.
    r = run([z, "storage", "ls", "s3://Bad_Bucket/x"], env)
    check(r.returncode != 0 and "Bad_Bucket" in r.stderr, "bad bucket name refused",
          r.stderr.strip()[-160:])
    empty_home = f"{w}/home"
    os.makedirs(empty_home, exist_ok=True)
    r = run([z, "storage", "ls", "s3://zt-bucket/"],
            base_env(HOME=empty_home, AWS_ENDPOINT_URL=endpoint))
    check(r.returncode != 0 and "AWS_ACCESS_KEY_ID" in r.stderr, "missing credentials explained",
          r.stderr.strip()[-200:])
    os.makedirs(f"{empty_home}/.aws")
    with open(f"{empty_home}/.aws/credentials", "w") as f:
        f.write(f"[other]\naws_access_key_id = AKIDZEROTUNETEST\naws_secret_access_key = {SECRET}\n"
                f"aws_session_token = {TOKEN}\n")
    reset()
    r = run([z, "storage", "cp", small, "s3://zt-bucket/profile/small.txt"],
            base_env(HOME=empty_home, AWS_PROFILE="other", AWS_ENDPOINT_URL=endpoint))
    check(r.returncode == 0 and not stats()["sig_bad"], "credentials from ~/.aws/credentials "
          "[AWS_PROFILE]", r.stderr.strip()[-200:])


def main():
    args, z, w = check_args("--node-dir")
    with Servers(w) as servers:
        try:
            s3rver = servers.s3rver(args.node_dir, ["zt-test"])
            fake = servers.fake_s3("AKIDZEROTUNETEST", SECRET, TOKEN)
        except RuntimeError as e:
            check(False, "start servers", str(e))
            return report.finish()
        with_s3rver(z, w, s3rver)
        with_fake_s3(z, w, fake)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
