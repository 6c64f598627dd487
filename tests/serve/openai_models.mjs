// The official OpenAI client against a `zerotune serve` of several models: models.list, then for
// each planned request a completion (whole and streamed) to the model it names, then a request
// to a model the server does not serve. Writes what it received as JSON; the Python check
// judges it. Usage: node openai_models.mjs PLAN.json OUT.json NODE_MODULES_DIR
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [planPath, outPath, nodeModules] = process.argv.slice(2);
const require = createRequire(path.resolve(nodeModules, "..", "package.json"));
const { OpenAI } = require("openai");
const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
const client = new OpenAI({ baseURL: plan.base_url, apiKey: "no-key-needed", maxRetries: 0,
                            timeout: 300_000 });

const out = { models: (await client.models.list()).data.map((m) => m.id), completions: [] };
for (const request of plan.requests) {
  const body = { model: request.model, prompt: request.prompt, max_tokens: request.max_tokens,
                 temperature: 0 };
  const whole = await client.completions.create(body);
  let streamed = "";
  for await (const chunk of await client.completions.create({ ...body, stream: true })) {
    for (const choice of chunk.choices) streamed += choice.text;
  }
  out.completions.push({ model: whole.model, text: whole.choices[0].text, streamed });
}
try {
  await client.completions.create({ model: plan.unknown_model, prompt: "x", max_tokens: 2 });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, code: e.code, param: e.param, message: e.message };
}
fs.writeFileSync(outPath, JSON.stringify(out, null, 2));
