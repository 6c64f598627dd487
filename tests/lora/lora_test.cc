// LoRA's pieces that need no PyTorch: the dropout mask's statistics and determinism, the PEFT
// config's keys and refusals, the adapter layout, initialisation, and adapter folders (written,
// read back, refused when they do not fit). The arithmetic is checked against PyTorch in
// tests/reference/check_lora.py and check_lora_train.py.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "../support/errors.h"
#include "../support/tiny_llama.h"
#include "io/peft_adapter.h"
#include "kernels/scaled_dropout.h"
#include "model/lora.h"

namespace zerotune {
namespace {

namespace fs = std::filesystem;

LlamaConfig tiny() {
  return tiny_llama_config({50, 16, 24, 2, 4, 2, 4, 32});
}

TEST(ScaledDropout, DropsAboutPAndScalesTheRest) {
  const int64_t n = 200000;
  Buffer x(DType::f32, Shape{n}), y(DType::f32, Shape{n});
  for (int64_t i = 0; i < n; ++i) x.f32()[i] = 1.0f + static_cast<float>(i % 7);
  const float p = 0.3f;
  scaled_dropout(y, x, 2.0f, p, 1234);
  int64_t dropped = 0;
  double kept_ratio_error = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (y.f32()[i] == 0.0f) {
      ++dropped;
    } else {
      kept_ratio_error =
          std::max(kept_ratio_error, std::abs(y.f32()[i] / x.f32()[i] - 2.0 / (1.0 - p)));
    }
  }
  // Binomial(n, 0.3): std ~ 205 elements; 0.01 * n is ~10 std.
  EXPECT_NEAR(static_cast<double>(dropped) / n, p, 0.01);
  EXPECT_LT(kept_ratio_error, 1e-5);
}

TEST(ScaledDropout, TheMaskIsAFunctionOfSeedAndIndex) {
  const int64_t n = 4096;
  Buffer x(DType::f32, Shape{n}), a(DType::f32, Shape{n}), b(DType::f32, Shape{n}),
      c(DType::f32, Shape{n});
  for (int64_t i = 0; i < n; ++i) x.f32()[i] = 1.0f;
  scaled_dropout(a, x, 1.0f, 0.5f, 7);
  scaled_dropout(b, x, 1.0f, 0.5f, 7);
  scaled_dropout(c, x, 1.0f, 0.5f, 8);
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(a.f32()[i], b.f32()[i]);
    differ += a.f32()[i] != c.f32()[i];
  }
  EXPECT_GT(differ, n / 4);  // another seed: about half the elements change
  // Accumulate adds the same masked values; p = 0 is a scaled copy.
  scaled_dropout(b, x, 1.0f, 0.5f, 7, Accumulate::yes);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(b.f32()[i], 2.0f * a.f32()[i]);
  scaled_dropout(c, x, 3.0f, 0.0f, 9);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(c.f32()[i], 3.0f);
}

TEST(LoraConfig, DefaultsAreThePythonJobs) {
  const LoraConfig c = parse_lora_config(json::parse("{}", "t"), "t");
  EXPECT_EQ(c.r, 8);
  EXPECT_EQ(c.alpha, 16.0);
  EXPECT_EQ(c.dropout, 0.05);
  EXPECT_EQ(c.target_modules, (std::vector<std::string>{"gate_proj", "up_proj", "down_proj"}));
  EXPECT_EQ(c.scale(), 2.0);
  const LoraConfig rs =
      parse_lora_config(json::parse(R"({"r": 16, "lora_alpha": 8, "use_rslora": true})", "t"), "t");
  EXPECT_EQ(rs.scale(), 2.0);  // alpha / sqrt(r)
}

TEST(LoraConfig, WrongValuesAreRefusedNamingTheKey) {
  auto refusal = [](const std::string& text) {
    return error_of([&] { parse_lora_config(json::parse(text, "c.json"), "c.json"); });
  };
  EXPECT_NE(refusal(R"({"r": 0})").find("c.json: \"r\" must be a positive rank"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"r": -2})").find("\"r\""), std::string::npos);
  EXPECT_NE(refusal(R"({"lora_dropout": 1.0})").find("\"lora_dropout\""), std::string::npos);
  EXPECT_NE(refusal(R"({"lora_alpha": "x"})").find("\"lora_alpha\""), std::string::npos);
  EXPECT_NE(refusal(R"({"bias": "lora_only"})").find("\"bias\" must be \"none\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"target_modules": ["c_attn"]})").find("\"c_attn\" matches no linear"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"modules_to_save": ["score"]})").find("\"score\""), std::string::npos);
  EXPECT_NE(refusal(R"({"peft_type": "IA3"})").find("expected \"LORA\""), std::string::npos);
  EXPECT_NE(refusal(R"({"use_dora": true})").find("\"use_dora\" is not implemented"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"init_lora_weights": "pissa"})").find("\"init_lora_weights\""),
            std::string::npos);
  // Unknown keys are warned about, not refused; PEFT's own defaults read back.
  EXPECT_EQ(refusal(R"({"something_new": 1, "fan_in_fan_out": false, "rank_pattern": {}})"), "");
}

TEST(LoraConfig, AdapterConfigJsonReadsBack) {
  LoraConfig c;
  c.r = 4;
  c.alpha = 32;
  c.dropout = 0.0;
  c.target_modules = {"all-linear"};
  c.modules_to_save = {"lm_head"};
  c.init_lora_weights = "gaussian";
  c.base_model = "meta-llama/Llama-2-7b-hf";
  const json::Value j = lora_config_json(c);
  EXPECT_EQ(j.find("peft_type")->as_string(""), "LORA");
  EXPECT_EQ(j.find("task_type")->as_string(""), "CAUSAL_LM");
  EXPECT_TRUE(j.find("inference_mode")->as_bool(""));
  const LoraConfig back = parse_lora_config(json::parse(j.dump(), "t"), "t");
  EXPECT_EQ(back.r, 4);
  EXPECT_EQ(back.alpha, 32);
  EXPECT_EQ(back.target_modules, c.target_modules);
  EXPECT_EQ(back.modules_to_save, c.modules_to_save);
  EXPECT_EQ(back.init_lora_weights, "gaussian");
  EXPECT_EQ(back.base_model, c.base_model);
}

TEST(LoraLayout, OneGroupPerLayerWithPeftNamesAndTheBaseFrozen) {
  LoraConfig c;
  c.r = 2;
  c.target_modules = {"k_proj", "down_proj"};
  c.modules_to_save = {"lm_head"};
  LlamaParams layout(tiny(), Storage::none);
  const int64_t base_groups = static_cast<int64_t>(layout.groups().size());
  EXPECT_EQ(add_lora_groups(layout, c), base_groups);
  ASSERT_EQ(static_cast<int64_t>(layout.groups().size()), base_groups + 2);
  for (int64_t g = 0; g < base_groups; ++g) {
    EXPECT_EQ(layout.groups()[g].trainable, g == layout.head_group()) << g;
  }
  const ParamGroup& l1 = layout.groups()[static_cast<size_t>(base_groups + 1)];
  ASSERT_EQ(l1.views.size(), 4u);
  EXPECT_EQ(l1.views[0].name, "base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight");
  EXPECT_EQ(l1.views[0].shape, (Shape{2, 16}));  // [r, D]
  EXPECT_EQ(l1.views[1].shape, (Shape{8, 2}));   // [Hkv * Dh, r]
  EXPECT_EQ(l1.views[3].name, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(l1.views[3].shape, (Shape{16, 2}));
  EXPECT_EQ(layout.group_numel(static_cast<size_t>(base_groups)), 2 * 16 + 8 * 2 + 2 * 24 + 16 * 2);
}

TEST(LoraLayout, InitialisationIsKaimingUniformAAndZeroB) {
  LoraConfig c;
  c.r = 4;
  const LlamaConfig m = tiny();
  LlamaParams layout(m, Storage::none);
  const int64_t first = add_lora_groups(layout, c);
  const ParamGroup& g = layout.groups()[static_cast<size_t>(first)];
  Buffer a(DType::f32, Shape{layout.group_numel(static_cast<size_t>(first))});
  Buffer b(DType::f32, Shape{layout.group_numel(static_cast<size_t>(first))});
  init_lora_group(a, m, c, 0, 42);
  init_lora_group(b, m, c, 0, 42);
  EXPECT_EQ(std::memcmp(a.f32(), b.f32(), static_cast<size_t>(a.view().nbytes())), 0);
  for (const ParamView& v : g.views) {
    const Tensor t = a.view().flat(v.offset, v.shape.numel());
    const bool is_a = v.name.find("lora_A") != std::string::npos;
    const float bound = 1.0f / std::sqrt(static_cast<float>(v.shape[1]));  // 1/sqrt(fan_in)
    float top = 0.0f;
    for (int64_t i = 0; i < t.numel(); ++i) top = std::max(top, std::abs(t.f32()[i]));
    if (is_a) {
      EXPECT_LE(top, bound) << v.name;
      EXPECT_GT(top, 0.8f * bound) << v.name;  // spread over the interval
    } else {
      EXPECT_EQ(top, 0.0f) << v.name;  // step 0 is the base model
    }
  }
  init_lora_group(b, m, c, 1, 42);  // another layer: another draw
  EXPECT_NE(std::memcmp(a.f32(), b.f32(), static_cast<size_t>(a.view().nbytes())), 0);
}

TEST(PeftAdapter, WrittenFoldersReadBackAndMisfitsNameTheTensor) {
  const fs::path dir = fs::temp_directory_path() / ("zt_lora_test_" + std::to_string(getpid()));
  fs::remove_all(dir);
  LoraConfig c;
  c.r = 2;
  c.target_modules = {"q_proj"};
  const LlamaConfig m = tiny();
  std::vector<Buffer> values;
  std::vector<NamedTensor> named;
  for (int64_t l = 0; l < m.num_hidden_layers; ++l) {
    values.emplace_back(DType::f32, Shape{2, 16});
    named.push_back({lora_tensor_name(l, LoraModule::q, 'A'), values.back().view()});
    values.emplace_back(DType::f32, Shape{16, 2});
    named.push_back({lora_tensor_name(l, LoraModule::q, 'B'), values.back().view()});
  }
  for (Buffer& b : values) {
    for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = 0.01f * static_cast<float>(i);
  }
  write_peft_adapter(dir.string(), c, named);
  const PeftAdapter read = read_peft_adapter(dir.string());
  EXPECT_EQ(read.config.r, 2);
  EXPECT_EQ(read.tensors.size(), 4u);
  check_adapter_fits(read, m);
  LlamaConfig wider = m;
  wider.hidden_size = 20;
  wider.head_dim = 5;
  EXPECT_NE(error_of([&] { check_adapter_fits(read, wider); })
                .find("tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight is "
                      "[2, 16], expected [2, 20]"),
            std::string::npos);
  // W + scale B A, computed by hand for one element.
  LlamaParams params = random_params(m, 3);
  const float before = params.layer(1).wqkv.f32()[5 * 16 + 7];
  merge_adapter(params, read);
  float delta = 0.0f;
  const float* a = read.tensors.at(lora_tensor_name(1, LoraModule::q, 'A')).f32();
  const float* b = read.tensors.at(lora_tensor_name(1, LoraModule::q, 'B')).f32();
  for (int k = 0; k < 2; ++k) delta += b[5 * 2 + k] * a[k * 16 + 7];
  EXPECT_NEAR(params.layer(1).wqkv.f32()[5 * 16 + 7], before + 8.0f * delta, 1e-5);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace zerotune
