#!/usr/bin/python3
"""`zerotune serve` end to end, on 127.0.0.1 only, against a tiny model made here:

  greedy      completions equal `zerotune generate` (text, prompt and completion token counts)
  openai      the official OpenAI client (npm `openai`): models, completion, chat, both streamed,
              and an error; chat prompts rendered by Python's jinja2 as transformers renders them
              (with the request's tools too), answers compared with `generate` on that prompt
  stream      streamed text (SSE `data:` lines, `[DONE]` last) equals the whole reply; usage chunk
  errors      each bad request gets its status and OpenAI's error JSON, and the server keeps serving
  batch       16 concurrent clients (mixed lengths, stop strings, streamed or not) each get the
              answer the same request gets alone; the steps batched several sequences
  disconnect  a client that leaves mid-stream frees its slot (the sequence is cancelled early)
  keys        --api-key: 401 without or with a wrong key; a folder without chat template: 400
  sigterm     SIGTERM during a request: the request completes, new connections are refused, exit 0

  check_serve.py --zerotune BIN --workdir DIR --node-dir DIR
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import jinja2.sandbox

from servers import (Server, metrics, parse_events, post_json, raw_exchange, request, stream,
                     streamed_text)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
report = Report(58)
check = report.check

MODEL_NAME = "tiny-chat"
API_KEY = "sk-zerotune-test-key"
CONTEXT = 256  # the tiny model's max_position_embeddings
MAX_BATCH = 4
# A Llama-2-style template with a system block, a filter and the end-of-sequence token.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% if tools %}<<TOOLS>>{{ tools | map(attribute='function.name') | join(',') }}"
    "<</TOOLS>>{% endif %}{% for message in messages %}"
    "{% if message['role'] == 'system' %}<<SYS>>{{ message['content'] | trim }}<</SYS>>"
    "{% elif message['role'] == 'user' %}[INST] {{ message['content'] | trim }} [/INST]"
    "{% else %} {{ message['content'] | trim }}{{ eos_token }}{% endif %}{% endfor %}")
PROMPTS = ["<START_Q>Tom has 3 apples and buys 5 more.<END_Q><START_A>", "The farmer", "Q:",
           "12 + 7 = "]


def render_chat(messages, tools=None):
    """What transformers' apply_chat_template renders: jinja2's sandbox, trim_blocks,
    lstrip_blocks, add_generation_prompt."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True,
                                                 tools=tools, bos_token="<s>", eos_token="</s>")


def check_chat_with_tools(z, model, port):
    """The request's tools reach the template (as transformers passes them)."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "Add 2 "},
                                             {"type": "text", "text": "and 3."}]}]
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}},
             {"type": "function", "function": {"name": "mul", "parameters": {}}}]
    flat = [{"role": "user", "content": "Add 2 and 3."}]
    want, _ = generate(z, model, render_chat(flat, tools)[len("<s>"):], 12)
    status, reply = post_json(port, "/v1/chat/completions",
                              {"model": MODEL_NAME, "messages": messages, "tools": tools,
                               "max_tokens": 12, "temperature": 0})
    got = reply["choices"][0]["message"]["content"] if status == 200 else reply
    check(status == 200 and got == want, "chat: tools and text parts reach the template",
          f"{got!r} vs {want!r}")


def generate(z, model, prompt, max_new):
    """(text, summary) of `zerotune generate`."""
    r = subprocess.run([z, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens",
                        str(max_new)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"zerotune generate failed: {r.stderr.strip()}")
    assert r.stdout.endswith("\n")
    return r.stdout[:-1], json.loads(r.stderr.strip().splitlines()[-1])


def completion(port, prompt, max_tokens, **fields):
    return post_json(port, "/v1/completions", dict(model=MODEL_NAME, prompt=prompt,
                                                   max_tokens=max_tokens, temperature=0, **fields))


def check_greedy_equals_generate(z, model, port):
    """Returns {prompt: text} for the later checks."""
    texts = {}
    for prompt in PROMPTS:
        want, summary = generate(z, model, prompt, 24)
        status, reply = completion(port, prompt, 24)
        ok = status == 200
        got = reply["choices"][0] if ok else {}
        usage = reply.get("usage", {})
        finish = "stop" if summary["stopped"] == "eos" else "length"
        check(ok and got["text"] == want and got["finish_reason"] == finish,
              f"greedy == generate: {prompt[:20]!r}", f"{got.get('text')!r} vs {want!r}")
        check(usage.get("prompt_tokens") == summary["prompt_tokens"] and
              usage.get("completion_tokens") == summary["new_tokens"] and
              usage.get("total_tokens") == summary["prompt_tokens"] + summary["new_tokens"],
              f"usage == generate's counts: {prompt[:20]!r}", f"{usage} vs {summary}")
        texts[prompt] = want
    return texts


def check_streaming(port):
    body = dict(model=MODEL_NAME, prompt=PROMPTS[0], max_tokens=40, temperature=0)
    _, whole = post_json(port, "/v1/completions", body)
    status, ctype, events = stream(port, "/v1/completions",
                                   dict(body, stream_options={"include_usage": True}))
    ok = status == 200 and events and events[-1] == "[DONE]"
    check(ok and ctype.startswith("text/event-stream"), "stream: SSE events ending in [DONE]",
          f"{status} {ctype}")
    if not ok:
        return
    text, finish = streamed_text(events)[0]
    check(text == whole["choices"][0]["text"] and finish == whole["choices"][0]["finish_reason"],
          "stream: pieces concatenate to the whole reply", f"{text!r}")
    check(len([e for e in events[:-1] if e["choices"]]) >= 3, "stream: one chunk per token group",
          f"{len(events)} events")
    usage = events[-2]
    check(usage["choices"] == [] and usage["usage"] == whole["usage"] and
          all(e["usage"] is None for e in events[:-2]),
          "stream: usage chunk last (include_usage)", json.dumps(usage.get("usage")))
    check(all(e["id"] == events[0]["id"] and e["object"] == "text_completion"
              for e in events[:-1]), "stream: every chunk has the same id")
    # A list of prompts: one choice each, as vLLM answers.
    status, reply = post_json(port, "/v1/completions", dict(body, prompt=PROMPTS[:2]))
    singles = [completion(port, p, 40)[1]["choices"][0]["text"] for p in PROMPTS[:2]]
    check(status == 200 and [c["text"] for c in reply["choices"]] == singles and
          [c["index"] for c in reply["choices"]] == [0, 1],
          "prompt list: one choice per prompt", str(status))
    status, _, events = stream(port, "/v1/completions", dict(body, prompt=PROMPTS[:2]))
    per_choice = streamed_text(events) if status == 200 else {}
    check([per_choice.get(i, ("", None))[0] for i in range(2)] == singles,
          "prompt list streamed: choices by index")


def expect_error(port, name, status_want, method, path, body=None, headers=None, param=None,
                 code=None, message_has=()):
    status, h, data = request(port, method, path, body, headers)
    try:
        error = json.loads(data)["error"]
        shape = set(error) == {"message", "type", "param", "code"} and \
            h.get("content-type", "").startswith("application/json")
    except (ValueError, KeyError, TypeError):
        error, shape = {}, False
    ok = status == status_want and shape
    if param is not None:
        ok = ok and error.get("param") == param
    if code is not None:
        ok = ok and error.get("code") == code
    ok = ok and all(s in error.get("message", "") for s in message_has)
    alive = request(port, "GET", "/health")[0] == 200
    check(ok and alive, f"error {status_want}: {name}", f"{status} {error.get('message', data[:120])!r}")


def check_errors(port):
    prompt_tokens = completion(port, "x", 1)[1]["usage"]["prompt_tokens"]
    c = "/v1/completions"
    expect_error(port, "malformed JSON", 400, "POST", c, b'{"prompt": "x",')
    expect_error(port, "body not an object", 400, "POST", c, b"[1, 2]")
    expect_error(port, "max_tokens of the wrong type", 400, "POST", c,
                 {"prompt": "x", "max_tokens": "ten"}, param="max_tokens")
    expect_error(port, "prompt of the wrong type", 400, "POST", c, {"prompt": {"a": 1}},
                 param="prompt")
    expect_error(port, "temperature out of range", 400, "POST", c,
                 {"prompt": "x", "temperature": 3}, param="temperature")
    expect_error(port, "stop of the wrong type", 400, "POST", c, {"prompt": "x", "stop": 5},
                 param="stop")
    expect_error(port, "n = 2", 400, "POST", c, {"prompt": "x", "n": 2}, param="n")
    expect_error(port, "prompt + max_tokens beyond the context", 400, "POST", c,
                 {"prompt": "x", "max_tokens": CONTEXT}, param="max_tokens",
                 code="context_length_exceeded",
                 message_has=(str(CONTEXT), str(prompt_tokens + CONTEXT), f"{prompt_tokens} in"))
    expect_error(port, "token id beyond the vocabulary", 400, "POST", c,
                 {"prompt": [1, 999999]}, param="prompt", message_has=("999999",))
    expect_error(port, "unknown model", 404, "POST", c, {"model": "gpt-4", "prompt": "x"},
                 param="model", code="model_not_found", message_has=("gpt-4",))
    expect_error(port, "chat without messages", 400, "POST", "/v1/chat/completions",
                 {"model": MODEL_NAME}, param="messages")
    expect_error(port, "chat content of the wrong type", 400, "POST", "/v1/chat/completions",
                 {"messages": [{"role": "user", "content": 7}]}, param="messages")
    expect_error(port, "unknown path (POST)", 404, "POST", "/v1/embeddings", {"input": "x"},
                 message_has=("/v1/embeddings",))
    expect_error(port, "unknown path (GET)", 404, "GET", "/nothing/here")
    expect_error(port, "body over the limit", 413, "POST", c, b"{" + b" " * (4 << 20) + b"}")
    reply = raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    check(reply.startswith(b"HTTP/1.1 400") and request(port, "GET", "/health")[0] == 200,
          "error 400: a line that is not HTTP", repr(reply[:40]))


def concurrent_plan():
    """16 requests: several prompts, max_tokens from 3 to 64, half with a stop string taken from
    the middle of the answer without it, half streamed."""
    plan = []
    for i in range(16):
        prompt = PROMPTS[i % len(PROMPTS)] + ("" if i < 4 else f" case {i}")
        body = dict(model=MODEL_NAME, prompt=prompt, max_tokens=3 + (i * 61) % 62, temperature=0)
        plan.append(body)
    return plan


def check_concurrent(port):
    plan = concurrent_plan()
    # Answers without stops, alone, to pick stop strings that occur.
    for i, body in enumerate(plan):
        if i % 2 == 1:
            text = post_json(port, "/v1/completions", body)[1]["choices"][0]["text"]
            middle = len(text) // 2
            if len(text) >= 6:
                body["stop"] = [text[middle:middle + 3], "\u00a7never\u00a7"]
    alone = [post_json(port, "/v1/completions", b)[1]["choices"][0] for b in plan]
    stops_hit = sum(1 for a, b in zip(alone, plan) if "stop" in b and a["finish_reason"] == "stop")
    check(stops_hit >= 4, "batch: the stop strings end the answers alone", f"{stops_hit} of 8")
    before = metrics(port)
    results = [None] * len(plan)

    def client(i):
        body = plan[i]
        if i % 4 == 0:
            status, _, events = stream(port, "/v1/completions", body)
            text, finish = streamed_text(events)[0] if status == 200 else (None, None)
            results[i] = {"text": text, "finish_reason": finish}
        else:
            results[i] = post_json(port, "/v1/completions", body)[1]["choices"][0]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(plan))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    same = [i for i in range(len(plan)) if results[i] and
            results[i]["text"] == alone[i]["text"] and
            results[i]["finish_reason"] == alone[i]["finish_reason"]]
    check(len(same) == len(plan), "batch: 16 concurrent answers == alone",
          f"differ: {sorted(set(range(len(plan))) - set(same))}")
    after = metrics(port)
    steps = after["zerotune_decode_steps_total"] - before["zerotune_decode_steps_total"]
    rows = after["zerotune_decoded_rows_total"] - before["zerotune_decoded_rows_total"]
    check(after["zerotune_largest_batch"] == MAX_BATCH and steps and rows / steps > 1.5,
          "batch: decode steps ran several sequences",
          f"largest {after['zerotune_largest_batch']}, {rows} rows in {steps} steps")


def check_disconnect(port):
    before = metrics(port)
    body = dict(model=MODEL_NAME, prompt="The farmer", max_tokens=CONTEXT - 16, temperature=0,
                stream=True)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    data = json.dumps(body).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
              b"application/json\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" +
              data)
    received = b""
    while b"data: " not in received:
        received += s.recv(4096)
    s.close()
    deadline = time.time() + 60
    while time.time() < deadline and metrics(port)["zerotune_requests_running"] > 0:
        time.sleep(0.05)
    after = metrics(port)
    generated = after["zerotune_generated_tokens_total"] - before["zerotune_generated_tokens_total"]
    check(after["zerotune_requests_running"] == 0 and
          after["zerotune_cancelled_total"] == before["zerotune_cancelled_total"] + 1,
          "disconnect: the sequence is cancelled, slot freed",
          f"running {after['zerotune_requests_running']}, generated {generated} of "
          f"{body['max_tokens']}")
    check(generated < body["max_tokens"], "disconnect: generation stopped early",
          f"{generated} tokens")
    status, reply = completion(port, "The farmer", 5)
    check(status == 200 and reply["usage"]["completion_tokens"] >= 1,
          "disconnect: the server keeps serving")


def run_openai_client(node_dir, workdir, port, texts, z, model):
    messages = [{"role": "system", "content": "You answer briefly. "},
                {"role": "user", "content": "How many apples does Tom have?"}]
    rendered = render_chat(messages)
    if not rendered.startswith("<s>"):
        raise RuntimeError(f"the template should start with <s>: {rendered!r}")
    # `generate` adds <s> itself and encodes the rest: the ids the server encodes for the chat.
    chat_want, chat_summary = generate(z, model, rendered[len("<s>"):], 20)
    plan = {"base_url": f"http://127.0.0.1:{port}/v1", "model": MODEL_NAME,
            "prompt": PROMPTS[0], "max_tokens": 24, "messages": messages, "chat_max_tokens": 20}
    plan_path, out_path = f"{workdir}/openai_plan.json", f"{workdir}/openai_out.json"
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    r = subprocess.run(["node", os.path.join(HERE, "openai_client.mjs"), plan_path, out_path,
                        os.path.join(node_dir, "node_modules")],
                       capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, "openai: client script ran", r.stderr.strip()[-300:])
    if r.returncode != 0:
        return
    with open(out_path) as f:
        out = json.load(f)
    check(out["models"] == [MODEL_NAME], "openai: models.list", str(out["models"]))
    want = texts[PROMPTS[0]]
    check(out["completion"]["text"] == want and out["completion"]["object"] == "text_completion",
          "openai: completions.create == generate", repr(out["completion"]["text"]))
    check(out["completion_stream"]["text"] == want and
          out["completion_stream"]["usage"] == out["completion"]["usage"],
          "openai: completion stream == generate", repr(out["completion_stream"]["text"]))
    chat = out["chat"]
    check(chat["content"] == chat_want and chat["role"] == "assistant" and
          chat["usage"]["prompt_tokens"] == chat_summary["prompt_tokens"],
          "openai: chat == generate on jinja2's prompt", f"{chat['content']!r} vs {chat_want!r}")
    check(out["chat_stream"]["content"] == chat_want and out["chat_stream"]["role"] == "assistant",
          "openai: chat stream == generate", repr(out["chat_stream"]["content"]))
    err = out["error"]
    check(err["status"] == 404 and err["code"] == "model_not_found" and err["param"] == "model",
          "openai: the client reads our 404 error", json.dumps(err))


def check_keys_and_missing_template(z, workdir, model):
    with Server(z, workdir, "serve_keyed", model, ["--api-key", API_KEY, "--max-batch", "2"]) as s:
        body = {"prompt": "x", "max_tokens": 2}
        expect_error(s.port, "no API key", 401, "POST", "/v1/completions", body,
                     code="invalid_api_key")
        expect_error(s.port, "wrong API key", 401, "GET", "/v1/models", None,
                     {"Authorization": "Bearer sk-wrong"}, code="invalid_api_key")
        auth = {"Authorization": f"Bearer {API_KEY}"}
        status, _ = post_json(s.port, "/v1/completions", body, auth)
        check(status == 200 and request(s.port, "GET", "/health")[0] == 200,
              "API key: right key 200, /health open")
        expect_error(s.port, "chat without a chat template", 400, "POST", "/v1/chat/completions",
                     {"messages": [{"role": "user", "content": "hi"}]}, auth, param="messages",
                     message_has=("tokenizer_config.json", "chat_template"))


def check_command_errors(z, model, busy_port):
    """Bad flags and an address in use: exit status 1 and one line naming what is wrong."""
    cases = [
        ("port in use", ["--model", model, "--port", str(busy_port)],
         (f"127.0.0.1:{busy_port}", "in use")),
        ("no --model", [], ("--model",)),
        ("--max-batch 0", ["--model", model, "--max-batch", "0"], ("--max-batch", "0")),
        ("--port out of range", ["--model", model, "--port", "70000"], ("--port", "70000")),
        ("--device cuda without CUDA", ["--model", model, "--device", "cuda"], ("CUDA",)),
        ("--max-seq-len beyond the model", ["--model", model, "--max-seq-len", "4096"],
         ("--max-seq-len", "4096", str(CONTEXT))),
        ("a folder that is not a model", ["--model", os.path.dirname(model) + "/missing"],
         ("missing",)),
    ]
    for name, flags, needles in cases:
        r = subprocess.run([z, "serve", "--host", "127.0.0.1", *flags], capture_output=True,
                           text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        if name == "--device cuda without CUDA" and r.returncode != 1:
            needles = ()  # a CUDA build: nothing to refuse here
            check(True, f"command error: {name}", "this build has CUDA")
            continue
        check(r.returncode == 1 and len(lines) == 1 and all(n in lines[0] for n in needles),
              f"command error: {name}", f"{r.returncode}: {r.stderr.strip()[-200:]!r}")
    r = subprocess.run([z, "serve", "--help"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "--max-batch" in r.stdout, "zerotune serve --help")


def check_sigterm(server):
    port = server.port
    body = dict(model=MODEL_NAME, prompt=PROMPTS[:3], max_tokens=CONTEXT - 40, temperature=0,
                stream=True)
    conn = socket.create_connection(("127.0.0.1", port), timeout=120)
    data = json.dumps(body).encode()
    conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                 str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
    received = b""
    while b"data: " not in received:
        received += conn.recv(4096)
    server.terminate()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    conn.close()
    head, _, body_bytes = received.partition(b"\r\n\r\n")
    events = parse_events(dechunk(body_bytes))
    finished = streamed_text(events)
    check(events and events[-1] == "[DONE]" and
          sorted(finished) == [0, 1, 2] and all(f for _, f in finished.values()),
          "sigterm: the request in flight completes", f"{len(events)} events")
    refused = False
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            refused = True
            break
        time.sleep(0.1)
    code = server.wait(60)
    log = server.log_text()
    # The request's log line is written when its reply ends: after the signal if it was in flight.
    check(log.find("SIGTERM") < log.rfind("POST /v1/completions 200") and "SIGTERM" in log,
          "sigterm: the request was in flight at the signal")
    check(refused, "sigterm: new connections are refused")
    check(code == 0, "sigterm: exit status 0", f"{code}: {server.log_text().strip()[-200:]}")


def dechunk(data):
    """The body of an HTTP/1.1 chunked transfer."""
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


def main():
    args, z, w = check_args("--node-dir")
    try:
        _, model = make_tiny_model(z, w)
    except RuntimeError as e:
        check(False, "make a tiny model", str(e))
        return report.finish()
    chat_model = f"{w}/chat-model"
    shutil.copytree(model, chat_model)
    config_path = f"{chat_model}/tokenizer_config.json"
    with open(config_path) as f:
        config = json.load(f)
    config["chat_template"] = CHAT_TEMPLATE
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)

    try:
        with Server(z, w, "serve", chat_model, ["--served-model-name", MODEL_NAME,
                                                "--max-batch", str(MAX_BATCH)]) as server:
            port = server.port
            status, _, health = request(port, "GET", "/health")
            check(status == 200, "GET /health", str(status))
            status, models = request(port, "GET", "/v1/models")[0], json.loads(
                request(port, "GET", "/v1/models")[2])
            check(status == 200 and [m["id"] for m in models["data"]] == [MODEL_NAME] and
                  models["data"][0]["max_model_len"] == CONTEXT, "GET /v1/models", str(models))
            texts = check_greedy_equals_generate(z, chat_model, port)
            run_openai_client(args.node_dir, w, port, texts, z, chat_model)
            check_chat_with_tools(z, chat_model, port)
            check_streaming(port)
            check_errors(port)
            check_concurrent(port)
            check_disconnect(port)
            check_command_errors(z, chat_model, port)
            check_sigterm(server)
        check_keys_and_missing_template(z, w, model)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        check(False, "serve checks ran to the end", f"{type(e).__name__}: {e}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
