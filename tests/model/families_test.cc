// Llama-3.x / Qwen2 / Mistral specifics that the PyTorch comparison (check_families.py) does not
// reach: the bias kernels against plain loops, a Qwen2 folder written and read back as
// transformers lays it out, the vocabulary resized under tied embeddings with biases, and the
// llama3 inverse frequencies' three bands.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/rng.h"
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "kernels/bias.h"
#include "kernels/rope.h"
#include "model/resize.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

std::vector<float> normals(Rng& rng, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.normal();
  return v;
}

TEST(Bias, ForwardAddsTheVectorToEveryRow) {
  Rng rng(1);
  const int64_t n = 7, out = 300;  // not a multiple of the SIMD width
  std::vector<float> y = normals(rng, n * out), bias = normals(rng, out);
  const std::vector<float> before = y;
  bias_forward(Tensor(y.data(), DType::f32, Shape{n, out}),
               Tensor(bias.data(), DType::f32, Shape{out}));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < out; ++j) {
      ASSERT_EQ(y[i * out + j], before[i * out + j] + bias[j]) << i << "," << j;
    }
  }
}

TEST(Bias, BackwardAccumulatesColumnSums) {
  Rng rng(2);
  const int64_t n = 33, out = 517;  // columns over two blocks of 256 and a tail
  std::vector<float> dy = normals(rng, n * out), dbias = normals(rng, out);
  const std::vector<float> before = dbias;
  bias_backward(Tensor(dbias.data(), DType::f32, Shape{out}),
                Tensor(dy.data(), DType::f32, Shape{n, out}));
  for (int64_t j = 0; j < out; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += dy[i * out + j];
    EXPECT_NEAR(dbias[j], before[j] + sum, 1e-5) << "column " << j;
  }
  std::vector<float> wrong(3);
  EXPECT_THROW(bias_backward(Tensor(wrong.data(), DType::f32, Shape{3}),
                             Tensor(dy.data(), DType::f32, Shape{n, out})),
               Error);
}

// Wavelengths below original/high_freq_factor keep their frequency, those above
// original/low_freq_factor are divided by the factor, and the band between lies in between.
TEST(RopeScaling, Llama3BandsKeepDivideAndInterpolate) {
  const RopeScaling s{RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 64};
  const std::vector<float> plain = rope_inverse_frequencies(32, 10000.0f, {});
  const std::vector<float> scaled = rope_inverse_frequencies(32, 10000.0f, s);
  int kept = 0, divided = 0, between = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    const double wavelen = 2.0 * std::numbers::pi / plain[i];
    if (wavelen < 64.0 / 4.0) {
      EXPECT_EQ(scaled[i], plain[i]) << i;
      ++kept;
    } else if (wavelen > 64.0) {
      EXPECT_FLOAT_EQ(scaled[i], plain[i] / 8.0f) << i;
      ++divided;
    } else {
      EXPECT_LT(scaled[i], plain[i]) << i;
      EXPECT_GT(scaled[i], plain[i] / 8.0f) << i;
      ++between;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(between, 0);
}

LlamaConfig qwen_config(bool tied) {
  LlamaConfig c = tiny_llama_config({40, 16, 24, 2, 4, 2, 4, 128, tied});
  c.architecture = "Qwen2ForCausalLM";
  c.qkv_bias = true;
  c.bos_token_id = 38;
  c.eos_token_id = 39;
  return c;
}

class FamiliesFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("families_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  json::Value config_json() const {
    std::ifstream in(dir_ / "config.json", std::ios::binary);
    return json::parse(std::string(std::istreambuf_iterator<char>(in), {}), "config.json");
  }
  fs::path dir_;
};

// transformers' Qwen2 state_dict: each projection's bias right after its weight; the config as
// Qwen2Config writes it; the biases read back bit for bit.
TEST_F(FamiliesFolder, Qwen2BiasesAndConfigRoundTrip) {
  LlamaParams params(qwen_config(true));
  params.init_random(5);
  HfCheckpointOptions options;
  options.save_dtype = DType::f32;
  write_hf_checkpoint(dir_.string(), params, nullptr, nullptr, options);
  const json::Value config = config_json();
  EXPECT_EQ(config.find("architectures")->items().at(0).as_string("a"), "Qwen2ForCausalLM");
  EXPECT_EQ(config.find("model_type")->as_string("t"), "qwen2");
  EXPECT_FALSE(config.find("use_sliding_window")->as_bool("w"));
  EXPECT_TRUE(config.find("tie_word_embeddings")->as_bool("tie"));
  EXPECT_EQ(config.find("attention_bias"), nullptr);  // Qwen2Config has no such field
  const SafetensorsFile file = SafetensorsFile::open((dir_ / "model.safetensors").string());
  std::vector<std::string> names;
  for (const SafetensorsEntry& e : file.entries()) names.push_back(e.name);
  const std::vector<std::string> order = hf_tensor_order(params.config());
  ASSERT_GE(order.size(), 7u);
  EXPECT_EQ(order[1], "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(order[2], "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(order[6], "model.layers.0.self_attn.v_proj.bias");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            std::set<std::string>(order.begin(), order.end()));
  const LoadedHfFolder back = read_hf_folder(dir_.string());
  EXPECT_TRUE(back.config.qkv_bias);
  const Tensor bias = back.params.layer(1).qkv_bias, want = params.layer(1).qkv_bias;
  ASSERT_EQ(bias.shape, (Shape{16 + 2 * 8}));
  EXPECT_EQ(std::memcmp(bias.data, want.data, static_cast<size_t>(want.nbytes())), 0);
}

// Llama-3.1: the llama3 rope_scaling and the list of end ids written back so that transformers
// reads the same model.
TEST_F(FamiliesFolder, Llama3RopeScalingAndEosListAreWrittenBack) {
  LlamaConfig c = tiny_llama_config({40, 16, 24, 1, 4, 2, 4, 128});
  c.rope_scaling = {RopeScalingType::llama3, 8.0f, 1.0f, 4.0f, 64};
  c.eos_token_ids = {37, 39};
  c.eos_token_id = 37;
  write_hf_checkpoint(dir_.string(), LlamaParams(c), nullptr, nullptr, {});
  const json::Value config = config_json();
  const json::Value* scaling = config.find("rope_scaling");
  ASSERT_TRUE(scaling && scaling->is_object());
  EXPECT_EQ(scaling->find("rope_type")->as_string("t"), "llama3");
  EXPECT_EQ(scaling->find("original_max_position_embeddings")->as_int64("o"), 64);
  EXPECT_EQ(config.find("eos_token_id")->items().size(), 2u);
  const LlamaConfig back = parse_llama_config(config, "config.json");
  EXPECT_EQ(back.rope_scaling, c.rope_scaling);
  EXPECT_EQ(back.eos_token_ids, c.eos_token_ids);
}

// Added tokens on a tied model: one matrix grows (the head is the embedding), biases are copied.
TEST(FamiliesResize, TiedQwenGrowsOneMatrixAndKeepsBiases) {
  LlamaParams params(qwen_config(true));
  params.init_random(9);
  const LlamaParams grown = resize_vocab(params, 45, 3);
  EXPECT_EQ(grown.head().data, grown.embedding().data);
  EXPECT_EQ(grown.embedding().shape, (Shape{45, 16}));
  EXPECT_EQ(grown.groups().size(), params.groups().size());  // no separate head group
  const Tensor bias = grown.layer(0).qkv_bias, want = params.layer(0).qkv_bias;
  EXPECT_EQ(std::memcmp(bias.data, want.data, static_cast<size_t>(want.nbytes())), 0);
}

}  // namespace
}  // namespace zerotune
