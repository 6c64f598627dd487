#include "io/hf_model.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/safetensors.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

const char* kConfig = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 16,
  "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 2,
  "num_hidden_layers": 2, "vocab_size": 40, "rms_norm_eps": 1e-5, "tie_word_embeddings": %s})";

class HfModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("hf_model_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void write_config(bool tied) {
    char text[512];
    std::snprintf(text, sizeof(text), kConfig, tied ? "true" : "false");
    std::ofstream(dir_ / "config.json") << text;
  }
  // Writes `params` as HF tensors, bf16 when asked, optionally dropping or reshaping one.
  void write_weights(const LlamaParams& params, DType dtype, const std::string& drop = "",
                     const std::string& extra = "") {
    std::vector<Buffer> storage;
    std::vector<NamedTensor> named;
    for (const auto& [name, t] : params.named()) {
      if (name == drop) continue;
      storage.emplace_back(dtype, t.shape);
      convert(storage.back().view().data, dtype, t.data, DType::f32, t.numel());
      named.push_back({name, storage.back().view()});
    }
    if (!extra.empty()) {
      storage.emplace_back(DType::f32, Shape{3});
      named.push_back({extra, storage.back().view()});
    }
    write_safetensors((dir_ / "model.safetensors").string(), named);
  }
  fs::path dir_;
};

TEST_F(HfModel, LoadsBf16WeightsConvertedToF32) {
  write_config(false);
  const LlamaConfig c = load_hf_config(dir_.string());
  LlamaParams src(c);
  src.init_random(1);
  write_weights(src, DType::bf16, "", "model.layers.0.self_attn.rotary_emb.inv_freq");
  LlamaParams dst(c);
  load_hf_weights(dir_.string(), dst);
  for (size_t g = 0; g < src.groups().size(); ++g) {
    const float* a = src.groups()[g].data.f32();
    const float* b = dst.groups()[g].data.f32();
    for (int64_t i = 0; i < src.groups()[g].data.numel(); ++i) {
      ASSERT_EQ(b[i], bf16_to_f32(f32_to_bf16(a[i])));
    }
  }
}

TEST_F(HfModel, MissingTensorIsNamed) {
  write_config(false);
  const LlamaConfig c = load_hf_config(dir_.string());
  LlamaParams p(c);
  write_weights(p, DType::f32, "model.layers.1.mlp.up_proj.weight");
  try {
    load_hf_weights(dir_.string(), p);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("\"model.layers.1.mlp.up_proj.weight\" ([24, 16]) is missing"),
        std::string::npos)
        << e.what();
  }
}

TEST_F(HfModel, ShapeMismatchWithConfigIsNamed) {
  write_config(false);
  LlamaConfig wrong = load_hf_config(dir_.string());
  wrong.intermediate_size = 20;
  write_weights(LlamaParams(wrong), DType::f32);
  LlamaParams p(load_hf_config(dir_.string()));
  try {
    load_hf_weights(dir_.string(), p);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is [20, 16] but the config expects [24, 16]"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(HfModel, UnknownTensorAndMissingFilesAreErrors) {
  write_config(true);
  const LlamaConfig c = load_hf_config(dir_.string());
  LlamaParams p(c);
  EXPECT_THROW(load_hf_weights(dir_.string(), p), Error);  // no weights at all
  write_weights(p, DType::f32, "", "model.layers.0.mlp.extra.weight");
  EXPECT_THROW(load_hf_weights(dir_.string(), p), Error);
  EXPECT_THROW(load_hf_config((dir_ / "nope").string()), Error);
}

}  // namespace
}  // namespace zerotune
