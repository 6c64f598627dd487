// Command-line flags of the benchmark programs: `--name value` pairs with defaults, and switches
// that take no value. Header-only (three small programs include it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "core/check.h"
#include "model/config.h"

namespace zerotune {

struct BenchFlags {
  std::map<std::string, std::string> values;  // every known flag, with its default
  std::set<std::string> switches;             // the known switches that were given

  // Parses argv over the defaults in `values` and the allowed `known_switches`; false (after
  // naming it on stderr) for an unknown flag or a missing value.
  bool parse(const char* program, int argc, char** argv,
             const std::set<std::string>& known_switches = {}) {
    for (int i = 1; i < argc; ++i) {
      const std::string key = argv[i];
      if (known_switches.count(key)) {
        switches.insert(key);
      } else if (values.count(key) && i + 1 < argc) {
        values[key] = argv[++i];
      } else {
        std::fprintf(stderr, "%s: unknown or incomplete flag '%s' (see the file's header)\n",
                     program, key.c_str());
        return false;
      }
    }
    return true;
  }
  bool has(const std::string& key) const { return switches.count(key) > 0; }
  std::string& operator[](const std::string& key) { return values.at(key); }
  int64_t integer(const std::string& key) const {
    const std::string& text = values.at(key);
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    ZT_CHECK(!text.empty() && end && *end == '\0', key, " needs an integer, got '", text, "'");
    return static_cast<int64_t>(v);
  }
  // The model of --dim, --hidden, --layers, --heads, --kv-heads and --vocab.
  LlamaConfig model_config(int64_t max_positions) const {
    LlamaConfig c;
    c.hidden_size = integer("--dim");
    c.intermediate_size = integer("--hidden");
    c.num_hidden_layers = integer("--layers");
    c.num_attention_heads = integer("--heads");
    c.num_key_value_heads = integer("--kv-heads");
    ZT_CHECK(c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0, "--dim ",
             c.hidden_size, " is not a multiple of --heads ", c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
    c.vocab_size = integer("--vocab");
    c.max_position_embeddings = max_positions;
    c.validate("the model flags");
    return c;
  }
};

}  // namespace zerotune
