#include "io/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/safetensors.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

// A SentencePiece ModelProto with the given pieces (field 1, each {piece = 1}).
std::string fake_model(const std::vector<std::string>& pieces) {
  std::string proto;
  for (const std::string& p : pieces) {
    const std::string piece = std::string(1, '\x0a') + static_cast<char>(p.size()) + p;
    proto += '\x0a';
    proto += static_cast<char>(piece.size());
    proto += piece;
  }
  return proto;
}

TokenizerFiles sample_tokenizer() {
  TokenizerFiles t;
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  for (int i = 0; i < 34; ++i) pieces.push_back("p" + std::to_string(i));
  t.model_proto = fake_model(pieces);  // 37 pieces
  t.added_tokens = {{"<START_Q>", 37}, {"<PAD>", 38}};
  t.pad_token = "<PAD>";
  return t;
}

LlamaConfig small_config(bool tied) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  return c;
}

// The names in transformers' state_dict order, the order the writer must use.
std::vector<std::string> hf_names(const LlamaConfig& c) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                          "input_layernorm", "post_attention_layernorm"}) {
      names.push_back(str("model.layers.", l, ".", s, ".weight"));
    }
  }
  names.push_back("model.norm.weight");
  if (!c.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json::Value read_json(const fs::path& path) {
  return json::parse(read_text(path), path.string());
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class HfCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("hf_checkpoint_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    dir_ = root_ / "ckpt";
  }
  void TearDown() override { fs::remove_all(root_); }

  static LlamaParams random_params(bool tied, uint64_t seed = 1) {
    LlamaParams p(small_config(tied));
    p.init_random(seed);
    return p;
  }

  // Greedy shard plan computed independently of the writer: name -> shard index.
  static std::vector<std::vector<std::string>> expected_shards(const LlamaParams& p,
                                                               int64_t element_bytes,
                                                               int64_t limit) {
    std::vector<std::vector<std::string>> shards(1);
    int64_t size = 0;
    for (const std::string& name : hf_names(p.config())) {
      const ParamGroup* g = nullptr;
      const int64_t bytes = p.find(name, &g)->shape.numel() * element_bytes;
      if (size > 0 && size + bytes > limit) {
        shards.emplace_back();
        size = 0;
      }
      shards.back().push_back(name);
      size += bytes;
    }
    return shards;
  }

  fs::path root_, dir_;
};

void expect_same_bytes(const LlamaParams& a, const LlamaParams& b) {
  const auto na = a.named(), nb = b.named();
  ASSERT_EQ(na.size(), nb.size());
  for (size_t i = 0; i < na.size(); ++i) {
    ASSERT_EQ(na[i].first, nb[i].first);
    EXPECT_EQ(std::memcmp(na[i].second.data, nb[i].second.data,
                          static_cast<size_t>(na[i].second.nbytes())),
              0)
        << na[i].first;
  }
}

TEST_F(HfCheckpointTest, F32RoundTripIsBitExact) {
  const LlamaParams params = random_params(false);
  const TokenizerFiles tokenizer = sample_tokenizer();
  HfCheckpointOptions options;
  options.save_dtype = DType::f32;
  write_hf_checkpoint(dir_.string(), params, nullptr, &tokenizer, options);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"added_tokens.json", "config.json",
                                                     "generation_config.json", "model.safetensors",
                                                     "special_tokens_map.json", "tokenizer.json",
                                                     "tokenizer.model", "tokenizer_config.json"}));
  EXPECT_EQ(listing(root_), std::vector<std::string>{"ckpt"});  // no temporary folder left

  const LoadedHfFolder back = read_hf_folder(dir_.string());
  EXPECT_EQ(back.config.summary(), params.config().summary());
  expect_same_bytes(params, back.params);
  ASSERT_TRUE(back.tokenizer.has_value());
  EXPECT_EQ(back.tokenizer->added_tokens, tokenizer.added_tokens);
  EXPECT_EQ(back.tokenizer->pad_token, "<PAD>");
  EXPECT_EQ(back.raw_config.find("torch_dtype")->as_string("dtype"), "float32");
}

TEST_F(HfCheckpointTest, Bf16AndF16HoldTheRoundedValues) {
  LlamaParams params = random_params(false);
  // Values that need rounding to even, and a tie.
  params.embedding().f32()[0] = 1.00390625f;  // halfway between two bf16 values: rounds to 1.0
  params.embedding().f32()[1] = 1.01171875f;  // halfway: rounds up to the even 1.015625
  for (DType dtype : {DType::bf16, DType::f16}) {
    HfCheckpointOptions options;
    options.save_dtype = dtype;
    write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);
    const SafetensorsFile file = SafetensorsFile::open((dir_ / "model.safetensors").string());
    for (const SafetensorsEntry& e : file.entries()) EXPECT_EQ(e.dtype, dtype) << e.name;
    const LoadedHfFolder back = read_hf_folder(dir_.string());
    EXPECT_FALSE(back.tokenizer.has_value());
    const auto original = params.named(), loaded = back.params.named();
    for (size_t i = 0; i < original.size(); ++i) {
      const Tensor& src = original[i].second;
      const float* got = loaded[i].second.f32();
      for (int64_t k = 0; k < src.numel(); ++k) {
        const float v = src.f32()[k];
        const float expected =
            dtype == DType::bf16 ? bf16_to_f32(f32_to_bf16(v)) : f16_to_f32(f32_to_f16(v));
        ASSERT_EQ(got[k], expected) << original[i].first << "[" << k << "]";
      }
    }
    if (dtype == DType::bf16) {
      EXPECT_EQ(back.params.embedding().f32()[0], 1.0f);
      EXPECT_EQ(back.params.embedding().f32()[1], 1.015625f);
    }
  }
}

TEST_F(HfCheckpointTest, TensorsInHfOrderWithFormatPtMetadata) {
  const LlamaParams params = random_params(false);
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, {});
  const SafetensorsFile file = SafetensorsFile::open((dir_ / "model.safetensors").string());
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  std::vector<std::string> names;
  int64_t expected_begin = 0;
  for (const SafetensorsEntry& e : file.entries()) {
    names.push_back(e.name);
    EXPECT_EQ(e.begin, expected_begin) << e.name;  // contiguous, in order
    expected_begin = e.end;
  }
  EXPECT_EQ(names, hf_names(params.config()));
  EXPECT_EQ(expected_begin, file.data_section_bytes());
}

TEST_F(HfCheckpointTest, ShardsSplitGreedilyWithAnExactIndex) {
  const LlamaParams params = random_params(false);
  // bf16: embedding and head 40*16*2 = 1280 bytes, q/o 512, k/v 256, gate/up/down 768, norms 32.
  // A 1000-byte limit puts the embedding and the head (over the limit) in shards of their own.
  const int64_t limit = 1000;
  HfCheckpointOptions options;
  options.max_shard_bytes = limit;
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);

  const auto plan = expected_shards(params, 2, limit);
  ASSERT_GT(plan.size(), 3u);
  EXPECT_EQ(plan.front(), std::vector<std::string>{"model.embed_tokens.weight"});
  EXPECT_EQ(plan.back(), std::vector<std::string>{"lm_head.weight"});
  const size_t n = plan.size();
  std::vector<std::string> expected_files = {"config.json", "generation_config.json",
                                             "model.safetensors.index.json"};
  json::Value weight_map = json::Value::object();
  std::map<std::string, std::string> sorted_map;
  int64_t total = 0;
  for (size_t s = 0; s < n; ++s) {
    char file[64];
    std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", s + 1, n);
    expected_files.push_back(file);
    const SafetensorsFile st = SafetensorsFile::open((dir_ / file).string());
    EXPECT_EQ(st.metadata().at("format"), "pt") << file;
    std::vector<std::string> names;
    for (const SafetensorsEntry& e : st.entries()) {
      names.push_back(e.name);
      total += e.end - e.begin;
    }
    EXPECT_EQ(names, plan[s]) << file;
    for (const std::string& name : plan[s]) sorted_map[name] = file;
  }
  for (const auto& [name, file] : sorted_map) weight_map.set(name, file);
  json::Value meta = json::Value::object();
  meta.set("total_size", total);
  json::Value index = json::Value::object();
  index.set("metadata", std::move(meta));
  index.set("weight_map", std::move(weight_map));
  EXPECT_EQ(read_text(dir_ / "model.safetensors.index.json"), index.dump(2) + "\n");
  EXPECT_EQ(total, params.numel() * 2);
  std::sort(expected_files.begin(), expected_files.end());
  EXPECT_EQ(listing(dir_), expected_files);

  const LoadedHfFolder back = read_hf_folder(dir_.string());
  const Tensor head = back.params.head();
  EXPECT_EQ(head.f32()[5], bf16_to_f32(f32_to_bf16(params.head().f32()[5])));
}

TEST_F(HfCheckpointTest, ExactFitStaysOneFile) {
  const LlamaParams params = random_params(true);
  HfCheckpointOptions options;
  options.max_shard_bytes = params.numel() * 2;
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);
  EXPECT_TRUE(fs::exists(dir_ / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors.index.json"));
  options.max_shard_bytes -= 1;
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "model-00002-of-00002.safetensors"));
  EXPECT_EQ(
      SafetensorsFile::open((dir_ / "model-00002-of-00002.safetensors").string()).entries().size(),
      1u);  // the last tensor, model.norm.weight, no longer fits
}

TEST_F(HfCheckpointTest, TiedModelHasNoLmHead) {
  const LlamaParams params = random_params(true);
  HfCheckpointOptions options;
  options.max_shard_bytes = 700;
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);
  const json::Value index = read_json(dir_ / "model.safetensors.index.json");
  EXPECT_EQ(index.find("weight_map")->find("lm_head.weight"), nullptr);
  EXPECT_EQ(index.find("weight_map")->size(), hf_names(params.config()).size());
  EXPECT_TRUE(read_json(dir_ / "config.json").find("tie_word_embeddings")->as_bool("tie"));
  const LoadedHfFolder back = read_hf_folder(dir_.string());
  EXPECT_TRUE(back.config.tie_word_embeddings);
  EXPECT_EQ(back.params.head().data, back.params.embedding().data);
}

TEST_F(HfCheckpointTest, SynthesisedConfigHasEveryLlamaField) {
  LlamaConfig c = small_config(false);
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  LlamaParams params(c);
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, {});
  const json::Value config = read_json(dir_ / "config.json");
  EXPECT_EQ(config.find("architectures")->items().at(0).as_string("a"), "LlamaForCausalLM");
  EXPECT_EQ(config.find("model_type")->as_string("t"), "llama");
  EXPECT_EQ(config.find("hidden_act")->as_string("act"), "silu");
  EXPECT_EQ(config.find("initializer_range")->as_double("r"), 0.02);
  EXPECT_EQ(config.find("torch_dtype")->as_string("d"), "bfloat16");
  EXPECT_TRUE(config.find("rope_scaling")->is_null());
  EXPECT_FALSE(config.find("attention_bias")->as_bool("b"));
  EXPECT_TRUE(config.find("use_cache")->as_bool("c"));
  EXPECT_EQ(config.find("rms_norm_eps")->as_double("eps"), 1e-5);  // not 9.99999974e-06
  EXPECT_EQ(config.find("rope_theta")->as_double("theta"), 500000.0);
  const std::pair<const char*, int64_t> ints[] = {{"vocab_size", 40},
                                                  {"hidden_size", 16},
                                                  {"intermediate_size", 24},
                                                  {"num_hidden_layers", 2},
                                                  {"num_attention_heads", 4},
                                                  {"num_key_value_heads", 2},
                                                  {"head_dim", 4},
                                                  {"max_position_embeddings", 128},
                                                  {"bos_token_id", 1},
                                                  {"eos_token_id", 2}};
  for (const auto& [key, value] : ints) EXPECT_EQ(config.find(key)->as_int64(key), value) << key;
  // What we wrote parses back to the same architecture.
  EXPECT_EQ(parse_llama_config(config, "config.json").summary(), c.summary());

  const json::Value generation = read_json(dir_ / "generation_config.json");
  EXPECT_TRUE(generation.find("_from_model_config")->as_bool("f"));
  EXPECT_EQ(generation.find("bos_token_id")->as_int64("b"), 1);
  EXPECT_EQ(generation.find("eos_token_id")->as_int64("e"), 2);
  EXPECT_EQ(generation.find("pad_token_id"), nullptr);
}

// A model without BOS (Qwen2.5's tokenizer adds none) writes null, and reads back as none.
TEST_F(HfCheckpointTest, NoBosIsWrittenAsNullAndReadBack) {
  LlamaConfig c = small_config(false);
  c.bos_token_id = -1;
  write_hf_checkpoint(dir_.string(), LlamaParams(c), nullptr, nullptr, {});
  const json::Value config = read_json(dir_ / "config.json");
  EXPECT_TRUE(config.find("bos_token_id")->is_null());
  EXPECT_TRUE(read_json(dir_ / "generation_config.json").find("bos_token_id")->is_null());
  EXPECT_EQ(parse_llama_config(config, "config.json").bos_token_id, -1);
  EXPECT_EQ(read_hf_folder(dir_.string()).config.bos_token_id, -1);
}

TEST_F(HfCheckpointTest, SourceConfigFieldsAreKeptAndSizesUpdated) {
  json::Value source = json::parse(R"({"architectures": ["LlamaForCausalLM"],
    "model_type": "llama", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "torch_dtype": "float32",
    "my_custom_field": {"kept": true}, "transformers_version": "4.36.2", "rope_scaling": null})",
                                   "source");
  const LlamaParams params = random_params(false);  // vocab 40: grown from the source's 32
  const TokenizerFiles tokenizer = sample_tokenizer();
  HfCheckpointOptions options;
  options.save_dtype = DType::f16;
  write_hf_checkpoint(dir_.string(), params, source, &tokenizer, options);
  const json::Value config = read_json(dir_ / "config.json");
  EXPECT_EQ(config.find("vocab_size")->as_int64("v"), 40);
  EXPECT_EQ(config.find("torch_dtype")->as_string("d"), "float16");
  EXPECT_TRUE(config.find("my_custom_field")->find("kept")->as_bool("k"));
  EXPECT_EQ(config.find("transformers_version")->as_string("t"), "4.36.2");
  EXPECT_EQ(config.find("head_dim")->as_int64("h"), 4);
  EXPECT_EQ(config.find("hidden_act"), nullptr);  // not synthesised over a source config
  EXPECT_EQ(config.members().front().first, "architectures");  // the source's order

  const json::Value generation = read_json(dir_ / "generation_config.json");
  EXPECT_EQ(generation.find("pad_token_id")->as_int64("pad"), 38);  // the tokenizer's <PAD>

  EXPECT_THROW(write_hf_checkpoint(dir_.string(), params, json::Value("x"), nullptr, {}), Error);
}

TEST_F(HfCheckpointTest, TokenizerLargerThanTheModelIsRefused) {
  LlamaConfig c = small_config(false);
  c.vocab_size = 38;  // 37 pieces + 2 added tokens do not fit
  const LlamaParams params(c);
  const TokenizerFiles tokenizer = sample_tokenizer();
  try {
    write_hf_checkpoint(dir_.string(), params, nullptr, &tokenizer, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resize the embeddings"), std::string::npos) << e.what();
  }
  EXPECT_EQ(listing(root_), std::vector<std::string>{});
}

TEST_F(HfCheckpointTest, FailureMidWriteKeepsThePreviousCheckpoint) {
  const LlamaParams first = random_params(false, 1);
  HfCheckpointOptions options;
  options.save_dtype = DType::f32;
  write_hf_checkpoint(dir_.string(), first, nullptr, nullptr, options);
  const std::string first_weights = read_text(dir_ / "model.safetensors");

  const LlamaParams second = random_params(false, 2);
  for (const std::string fail_after : {"config.json", "model.safetensors", "tokenizer.model"}) {
    options.after_file_written = [&](const std::string& path) {
      if (fs::path(path).filename() == fail_after) throw Error("injected failure at " + path);
    };
    const TokenizerFiles tokenizer = sample_tokenizer();
    EXPECT_THROW(write_hf_checkpoint(dir_.string(), second, nullptr, &tokenizer, options), Error)
        << fail_after;
    EXPECT_EQ(listing(root_), std::vector<std::string>{"ckpt"}) << fail_after;
    EXPECT_EQ(read_text(dir_ / "model.safetensors"), first_weights) << fail_after;
    EXPECT_FALSE(fs::exists(dir_ / "tokenizer.model")) << fail_after;
  }
  // Invalid tokenizer input fails the same way.
  TokenizerFiles bad = sample_tokenizer();
  bad.added_tokens = {{"<a>", 37}, {"<b>", 39}};
  options.after_file_written = nullptr;
  EXPECT_THROW(write_hf_checkpoint(dir_.string(), second, nullptr, &bad, options), Error);
  EXPECT_EQ(listing(root_), std::vector<std::string>{"ckpt"});
  expect_same_bytes(first, read_hf_folder(dir_.string()).params);
}

TEST_F(HfCheckpointTest, UnwritablePlaceFailsNamingItAndLeavesNothing) {
  std::ofstream(root_ / "a_file") << "x";
  const std::string target = (root_ / "a_file" / "ckpt").string();
  try {
    write_hf_checkpoint(target, random_params(false), nullptr, nullptr, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(root_.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(listing(root_), std::vector<std::string>{"a_file"});
}

TEST_F(HfCheckpointTest, OverwriteKeepsOnlyTheNewCheckpoint) {
  HfCheckpointOptions sharded;
  sharded.max_shard_bytes = 1000;
  const TokenizerFiles tokenizer = sample_tokenizer();
  write_hf_checkpoint(dir_.string(), random_params(false, 1), nullptr, &tokenizer, sharded);
  std::ofstream(dir_ / "stale_extra_file") << "from the previous save";
  ASSERT_TRUE(fs::exists(dir_ / "model.safetensors.index.json"));

  const LlamaParams second = random_params(false, 2);
  HfCheckpointOptions single;
  single.save_dtype = DType::f32;
  write_hf_checkpoint((dir_.string() + "/"), second, nullptr, nullptr, single);  // trailing '/'
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"config.json", "generation_config.json",
                                                     "model.safetensors"}));
  EXPECT_EQ(listing(root_), std::vector<std::string>{"ckpt"});
  expect_same_bytes(second, read_hf_folder(dir_.string()).params);
}

TEST_F(HfCheckpointTest, RefusesToReplaceAFolderThatIsNotACheckpoint) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "notes.txt") << "precious";
  EXPECT_THROW(write_hf_checkpoint(dir_.string(), random_params(false), nullptr, nullptr, {}),
               Error);
  EXPECT_EQ(read_text(dir_ / "notes.txt"), "precious");
  EXPECT_EQ(listing(root_), std::vector<std::string>{"ckpt"});
  EXPECT_THROW(write_hf_checkpoint(".", random_params(false), nullptr, nullptr, {}), Error);
}

TEST_F(HfCheckpointTest, BadOptionsAreErrors) {
  HfCheckpointOptions options;
  options.save_dtype = DType::i32;
  EXPECT_THROW(write_hf_checkpoint(dir_.string(), random_params(false), nullptr, nullptr, options),
               Error);
  options = {};
  options.max_shard_bytes = 0;
  EXPECT_THROW(write_hf_checkpoint(dir_.string(), random_params(false), nullptr, nullptr, options),
               Error);
  EXPECT_EQ(listing(root_), std::vector<std::string>{});
}

}  // namespace
}  // namespace zerotune
