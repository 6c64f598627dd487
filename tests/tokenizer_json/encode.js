// Encodes and decodes texts with Hugging Face's tokenizers (the Rust library through its Node
// binding) from a tokenizer.json, for check_tokenizer_json.py.
//   node encode.js NODE_MODULES TOKENIZER_JSON IN.jsonl OUT.jsonl
// IN has one {"input": text} per line. OUT gets, per line:
//   ids: encode(text) with the post-processor (add_special_tokens, as AutoTokenizer encodes);
//   decoded: decode(ids without the leading id, skip_special_tokens=true);
//   by_segment: the ids after the first split at special tokens, each run of other ids decoded on
//     its own and each special token written as its content, joined;
// and a last line {"vocab_size": getVocabSize(true), "token_ids": {token: tokenToId(token)}} for
// the added tokens listed in tokenizer.json.
'use strict'
const fs = require('fs')
const path = require('path')

async function main() {
  const [nodeModules, tokenizerJson, input, output] = process.argv.slice(2)
  const { Tokenizer } = require(path.resolve(nodeModules, 'tokenizers'))
  const tokenizer = Tokenizer.fromFile(tokenizerJson)
  const added = JSON.parse(fs.readFileSync(tokenizerJson, 'utf8')).added_tokens
  const specialContent = new Map(added.filter((t) => t.special).map((t) => [t.id, t.content]))
  const lines = []
  for (const line of fs.readFileSync(input, 'utf8').split('\n')) {
    if (!line) continue
    const text = JSON.parse(line).input
    const ids = (await tokenizer.encode(text)).getIds()
    const body = ids.slice(1)
    const decoded = await tokenizer.decode(body, true)
    let bySegment = ''
    let run = []
    for (const id of body.concat([-1])) {
      if (id >= 0 && !specialContent.has(id)) {
        run.push(id)
        continue
      }
      if (run.length) bySegment += await tokenizer.decode(run, false)
      run = []
      if (id >= 0) bySegment += specialContent.get(id)
    }
    lines.push(JSON.stringify({ ids, decoded, by_segment: bySegment }))
  }
  const tokenIds = {}
  for (const t of added) tokenIds[t.content] = tokenizer.tokenToId(t.content)
  lines.push(JSON.stringify({ vocab_size: tokenizer.getVocabSize(true), token_ids: tokenIds }))
  fs.writeFileSync(output, lines.join('\n') + '\n')
}

main().catch((error) => {
  console.error(`encode.js: ${error.stack || error}`)
  process.exit(1)
})
