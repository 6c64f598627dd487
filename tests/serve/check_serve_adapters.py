#!/usr/bin/python3
"""`zerotune serve --adapter` end to end on 127.0.0.1, through the official OpenAI client (npm
`openai`), on a tiny model and PEFT adapters with nonzero B made here; each expected answer is
`zerotune generate` of the folder `zerotune merge` writes for that adapter:

  one       --adapter DIR: /v1/models lists the adapter as given; completions (whole and
            streamed) equal the merged model's generate and differ from the base's
  several   --adapter a=DIR --adapter b=DIR: /v1/models lists the base and both names; each name's
            completions equal its merged model's; a request without "model" goes to the base;
            concurrent requests to the three names each get their answer alone
  unknown   an unknown model name: 404 model_not_found naming the served models, the server keeps
            serving
  refusals  an adapter of another base (names the tensor), another peft_type (names the field), a
            name given twice, an empty NAME: exit status 1 and one line, before listening

  check_serve_adapters.py --zerotune BIN --workdir DIR --node-dir DIR
"""

import json
import os
import subprocess
import sys
import threading

from servers import Server, post_json, request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from report import Report  # noqa: E402
from run_files import check_args, make_tiny_model, write_random_adapter  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
report = Report(58)
check = report.check
PROMPTS = ["<START_Q>Tom has 3 apples and buys 5 more.<END_Q><START_A>", "The farmer"]
NEW_TOKENS = 16


def generate(z, model, prompt):
    r = subprocess.run([z, "generate", "--model", model, "--prompt", prompt, "--max-new-tokens",
                        str(NEW_TOKENS)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"zerotune generate --model {model}: {r.stderr.strip()[-300:]}")
    return r.stdout[:-1]


def merge(z, model, adapter, out):
    r = subprocess.run([z, "merge", "--base", model, "--adapter", adapter, "--out", out],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"zerotune merge {adapter}: {r.stderr.strip()[-300:]}")
    return out


def openai_client(node_dir, w, port, requests):
    """What the npm client received for `requests` ([(model, prompt)]) and an unknown model."""
    plan = {"base_url": f"http://127.0.0.1:{port}/v1", "unknown_model": "no-such-adapter",
            "requests": [{"model": m, "prompt": p, "max_tokens": NEW_TOKENS} for m, p in requests]}
    plan_path, out_path = f"{w}/openai_models_plan.json", f"{w}/openai_models_out.json"
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    r = subprocess.run(["node", os.path.join(HERE, "openai_models.mjs"), plan_path, out_path,
                        os.path.join(node_dir, "node_modules")],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"openai_models.mjs: {r.stderr.strip()[-300:]}")
    with open(out_path) as f:
        return json.load(f)


def check_answers(out, requests, want, label):
    got = [(c["model"], c["text"], c["streamed"]) for c in out["completions"]]
    expected = [(m, want[m][p], want[m][p]) for m, p in requests]
    bad = [f"{e[0]}: {g[1]!r} vs {e[1]!r}" for g, e in zip(got, expected) if g != e]
    check(len(got) == len(expected) and not bad, f"{label}: completions == merged generate",
          "; ".join(bad)[:300])


def check_one_adapter(z, w, node_dir, model, adapter, want):
    with Server(z, w, "serve_one", model, ["--adapter", adapter, "--max-batch", "2"]) as s:
        requests = [(adapter, p) for p in PROMPTS]
        out = openai_client(node_dir, w, s.port, requests)
        check(out["models"] == [adapter], "one: /v1/models lists the adapter as given",
              str(out["models"]))
        check_answers(out, requests, {adapter: want["a"]}, "one")
        check(all(want["a"][p] != want["base"][p] for p in PROMPTS),
              "one: the adapter changes the answers")


def concurrent_answers(port, requests):
    results = [None] * len(requests)

    def client(i):
        model, prompt = requests[i]
        status, reply = post_json(port, "/v1/completions",
                                  {"model": model, "prompt": prompt, "max_tokens": NEW_TOKENS,
                                   "temperature": 0})
        results[i] = reply["choices"][0]["text"] if status == 200 else reply

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def check_several(z, w, node_dir, model, adapters, want):
    flags = ["--served-model-name", "base", "--max-batch", "3"]
    for name, adapter in adapters.items():
        flags += ["--adapter", f"{name}={adapter}"]
    with Server(z, w, "serve_several", model, flags) as s:
        names = ["base", *adapters]
        requests = [(m, p) for m in names for p in PROMPTS]
        out = openai_client(node_dir, w, s.port, requests)
        check(out["models"] == names, "several: /v1/models lists the base and each name",
              str(out["models"]))
        check_answers(out, requests, want, "several")
        err = out["error"] or {}
        check(err.get("status") == 404 and err.get("code") == "model_not_found" and
              err.get("param") == "model" and all(f"`{n}`" in err.get("message", "")
                                                  for n in names),
              "several: an unknown name is a 404 naming the served models", json.dumps(err))
        status, reply = post_json(s.port, "/v1/completions",
                                  {"prompt": PROMPTS[1], "max_tokens": NEW_TOKENS,
                                   "temperature": 0})
        check(status == 200 and reply["model"] == "base" and
              reply["choices"][0]["text"] == want["base"][PROMPTS[1]],
              "several: a request without model goes to the base", str(reply)[:200])
        mixed = [(names[i % 3], PROMPTS[i % 2] + ("" if i < 6 else f" case {i}")) for i in range(9)]
        alone = [concurrent_answers(s.port, [r])[0] for r in mixed]
        together = concurrent_answers(s.port, mixed)
        check(together == alone and all(isinstance(t, str) for t in together),
              "several: 9 concurrent requests over 3 names == alone",
              f"differ at {[i for i in range(9) if together[i] != alone[i]]}")
        check(request(s.port, "GET", "/health")[0] == 200, "several: the server keeps serving")


def check_refusals(z, w, model, adapters):
    wrong = write_random_adapter(model, f"{w}/wrong_shape", seed=7, wrong_shape="down_proj")
    other = write_random_adapter(model, f"{w}/other_type", seed=8)
    with open(f"{other}/adapter_config.json", "w") as f:
        json.dump({"peft_type": "IA3", "task_type": "CAUSAL_LM"}, f)
    a = adapters["a"]
    cases = [("an adapter of another base", ["--adapter", wrong],
              ("layers.0.mlp.down_proj.lora_B.weight", "expected")),
             ("a named adapter of another base", ["--adapter", "a=" + a, "--adapter", "w=" + wrong],
              ("down_proj.lora_B.weight",)),
             ("another peft_type", ["--adapter", other], ("peft_type", "IA3")),
             ("a name given twice", ["--adapter", "x=" + a, "--adapter", "x=" + a], ("'x'",)),
             ("the base's name for an adapter", ["--served-model-name", "x", "--adapter",
                                                 "x=" + a], ("'x'",)),
             ("an empty NAME", ["--adapter", "=" + a], ("NAME=DIR",))]
    for name, flags, needles in cases:
        r = subprocess.run([z, "serve", "--model", model, "--port", "0", *flags],
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and "listening" not in r.stderr and
              all(n in lines[0] for n in needles), f"refuses {name}",
              f"{r.returncode}: {r.stderr.strip()[-200:]!r}")


def main():
    args, z, w = check_args("--node-dir")
    try:
        _, model = make_tiny_model(z, w)
        adapters = {"a": write_random_adapter(model, f"{w}/adapter_a", seed=3),
                    "b": write_random_adapter(model, f"{w}/adapter_b", seed=4,
                                              targets=("k_proj", "o_proj", "gate_proj"))}
        want = {"base": {p: generate(z, model, p) for p in PROMPTS}}
        for name, adapter in adapters.items():
            merged = merge(z, model, adapter, f"{w}/merged_{name}")
            want[name] = {p: generate(z, merged, p) for p in PROMPTS}
        check_one_adapter(z, w, args.node_dir, model, adapters["a"], want)
        check_several(z, w, args.node_dir, model, adapters, want)
        check_refusals(z, w, model, adapters)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        check(False, "serve adapter checks ran to the end", f"{type(e).__name__}: {e}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
