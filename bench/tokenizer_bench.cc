// Tokenizes texts with zerotune's Tokenizer: timed (rows/s, for comparison with Hugging Face's
// tokenizers library through its npm binding in the same run: bench/tokenizer_bench.sh), or dumped
// id for id (for the reference check tests/tokenizers/check_hf_tokenizers.py).
//
//   tokenizer_bench --tokenizer DIR|FILE --texts FILE [--special-token-path tokens.json]
//                   [--dump OUT.jsonl] [--threads 2] [--repeat 3]
//
// --texts holds the texts separated by NUL bytes, as raw bytes (invalid UTF-8 included). --dump
// writes per text {"ids": encode(text), "with_special": encode_with_special_tokens(text),
// "example": encode_example(text, 0), "decoded": decode(with_special, keep BOS/EOS), "roundtrip":
// decode(ids, keep BOS/EOS)} and a last
// line {"vocab_size", "bos_id", "eos_id", "pad_id", "token_ids": {token: id}} for the tokens of
// --special-token-path. Otherwise encodes every text --repeat times on --threads threads and
// prints {"rows", "tokens", "seconds" (best repeat), "rows_per_s"}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_flags.h"

#include "core/json.h"
#include "data/tokenizer.h"

namespace zerotune {
namespace {

std::vector<std::string> read_texts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZT_CHECK(in, path, ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string all = buffer.str();
  std::vector<std::string> texts;
  size_t start = 0;
  while (start <= all.size()) {
    const size_t end = std::min(all.find('\0', start), all.size());
    texts.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  if (!all.empty() && all.back() == '\0') texts.pop_back();
  return texts;
}

json::Value id_array(const std::vector<int32_t>& ids) {
  json::Value out = json::Value::array();
  for (const int32_t id : ids) out.push_back(int64_t{id});
  return out;
}

void dump(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
          const std::vector<std::string>& tokens, const std::string& path) {
  std::string out;
  for (const std::string& text : texts) {
    json::Value line = json::Value::object();
    const std::vector<int32_t> with_special = tokenizer.encode_with_special_tokens(text);
    const std::vector<int32_t> ids = tokenizer.encode(text);
    line.set("ids", id_array(ids));
    line.set("with_special", id_array(with_special));
    line.set("example", id_array(tokenizer.encode_example(text, 0)));
    line.set("decoded", tokenizer.decode(with_special, BosEos::keep));
    line.set("roundtrip", tokenizer.decode(ids, BosEos::keep));
    out += line.dump() + "\n";
  }
  json::Value last = json::Value::object();
  last.set("vocab_size", tokenizer.vocab_size());
  last.set("bos_id", int64_t{tokenizer.bos_id()});
  last.set("eos_id", int64_t{tokenizer.eos_id()});
  last.set("pad_id", int64_t{tokenizer.pad_id()});
  json::Value ids = json::Value::object();
  for (const std::string& token : tokens) ids.set(token, int64_t{tokenizer.piece_to_id(token)});
  last.set("token_ids", std::move(ids));
  out += last.dump() + "\n";
  std::ofstream file(path, std::ios::binary);
  file << out;
  ZT_CHECK(file.good(), path, ": write failed");
}

// Seconds to encode every text once, rows split evenly over `threads`; *tokens counts the ids.
double time_encode(const Tokenizer& tokenizer, const std::vector<std::string>& texts, int threads,
                   int64_t* tokens) {
  std::vector<int64_t> counts(static_cast<size_t>(threads), 0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (size_t i = static_cast<size_t>(w); i < texts.size(); i += static_cast<size_t>(threads)) {
        counts[static_cast<size_t>(w)] +=
            static_cast<int64_t>(tokenizer.encode_with_special_tokens(texts[i]).size());
      }
    });
  }
  for (std::thread& t : workers) t.join();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  *tokens = 0;
  for (const int64_t c : counts) *tokens += c;
  return elapsed.count();
}

int run(int argc, char** argv) {
  BenchFlags flags;
  flags.values = {{"--tokenizer", ""}, {"--texts", ""},    {"--special-token-path", ""},
                  {"--dump", ""},      {"--threads", "2"}, {"--repeat", "3"}};
  if (!flags.parse("tokenizer_bench", argc, argv)) return 2;
  Tokenizer tokenizer = Tokenizer::load(flags.values["--tokenizer"]);
  std::vector<std::string> tokens;
  if (!flags.values["--special-token-path"].empty()) {
    tokens = read_special_tokens_json(flags.values["--special-token-path"]);
    tokenizer.add_special_tokens(tokens);
  }
  const std::vector<std::string> texts = read_texts(flags.values["--texts"]);
  if (!flags.values["--dump"].empty()) {
    dump(tokenizer, texts, tokens, flags.values["--dump"]);
    return 0;
  }
  const int threads = std::max(1, std::atoi(flags.values["--threads"].c_str()));
  const int repeat = std::max(1, std::atoi(flags.values["--repeat"].c_str()));
  double best = 1e300;
  int64_t total = 0;
  for (int r = 0; r < repeat; ++r)
    best = std::min(best, time_encode(tokenizer, texts, threads, &total));
  std::printf("{\"rows\": %zu, \"tokens\": %lld, \"seconds\": %.4f, \"rows_per_s\": %.1f}\n",
              texts.size(), static_cast<long long>(total), best,
              static_cast<double>(texts.size()) / best);
  return 0;
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  try {
    return zerotune::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
}
