#!/usr/bin/python3
"""Checks `zerotune debug chat-template` byte for byte against Python's jinja2.

  check_chat_template.py --zerotune build/zerotune --workdir DIR [--shared ../shared]

The reference is Debian's python3-jinja2 configured as transformers' apply_chat_template
configures it: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
extensions=[loopcontrols]), `tojson` replaced by json.dumps(ensure_ascii=False, ...), the
globals raise_exception(message) (raising TemplateError(message)) and strftime_now, and the
render call render(messages=..., tools=None, documents=None, add_generation_prompt=...,
**special tokens, **extra variables).

Templates: the published chat templates of Llama-2-chat, Llama-3-8B-Instruct, Mistral-7B-Instruct
(v0.1 as first published, v0.1's 2024 revision with system messages, v0.2 and v0.3 with tools),
Zephyr-7b-beta, Qwen2.5-Instruct and ChatML (test data written here from each model's
tokenizer_config.json, kept in its JSON spelling), a Qwen2.5-style template of our own with tools
and tool results (qwen-style-tools), the Llama-3.1-8B-Instruct template read from
../shared/data/llama3.1-tokenizer (skipped with a SKIP line when ../shared is absent), and a
table of small templates for the interpreter's pieces (whitespace control, loops, filters,
tests, macros, Python semantics of str/list/dict). Each is rendered over many message lists:
with and without a system message, 1-6 turns, empty content, unicode, newlines and spaces at
the ends, add_generation_prompt true and false, tool calls, and roles the template rejects with
raise_exception (our error must carry jinja2's message). Prints one line per template and ends
with `N passed, M failed`; exits 1 when anything failed.
"""

import argparse
import json
import os
import random
import subprocess
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import Report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# Each template as its tokenizer_config.json spells it (a JSON string literal).
LLAMA2_CHAT = r'''"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"'''

LLAMA3_INSTRUCT = r'''"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"'''

MISTRAL_V01 = r'''"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"'''

MISTRAL_V01_SYSTEM = r'''"{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"'''

MISTRAL_V02 = r'''"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"'''

MISTRAL_V03 = r'''"{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n            {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- \"[AVAILABLE_TOOLS] [\" }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n                {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}\n                        {{- \", \" }}\n                    {%- endif %}\n                {%- endfor %}\n                {{- \"}}\" }}\n                {%- if not loop.last %}\n                    {{- \", \" }}\n                {%- else %}\n                    {{- \"]\" }}\n                {%- endif %}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n            {%- endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- \"[TOOL_CALLS] [\" }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n                {{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n        {%- endif %}\n        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n"'''

ZEPHYR_BETA = r'''"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"'''

QWEN25_INSTRUCT = r'''"{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"'''

CHATML = r'''"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"'''

# A Qwen2.5-style template written for this test (not a model's): the same constructs as
# Qwen2.5-Instruct's (tools rendered with tojson, a default system message, im_start/im_end turns,
# tool calls whose entries may wrap a `function`, runs of tool results grouped into one turn by
# looking at the neighbouring messages), arranged differently.
QWEN_STYLE_TOOLS = json.dumps("""\
{%- set default_system = 'You are a careful assistant who shows its working.' %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {{- messages[0]['content'] if messages[0]['role'] == 'system' else default_system }}
    {{- '\n\n# Functions\n<functions>' }}
    {%- for tool in tools %}
        {{- '\n' + (tool | tojson) }}
    {%- endfor %}
    {{- '\n</functions>\nTo use one, reply <call>{"name": ..., "arguments": ...}</call>.<|im_end|>\n' }}
{%- elif messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\n' + default_system + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == 'system' and loop.first %}
    {%- elif message.role == 'assistant' and message.tool_calls %}
        {{- '<|im_start|>assistant' }}
        {%- if message.content %}{{- '\n' + message.content }}{%- endif %}
        {%- for call in message.tool_calls %}
            {%- if call.function is defined %}{%- set call = call.function %}{%- endif %}
            {{- '\n<call>{"name": "' + call.name + '", "arguments": ' + (call.arguments | tojson) + '}</call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\n<result>\n' + message.content + '\n</result>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\n' }}{%- endif %}
    {%- else %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
""")

# name -> (template as JSON, bos, eos, whether it takes tools and tool calls)
MODEL_TEMPLATES = {
    "llama2-chat": (LLAMA2_CHAT, "<s>", "</s>", False),
    "llama3-instruct": (LLAMA3_INSTRUCT, "<|begin_of_text|>", "<|eot_id|>", False),
    "mistral-v0.1": (MISTRAL_V01, "<s>", "</s>", False),
    "mistral-v0.1-system": (MISTRAL_V01_SYSTEM, "<s>", "</s>", False),
    "mistral-v0.2": (MISTRAL_V02, "<s>", "</s>", False),
    "mistral-v0.3": (MISTRAL_V03, "<s>", "</s>", True),
    "zephyr-7b-beta": (ZEPHYR_BETA, "<s>", "</s>", False),
    "qwen2.5-instruct": (QWEN25_INSTRUCT, None, "<|im_end|>", True),
    "qwen-style-tools": (QWEN_STYLE_TOOLS, None, "<|im_end|>", True),
    "chatml": (CHATML, "<s>", "<|im_end|>", False),
}

CONTENTS = [
    "Hello",
    "",
    "  spaces at both ends  ",
    "\n\nnewlines around\n",
    "line one\nline two\r\nline three",
    "unicode: é ß 中文 русский 🎉",
    "\u3000ideographic and\xa0no-break spaces\u3000",
    "quotes ' \" and a backslash \\ here",
    "{{ not a tag }} {% neither %} {# nor #}",
    "<s>[INST] special-looking tokens [/INST]</s>",
    "\ttab first",
    "x" * 300,
]
ROLES_REJECTED = ["narrator", "function", "tool"]


def transformers_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


class Checker:
    """Renders cases with jinja2 and with one `--batch` run of ours, and compares them."""

    def __init__(self, zerotune, workdir):
        self.zerotune = zerotune
        self.workdir = workdir
        self.env = transformers_environment()

    def folder(self, name, config):
        path = os.path.join(self.workdir, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False)
        return path

    def reference(self, template, config, messages, add_generation_prompt, variables):
        """("text", str), ("raised", raise_exception's message) or ("error", description)."""
        args = dict(messages=messages, tools=None, documents=None,
                    add_generation_prompt=add_generation_prompt)
        args.update({k: config[k] for k in ("bos_token", "eos_token") if config.get(k) is not None})
        args.update(variables)
        try:
            return "text", template.render(**args)
        except jinja2.exceptions.TemplateError as e:
            # raise_exception raises TemplateError itself; jinja2's own errors are subclasses.
            return ("raised" if type(e) is jinja2.exceptions.TemplateError else "error"), str(e)
        except Exception as e:  # TypeError, ValueError, ... inside the template
            return "error", f"{type(e).__name__}: {e}"

    def run_batch(self, folder, cases):
        path = os.path.join(folder, "cases.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for messages, agp, variables in cases:
                f.write(json.dumps({"messages": messages, "add_generation_prompt": agp,
                                    "variables": variables}, ensure_ascii=False) + "\n")
        r = subprocess.run([self.zerotune, "debug", "chat-template", "--folder", folder,
                            "--batch", path], capture_output=True)
        return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")

    def compare_many(self, folder, config, cases):
        """Descriptions of the cases where ours differs from jinja2 (empty when none)."""
        try:
            template = self.env.from_string(config["chat_template"])
        except jinja2.exceptions.TemplateSyntaxError as e:
            rc, out, err = self.run_batch(folder, cases)
            if rc == 1 and len(err.strip().splitlines()) == 1 and f":{e.lineno}: " in err:
                return []
            return [f"jinja2 refuses the template at line {e.lineno} ({e}); we exited {rc}: {err!r}"]
        rc, out, err = self.run_batch(folder, cases)
        if rc != 0:
            return [f"the batch run failed ({rc}): {err.strip()}"]
        results = [json.loads(line) for line in out.split("\n") if line]
        if len(results) != len(cases):
            return [f"{len(cases)} cases but {len(results)} results"]
        problems = []
        for (messages, agp, variables), ours in zip(cases, results):
            kind, want = self.reference(template, config, messages, agp, variables)
            case = f"messages={json.dumps(messages, ensure_ascii=False)[:300]} agp={agp}"
            if kind not in ours:
                problems.append(f"{case}: jinja2 gave {kind} {want[:300]!r}, we gave {ours}")
            elif kind != "error" and ours[kind] != want:
                problems.append(f"{case}:\n  jinja2: {want!r}\n  ours:   {ours[kind]!r}")
        return problems


def conversation(rng, turns, system, rejected_role=None, broken_alternation=False):
    messages = []
    if system:
        messages.append({"role": "system", "content": rng.choice(CONTENTS)})
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": rng.choice(CONTENTS)})
    if rejected_role:
        messages.insert(rng.randrange(len(messages) + 1), {"role": rejected_role, "content": "odd"})
    if broken_alternation and len(messages) >= 2:
        messages[-1]["role"] = messages[-2]["role"]
    return messages


def message_lists(seed=1234):
    rng = random.Random(seed)
    lists = [[{"role": "user", "content": c}] for c in CONTENTS]
    lists.append([{"role": "system", "content": "only a system message"}])
    lists.append([{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}])
    for turns in range(1, 7):
        for system in (False, True):
            lists.append(conversation(rng, turns, system))
            lists.append(conversation(rng, turns, system))
    for role in ROLES_REJECTED:
        lists.append(conversation(rng, 3, False, rejected_role=role))
    lists.append(conversation(rng, 4, True, broken_alternation=True))
    lists.append(conversation(rng, 3, False, broken_alternation=True))
    lists.append([{"role": "user", "content": "a"}, {"role": "system", "content": "late system"},
                  {"role": "assistant", "content": "b"}])
    return lists


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city, e.g. \"Oslo\" or 東京",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
        "required": ["city"]}}}]


def tool_conversations():
    call = {"id": "call00001", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}}
    return [
        [{"role": "user", "content": "Weather in Oslo?"}],
        [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather?"}],
        [{"role": "user", "content": "Weather in Oslo?"},
         {"role": "assistant", "content": None, "tool_calls": [call]},
         {"role": "tool", "tool_call_id": "call00001", "content": "{\"temp\": -3.5}"},
         {"role": "assistant", "content": "It is -3.5 degrees."},
         {"role": "user", "content": "Thanks"}],
        [{"role": "user", "content": "Two cities"},
         {"role": "assistant", "content": "", "tool_calls": [call, dict(call, id="call00002")]},
         {"role": "tool", "tool_call_id": "call00001", "content": "1"},
         {"role": "tool", "tool_call_id": "call00002", "content": "2"}],
        [{"role": "user", "content": "bad id"},
         {"role": "assistant", "content": None, "tool_calls": [dict(call, id="short")]}],
    ]


def check_template(report, checker, name, config, takes_tools):
    folder = checker.folder(name, config)
    conversations = [(m, {}) for m in message_lists()]
    if takes_tools:
        conversations += [(m, {"tools": TOOLS}) for m in tool_conversations()]
        conversations += [(m, {}) for m in tool_conversations()]
    cases = [(m, agp, v) for m, v in conversations for agp in (False, True)]
    failures = checker.compare_many(folder, config, cases)
    detail = f"{len(cases)} renders" if not failures else f"{len(failures)}/{len(cases)} differ; first: {failures[0]}"
    report.check(not failures, name, detail)


# Small templates for the interpreter's pieces: (name, template, variables).
SNIPPETS = [
    ("whitespace control", "a  {{- ' b ' -}}  c\n  {%- if true -%}  d  {%- endif %}\n e", {}),
    ("trim_blocks", "{% if true %}\nline\n{% endif %}\nafter\n", {}),
    ("lstrip_blocks", "  {% if true %}\n  x\n    {% endif %}\n\t{# c #}\ny", {}),
    ("plus disables lstrip", "  {%+ if true %}x{% endif +%}\ny", {}),
    ("raw", "{% raw %}{{ not }}{% endraw %}\n{%- raw -%}  {% x %}  {%- endraw %}!", {}),
    ("comments", "a{# one #}\nb {#- two -#} c{# three\nlines #}\nd", {}),
    ("crlf source", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("loop variables", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
     "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}|{% endfor %}", {"xs": [3, 4, 5]}),
    ("for if else", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}"
     "{% for y in [] %}{% else %}empty{% endfor %}", {"xs": [1, 2, 3]}),
    ("break continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
     "{% if x > 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop scoping", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 10 %}{{ x }}"
     "{% endfor %}{{ x }}{% if true %}{% set x = 5 %}{% endif %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(n=0, s='') %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
     "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }} {{ ns }}", {}),
    ("tuple unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% set a, b = 1, 2 %}{{ a + b }}",
     {"d": {"x": 1, "y": [1, 2]}}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
     "{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}", {}),
    ("macro varargs caller", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{{ caller() }}{% endmacro %}"
     "{% call m(1, 2, k=3) %}body{% endcall %}", {}),
    ("set block filter", "{% set x | upper %}abc{{ 1 }}{% endset %}{{ x }}{% filter title %}hello world{% endfilter %}", {}),
    ("printing values", "{{ none }} {{ true }} {{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1e-05 }} {{ 10 / 4 }} "
     "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ [1, 'a', none, [true]] }} {{ (1,) }} "
     "{{ {'a': 1, 2: 'b'} }} {{ 'it\\'s' }} {{ ['it\\'s', \"q\\\"\"] }} {{ undefined_name }}", {}),
    ("string ops", "{{ 'a' + 'b' ~ 1 }} {{ 'ab' * 3 }} {{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'héllo'[1] }}"
     " {{ 'x' in 'xyz' }} {{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(none, 1) }}"
     " {{ 'abc'.upper() }} {{ 'ÀÉÎ straße'.lower() }} {{ 'hello world'.title() }} {{ 'xAb'.capitalize() }}"
     " {{ '  pad '.strip() }}|{{ 'xxpadxx'.strip('x') }}|{{ '  l'.lstrip() }}|{{ 'r  '.rstrip() }}"
     " {{ 'abc'.startswith('a') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'a-b'.replace('-', '+') }}"
     " {{ '%s=%d' % ('x', 3) }} {{ '{} and {}'.format(1, 'b') }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }}", {}),
    ("unicode strip", "[{{ s | trim }}] [{{ s.strip() }}] {{ s | length }}", {"s": "\u3000\xa0 x é\u2003\n"}),
    ("filters", "{{ xs | join(', ') }} {{ xs | first }} {{ xs | last }} {{ xs | length }} {{ xs | sort | list }}"
     " {{ xs | reverse | list }} {{ xs | sum }} {{ xs | min }} {{ xs | max }} {{ xs | unique | list }}"
     " {{ 'aBc' | upper }} {{ 'aBc' | lower }} {{ 'hello wORLD-x' | title }} {{ 'hELLO' | capitalize }}"
     " {{ 3.7 | int }} {{ '42' | int }} {{ 'x' | int(7) }} {{ '2.5' | float }} {{ 2.5 | round }} {{ 2.567 | round(2) }}"
     " {{ none | default('d') }} {{ undefined_name | default('d') }} {{ '' | default('e', true) }}"
     " {{ 'a\\nb\\n\\nc' | indent(2) }} {{ 'a\\nb' | indent(2, true) }} {{ 'x' | replace('x', 'y') }}"
     " {{ 5 | string }} {{ -3 | abs }} {{ ['b', 'A', 'c'] | sort }} {{ 'abc' | list }}",
     {"xs": [3, 1, 2, 3]}),
    ("selectattr map", "{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }}"
     " {{ ms | rejectattr('role', 'eq', 'user') | list | length }} {{ ms | map(attribute='missing', default='-') | list }}"
     " {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }}"
     " {{ ['a', 'b'] | map('upper') | list }} {{ ms | selectattr('content') | list | length }}"
     " {{ ms | map(attribute='role') | unique | list }} {{ d | dictsort }} {{ d | items | list }}",
     {"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": ""},
             {"role": "user", "content": "c"}], "d": {"b": 2, "a": 1}}),
    ("tojson", "{{ v | tojson }}\n{{ v | tojson(indent=2) }}\n{{ v | tojson(sort_keys=true) }}\n"
     "{{ v | tojson(separators=(',', ':')) }}\n{{ v | tojson(ensure_ascii=true) }}\n{{ 'é\"\\n<>&\\u2028' | tojson }}",
     {"v": {"s": "é\"\\\n\t<tag>&'", "n": None, "t": True, "i": -5, "f": 0.5, "big": 1e16, "l": [], "d": {},
            "nested": [{"z": 1, "a": [1.25, "x"]}], "emoji": "🎉"}}),
    ("tests", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ 1 is number }}"
     " {{ true is boolean }} {{ 1 is integer }} {{ 1.0 is float }} {{ 's' is string }} {{ {} is mapping }}"
     " {{ [] is sequence }} {{ 's' is iterable }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }}"
     " {{ 'a' is in 'abc' }} {{ 1 is eq 1 }} {{ 2 is gt 1 }} {{ 'abc' is lower }} {{ 'ABC' is upper }}"
     " {{ x is not none }} {{ none is sameas none }} {{ y is sequence }} {{ y is iterable }} {{ 1 is string }}",
     {"x": 1}),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}"
     " {{ 1 != 2 }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }} {{ none == none }} {{ y == none }}", {}),
    ("logic and ternary", "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ '' or [] }} {{ not 0 }} {{ 'a' if 0 else 'b' }}"
     " {{ 'c' if 1 }}|{{ 'd' if 0 }}| {{ -1 | abs }} {{ -(2 + 3) }} {{ 2 + 3 * 4 ** 2 }}", {}),
    ("subscripts", "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[::2] }} {{ xs[10] }}|{{ d.a }}"
     " {{ d['a'] }} {{ d.missing }}|{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }}"
     " {{ d['items'] }} {{ xs.0 }}", {"xs": [1, 2, 3, 4], "d": {"a": 1, "items": "key wins?"}}),
    ("dict iteration", "{% for k in d %}{{ k }}{% endfor %} {% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}"
     " {% for k, v in d | dictsort(reverse=true) %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("raise_exception", "{% if x > 1 %}{{ raise_exception('x is ' ~ x) }}{% endif %}ok", {"x": 2}),
    ("undefined attribute error", "{{ missing.attr }}", {}),
    ("type error", "{{ 'a' + 1 }}", {}),
    ("syntax error", "{% if %}{% endif %}", {}),
    ("unknown filter", "{{ x | no_such_filter }}", {}),
    ("unclosed block", "{% for x in y %}", {}),
    ("syntax error on line 3", "line one\n{{ 'a' }}\n{{ 1 + }}\n", {}),
    ("with and print", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{% print 'p' %}", {}),
    ("string escapes", "{{ '\\x41\\u00e9\\t|\\101|\\q|\\\\' }} {{ \"a\" 'b' }} {{ 0x1F }} {{ 1_000 }} {{ 1.5e3 }}", {}),
    ("adjacent tags", "{%- for m in ms -%}\n  [{{ m }}]\n{%- endfor -%}\n  end  ", {"ms": ["a", "b"]}),
    ("trailing newline kept once", "{{ 'x' }}\n\n", {}),
    ("is test binding", "{{ x is defined and x > 0 }} {{ not x is none }} {{ -x | abs }}", {"x": 3}),
    ("dict views and repr", "{{ d.items() }}|{{ d.keys() }}|{{ d.values() | list }}|{{ d.items() | length }}"
     "|{{ ['é', '\\x7f', '\\u200b', \"a'b\", '\\n'] }}|{{ 1.5e-7 }} {{ 123456789012345678.0 }} {{ -0.0 }} {{ 1e15 }}",
     {"d": {"role": "user", "n": 1}}),
    ("arithmetic", "{{ 10 // 3 }} {{ -10 // 3 }} {{ 10 % -3 }} {{ 10.5 // 2 }} {{ 7.5 % 2 }} {{ 2 ** -1 }}"
     " {{ 1 + true }} {{ 3 * 'ab' }} {{ [0] * 3 }} {{ -2 ** 2 }} {{ 0.1 * 3 }} {{ 1e300 * 1e10 }}", {}),
    ("undefined operands", "{{ messages[5] }}|{{ y | trim }}|{{ y | upper }}|{{ y | length }}|{{ y | list }}"
     "|{{ y | join }}|{{ y | default }}|{{ none | trim }}|{{ 'a' if false }}|{{ loop }}|{{ x.y.z }}",
     {"x": {"y": {"z": "deep"}}}),
    ("nested loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}"
     "{{ loop.index }};{% endfor %}{% for m in ['a', 'b', 'c'] %}{{ loop.cycle('+', '-') }}{{ loop.nextitem }}{% endfor %}", {}),
    ("whitespace edge cases", "a\n  {#- c #}  b|{{ 'a' }}  \n  {% if true %}z{% endif %}|x {% if true %}\ny{% endif %}"
     "|{% if true %}   \nx{% endif %}|  {# c #}\n  {{ 'v' }}\n  {% set a = 1 %}\n  end|{%- raw -%}   a   {%- endraw %}"
     "|\u3000{%- if true %}x{% endif %}|{#-\nmulti\n-#}\n\nq|{%- if true -%}\n\n\n   x\n\n{%- endif -%}\n\n   y", {}),
    ("delimiters in strings", "{{ '{{' }}{{ \"}}\" }}{{ {'a': {'b': 1}} }}{{ x }}}", {"x": 1}),
    ("generator truthiness", "{{ 'yes' if [] | select else 'no' }} {{ [] | list | length }}", {}),
]


# Snippets on which jinja2 itself fails: ours must fail too (the rest must render).
FAILING_SNIPPETS = {"raise_exception", "undefined attribute error", "type error", "syntax error",
                    "unknown filter", "unclosed block", "syntax error on line 3"}


def check_snippets(report, checker):
    failures = []
    for i, (name, template, variables) in enumerate(SNIPPETS):
        config = {"chat_template": template, "bos_token": "<s>", "eos_token": "</s>"}
        folder = checker.folder(f"snippet-{i}", config)
        try:
            kind, _ = checker.reference(checker.env.from_string(template), config, [], False, variables)
        except jinja2.exceptions.TemplateSyntaxError:
            kind = "error"
        if (kind != "text") != (name in FAILING_SNIPPETS):
            failures.append(f"{name}: jinja2 gave {kind}, which this table does not expect")
        failures += [f"{name}: {p}" for p in checker.compare_many(folder, config, [([], False, variables)])]
    for f in failures:
        print("      " + f)
    report.check(not failures, "interpreter pieces", f"{len(SNIPPETS)} templates"
                 if not failures else f"{len(failures)}/{len(SNIPPETS)} differ")


def check_command_line(report, checker):
    """The one-render form: text on stdout exactly, errors as one line and exit status 1."""
    config = {"chat_template": json.loads(LLAMA2_CHAT), "bos_token": "<s>", "eos_token": "</s>"}
    folder = checker.folder("command-line", config)
    template = checker.env.from_string(config["chat_template"])

    def run(messages, agp):
        path = os.path.join(folder, "messages.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(messages, f, ensure_ascii=False)
        cmd = [checker.zerotune, "debug", "chat-template", "--folder", folder, "--messages", path]
        r = subprocess.run(cmd + (["--add-generation-prompt"] if agp else []), capture_output=True)
        return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")

    good = [{"role": "system", "content": "S "}, {"role": "user", "content": "é\n"}]
    rc, out, err = run(good, True)
    want = checker.reference(template, config, good, True, {})[1]
    report.check(rc == 0 and out == want.encode("utf-8"), "command line: render", repr(out[:80]))
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    rc, out, err = run(bad, False)
    message = checker.reference(template, config, bad, False, {})[1]
    report.check(rc == 1 and out == b"" and len(err.strip().splitlines()) == 1 and
                 err.strip().endswith("raise_exception: " + message), "command line: raise", err.strip())
    rc, out, err = run({"role": "user"}, False)
    report.check(rc == 1 and "messages must be a JSON array" in err, "command line: bad input", err.strip())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--zerotune", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "shared"))
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    print(f"jinja2 {jinja2.__version__}")
    report = Report(width=24)
    checker = Checker(args.zerotune, args.workdir)

    for name, (template_json, bos, eos, takes_tools) in MODEL_TEMPLATES.items():
        config = {"chat_template": json.loads(template_json), "bos_token": bos, "eos_token": eos}
        check_template(report, checker, name, config, takes_tools)

    llama31 = os.path.join(args.shared, "data", "llama3.1-tokenizer", "tokenizer_config.json")
    if os.path.exists(llama31):
        with open(llama31, encoding="utf-8") as f:
            full = json.load(f)
        config = {k: full[k] for k in ("chat_template", "bos_token", "eos_token")}
        check_template(report, checker, "llama3.1-instruct", config, True)
    else:
        print(f"SKIP  llama3.1-instruct          {llama31} is absent (no ../shared checkout)")

    check_snippets(report, checker)
    check_command_line(report, checker)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
