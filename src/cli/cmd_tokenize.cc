// `zerotune tokenize` (text JSONL -> token-id JSONL, exactly as training sees the examples) and
// `zerotune tokenizer train` (a Llama-like SentencePiece model from a text JSONL, offline).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "data/chat_example.h"
#include "data/text_jsonl.h"
#include "data/tokenizer.h"
#include "core/json.h"
#include "io/tokenizer_files.h"

namespace zerotune {
namespace {

// Rows tokenised per parallel batch: enough to keep every thread busy, small enough that a
// dataset larger than memory streams through.
constexpr size_t kBatchRows = 4096;

// {"input_ids": [...]} or, for a conversation, {"input_ids": [...], "labels": [...]}.
void append_ids_line(const std::vector<int32_t>& ids, const std::vector<int32_t>& labels,
                     std::string& out) {
  const auto append_list = [&out](const std::vector<int32_t>& values) {
    char buf[16];
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) out += ", ";
      const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), values[i]);
      out.append(buf, r.ptr);
    }
  };
  out += "{\"input_ids\": [";
  append_list(ids);
  if (!labels.empty()) {
    out += "], \"labels\": [";
    append_list(labels);
  }
  out += "]}\n";
}

struct TokenizeTotals {
  int64_t rows = 0, tokens = 0, truncated_rows = 0, longest = 0;
};

// One input row: a text ({"input": ...}) or a conversation ({"messages": [...]}).
struct TokenizeRow {
  std::string text;
  std::optional<json::Value> messages;
  std::string where;  // file:line
};

struct EncodedRow {
  std::vector<int32_t> ids;     // [T]
  std::vector<int32_t> labels;  // [T] a conversation's (assistant turns only); empty for a text
  int64_t full_length = 0;      // ids before the --ctx-len cut
  bool truncated = false;
};

// A conversation as training encodes it (data/chat_example.h), cut to its first ctx_len tokens.
EncodedRow encode_conversation(const ChatTemplate* chat, const Tokenizer& tokenizer,
                               const TokenizeRow& row, int64_t ctx_len,
                               const std::string& tokenizer_source) {
  ZT_CHECK(chat, row.where, ": a {\"messages\": [...]} row needs a chat template, but ",
           tokenizer_source, " has none (tokenizer_config.json \"chat_template\" or ",
           "chat_template.jinja; pass the model folder as --tokenizer)");
  ChatExample ex = encode_chat_example(*chat, tokenizer, *row.messages, 0, row.where);
  EncodedRow e{std::move(ex.ids), std::move(ex.labels), 0, false};
  e.full_length = static_cast<int64_t>(e.ids.size());
  if (ctx_len > 0 && e.full_length > ctx_len) {
    e.ids.resize(static_cast<size_t>(ctx_len));
    e.labels.resize(static_cast<size_t>(ctx_len));
    e.truncated = true;
  }
  return e;
}

// Encodes one batch (texts in parallel, conversations in order) and appends its lines to `file`
// in input order.
void tokenize_batch(const Tokenizer& tokenizer, const ChatTemplate* chat,
                    const std::string& tokenizer_source, const std::vector<TokenizeRow>& rows,
                    int64_t ctx_len, AtomicFile& file, TokenizeTotals& totals) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<EncodedRow> encoded(rows.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i].messages) continue;
    EncodedRow& e = encoded[i];
    e.ids = tokenizer.encode_example(rows[i].text, ctx_len, &e.truncated, &e.full_length);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (rows[i].messages) {
      encoded[i] = encode_conversation(chat, tokenizer, rows[i], ctx_len, tokenizer_source);
    }
  }
  std::string lines;
  for (const EncodedRow& e : encoded) {
    append_ids_line(e.ids, e.labels, lines);
    totals.tokens += static_cast<int64_t>(e.ids.size());
    totals.truncated_rows += e.truncated ? 1 : 0;
    totals.longest = std::max(totals.longest, e.full_length);
  }
  totals.rows += n;
  file.write(lines);
}

// The next row of `reader` into `row`; false at the end of the file.
bool read_tokenize_row(JsonlReader& reader, TokenizeRow& row) {
  json::Value value;
  if (!reader.next(value)) return false;
  row.where = reader.where();
  row.messages.reset();
  if (const json::Value* messages = value.find("messages")) {
    row.messages = *messages;
    return true;
  }
  const json::Value* input = value.find("input");
  ZT_CHECK(input, row.where, ": expected {\"input\": \"...\"} or {\"messages\": [...]} per line");
  row.text = input->as_string(row.where + ": \"input\"");
  return true;
}

Tokenizer load_tokenizer(const Args& args) {
  Tokenizer tokenizer = Tokenizer::load(args.require("--tokenizer"));
  if (args.has("--special_token_path")) {
    tokenizer.add_special_tokens(read_special_tokens_json(args.get("--special_token_path")));
  }
  return tokenizer;
}

int tokenize(int argc, char** argv, int first) {
  Args args("zerotune tokenize",
            "Tokenizes rows as training sees them: the folder's tokenizer (tokenizer.json or\n"
            "tokenizer.model) plus the special tokens (as transformers' add_tokens(tokens,\n"
            "special_tokens=True)); an {\"input\": \"...\"} row as BOS ... EOS, a {\"messages\":\n"
            "[...]} row rendered with the folder's chat template, each cut to its first --ctx-len\n"
            "ids. Writes one {\"input_ids\": [...]} line per row (a conversation's also with\n"
            "\"labels\": its ids on assistant turns, -100 elsewhere), via OUT.tmp, renamed when\n"
            "complete,\n"
            "and prints {\"rows\", \"tokens\" (after the cut), \"truncated_rows\", \"longest\"\n"
            "(ids of the longest row before the cut), \"vocab_size\"} as one JSON line.");
  args.option("--tokenizer", "FILE|DIR",
              "tokenizer.model or tokenizer.json, or a model folder holding one (+ added tokens "
              "and the chat template)")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "{\"tokens\": [...]} added after the model's own tokens")
      .option("--input", "DATA.jsonl",
              "one {\"input\": \"...\"} or {\"messages\": [...]} object per line")
      .option("--output", "IDS.jsonl", "where to write the token ids")
      .option("--ctx-len|--ctx_len", "N", "keep the first N ids of each example; 0: no limit", "0");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string input = args.require("--input");
  const std::string output = args.require("--output");
  const int64_t ctx_len = args.get_int("--ctx-len");
  ZT_CHECK(ctx_len >= 0, "--ctx-len must be >= 0 (0: no limit), got ", ctx_len);
  const Tokenizer tokenizer = load_tokenizer(args);

  const std::string source = args.require("--tokenizer");
  const std::optional<ChatTemplate> chat =
      std::filesystem::is_directory(source) ? ChatTemplate::from_folder(source) : std::nullopt;
  JsonlReader reader(input);
  AtomicFile file(output);
  TokenizeTotals totals;
  std::vector<TokenizeRow> batch(1);
  while (read_tokenize_row(reader, batch.back())) {
    if (batch.size() == kBatchRows) {
      tokenize_batch(tokenizer, chat ? &*chat : nullptr, source, batch, ctx_len, file, totals);
      batch.clear();
    }
    batch.emplace_back();
  }
  batch.pop_back();
  tokenize_batch(tokenizer, chat ? &*chat : nullptr, source, batch, ctx_len, file, totals);
  ZT_CHECK(totals.rows > 0, input,
           ": no rows; expected one {\"input\": ...} or {\"messages\": [...]} object per line");
  file.commit();
  std::printf(
      "{\"rows\": %lld, \"tokens\": %lld, \"truncated_rows\": %lld, \"longest\": %lld, "
      "\"vocab_size\": %lld}\n",
      static_cast<long long>(totals.rows), static_cast<long long>(totals.tokens),
      static_cast<long long>(totals.truncated_rows), static_cast<long long>(totals.longest),
      static_cast<long long>(tokenizer.vocab_size()));
  return 0;
}

SentencePieceModelType parse_model_type(const std::string& name) {
  if (name == "bpe") return SentencePieceModelType::bpe;
  if (name == "unigram") return SentencePieceModelType::unigram;
  fail(str("--model-type must be bpe or unigram, got '", name, "'"));
}

int tokenizer_train(int argc, char** argv, int first) {
  Args args("zerotune tokenizer train",
            "Trains a Llama-like SentencePiece model (byte_fallback, split_digits, dummy prefix,\n"
            "identity normalisation, <unk>=0 <s>=1 </s>=2, no pad) on the \"input\" texts and\n"
            "writes OUT/tokenizer.model with the Hugging Face tokenizer files beside it. The same\n"
            "input, flags and --threads give the same bytes.");
  args.option("--input", "DATA.jsonl", "one {\"input\": \"...\"} object per line")
      .option("--vocab-size|--vocab_size", "N",
              "SentencePiece pieces, bytes and <unk> <s> </s> included")
      .option("--out", "DIR", "output folder (created when missing)")
      .option("--model-type|--model_type", "bpe|unigram", "SentencePiece algorithm", "bpe")
      .option("--seed", "S", "seed of the --max-sentences sample", "0")
      .option("--max-sentences", "N", "train on N texts drawn at random; 0: all", "0")
      .option("--character-coverage", "C",
              "share of characters given pieces; rarer ones fall back to bytes", "0.99995")
      .option("--threads", "N", "training threads (unigram results depend on it)", "1")
      .option("--special_token_path|--special-token-path", "tokens.json",
              "special tokens: cut out of the texts before training and saved as added tokens");
  if (!args.parse(argc, argv, first)) return 0;
  const std::string out_dir = args.require("--out");
  SentencePieceTrainOptions options;
  options.vocab_size = args.get_int("--vocab-size");
  options.model_type = parse_model_type(args.get("--model-type"));
  const int64_t seed = args.get_int("--seed");
  ZT_CHECK(seed >= 0 && seed < (int64_t{1} << 32) - 1, "--seed must be in [0, 2^32 - 2], got ",
           seed);
  options.seed = static_cast<uint32_t>(seed);
  options.max_sentences = args.get_int("--max-sentences");
  options.character_coverage = args.get_double("--character-coverage");
  ZT_CHECK(options.character_coverage > 0 && options.character_coverage <= 1,
           "--character-coverage must be in (0, 1], got ", options.character_coverage);
  const int64_t threads = args.get_int("--threads");
  ZT_CHECK(threads >= 1 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);
  options.num_threads = static_cast<int>(threads);
  if (args.has("--special_token_path")) {
    options.special_tokens = read_special_tokens_json(args.get("--special_token_path"));
  }
  const std::vector<std::string> texts = read_text_jsonl(args.require("--input"), "input");

  TokenizerFiles files;
  files.model_proto = train_sentencepiece(texts, options);
  Tokenizer tokenizer = Tokenizer::from_files(files);
  tokenizer.add_special_tokens(options.special_tokens);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  ZT_CHECK(std::filesystem::is_directory(out_dir), out_dir, ": cannot create the folder",
           ec ? ": " + ec.message() : std::string());
  write_tokenizer_files(out_dir, tokenizer.files());
  std::printf("{\"texts\": %lld, \"base_vocab_size\": %lld, \"vocab_size\": %lld, \"out\": %s}\n",
              static_cast<long long>(texts.size()),
              static_cast<long long>(tokenizer.base_vocab_size()),
              static_cast<long long>(tokenizer.vocab_size()), json::quote(out_dir).c_str());
  return 0;
}

}  // namespace

int cmd_tokenize(int argc, char** argv, int first) {
  return tokenize(argc, argv, first);
}

int cmd_tokenizer(int argc, char** argv, int first) {
  const char* usage =
      "usage: zerotune tokenizer train [flags]   (zerotune tokenizer train --help for flags)\n";
  if (first >= argc) {
    std::fputs(usage, stderr);
    return 2;
  }
  if (!std::strcmp(argv[first], "train")) return tokenizer_train(argc, argv, first + 1);
  if (!std::strcmp(argv[first], "--help") || !std::strcmp(argv[first], "-h")) {
    std::fputs(usage, stdout);
    return 0;
  }
  std::fprintf(stderr, "zerotune tokenizer: unknown subcommand '%s'\n%s", argv[first], usage);
  return 2;
}

}  // namespace zerotune
