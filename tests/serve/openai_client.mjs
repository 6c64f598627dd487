// The official OpenAI client against `zerotune serve`: models, a completion, a chat completion,
// both streamed, and an error reply. Writes what it received as JSON; check_serve.py judges it.
// Usage: node openai_client.mjs PLAN.json OUT.json NODE_MODULES_DIR
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [planPath, outPath, nodeModules] = process.argv.slice(2);
const require = createRequire(path.resolve(nodeModules, "..", "package.json"));
const { OpenAI } = require("openai");
const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
const client = new OpenAI({
  baseURL: plan.base_url,
  apiKey: plan.api_key ?? "no-key-needed",
  maxRetries: 0,
  timeout: 300_000,
});

const out = {};
const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const completionRequest = {
  model: plan.model,
  prompt: plan.prompt,
  max_tokens: plan.max_tokens,
  temperature: 0,
};
const completion = await client.completions.create(completionRequest);
out.completion = {
  object: completion.object,
  text: completion.choices[0].text,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
};

const completionStream = await client.completions.create({
  ...completionRequest,
  stream: true,
  stream_options: { include_usage: true },
});
out.completion_stream = { text: "", chunks: 0, usage: null };
for await (const chunk of completionStream) {
  out.completion_stream.chunks += 1;
  for (const choice of chunk.choices) out.completion_stream.text += choice.text;
  if (chunk.usage) out.completion_stream.usage = chunk.usage;
}

const chatRequest = {
  model: plan.model,
  messages: plan.messages,
  max_completion_tokens: plan.chat_max_tokens,
  temperature: 0,
};
const chat = await client.chat.completions.create(chatRequest);
out.chat = {
  role: chat.choices[0].message.role,
  content: chat.choices[0].message.content,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
};

const chatStream = await client.chat.completions.create({ ...chatRequest, stream: true });
out.chat_stream = { role: null, content: "", finish_reason: null };
for await (const chunk of chatStream) {
  for (const choice of chunk.choices) {
    if (choice.delta.role) out.chat_stream.role = choice.delta.role;
    if (choice.delta.content) out.chat_stream.content += choice.delta.content;
    if (choice.finish_reason) out.chat_stream.finish_reason = choice.finish_reason;
  }
}

try {
  await client.completions.create({ ...completionRequest, model: "no-such-model" });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, code: e.code, param: e.param, type: e.type, message: e.message };
}

fs.writeFileSync(outPath, JSON.stringify(out, null, 2));
