// Hugging Face's tokenizers (the Rust library through its Node binding) on texts, as the
// reference for zerotune's tokenizer.json reader (check_hf_tokenizers.py) and its speed
// (bench/tokenizer_bench.sh).
//   node hf_reference.js NODE_MODULES TOKENIZER_JSON TEXTS OUT.jsonl [TOKENS.json]
//   node hf_reference.js NODE_MODULES TOKENIZER_JSON TEXTS --bench REPEAT
// TEXTS holds the texts separated by NUL bytes; each is decoded as Node decodes UTF-8 (an
// ill-formed sequence becomes U+FFFD), which is what a JS string can carry into the library.
// TOKENS.json ({"tokens": [...]}) are added first with addSpecialTokens, as transformers'
// add_tokens(special_tokens=True). OUT gets per text {ids (addSpecialTokens false), with_special
// (true), decoded (decode(with_special, false)), roundtrip (decode(ids, false))} and a last line
// {vocab_size, token_ids}. --bench prints {rows, seconds, rows_per_s, method} for the faster of
// encodeBatch and a loop of encode, the best of REPEAT runs.
'use strict'
const fs = require('fs')
const path = require('path')

function readTexts(file) {
  const all = fs.readFileSync(file)
  const texts = []
  let start = 0
  for (let i = 0; i <= all.length; i++) {
    if (i === all.length || all[i] === 0) {
      if (i < all.length || start < all.length) texts.push(all.subarray(start, i).toString('utf8'))
      start = i + 1
    }
  }
  return texts
}

async function dump(tokenizer, texts, out, tokens) {
  const lines = []
  for (const text of texts) {
    const ids = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds()
    const withSpecial = (await tokenizer.encode(text, null, { addSpecialTokens: true })).getIds()
    const decoded = await tokenizer.decode(withSpecial, false)
    const roundtrip = await tokenizer.decode(ids, false)
    lines.push(JSON.stringify({ ids, with_special: withSpecial, decoded, roundtrip }))
  }
  const tokenIds = {}
  for (const t of tokens) tokenIds[t] = tokenizer.tokenToId(t)
  lines.push(JSON.stringify({ vocab_size: tokenizer.getVocabSize(true), token_ids: tokenIds }))
  fs.writeFileSync(out, lines.join('\n') + '\n')
}

async function bench(tokenizer, texts, repeat) {
  const timed = async (method, run) => {
    let best = Infinity
    for (let r = 0; r < repeat; r++) {
      const start = process.hrtime.bigint()
      await run()
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9)
    }
    return { rows: texts.length, seconds: best, rows_per_s: texts.length / best, method }
  }
  const batch = await timed('encodeBatch', () => tokenizer.encodeBatch(texts))
  const loop = await timed('encode loop', async () => {
    for (const text of texts) await tokenizer.encode(text)
  })
  console.log(JSON.stringify(batch.seconds <= loop.seconds ? batch : loop))
}

async function main() {
  const [nodeModules, tokenizerJson, textsFile, out, extra] = process.argv.slice(2)
  const { Tokenizer } = require(path.resolve(nodeModules, 'tokenizers'))
  const tokenizer = Tokenizer.fromFile(tokenizerJson)
  const texts = readTexts(textsFile)
  if (out === '--bench') return bench(tokenizer, texts, Number(extra || 3))
  const tokens = extra ? JSON.parse(fs.readFileSync(extra, 'utf8')).tokens : []
  if (tokens.length) tokenizer.addSpecialTokens(tokens)
  await dump(tokenizer, texts, out, tokens)
}

main().catch((error) => {
  console.error(`hf_reference.js: ${error.stack || error}`)
  process.exit(1)
})
