// Writes a randomly initialised Llama as a Hugging Face folder with zerotune's exporter, and the
// logits zerotune computes for fixed tokens, so that transformers can load the folder and compare
// (bench/check_hf_parity.py). With a GPU it also reports the mean token loss on the GPU in f32 and
// bf16 next to the CPU's.
//
//   hf_parity --out DIR --logits FILE [--dim 256] [--hidden 688] [--layers 2] [--heads 8]
//             [--kv-heads 4] [--vocab 1000] [--seq 24] [--save-dtype f32|bf16]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench_flags.h"

#include "core/device_memory.h"
#include "core/rng.h"
#include "io/hf_checkpoint.h"
#include "core/json.h"
#include "model/generate.h"
#include "model/llama.h"

namespace zerotune {
namespace {

// Mean loss of `ids` (each position predicting the next) with the model's compute on `at`.
double mean_loss(const LlamaParams& params, const std::vector<int32_t>& ids, Placement at) {
  LlamaModel model(params.placed(at.dtype, at.device), Checkpointing::off, GradStorage::owned,
                   at);
  const TokenBatch batch = TokenBatch::from_rows({ids}, {ids});
  const CrossEntropyResult r = model.forward_loss(batch);
  return r.loss_sum / static_cast<double>(r.count);
}

int run(int argc, char** argv) {
  BenchFlags flags;
  flags.values = {{"--out", ""},     {"--logits", ""},   {"--dim", "256"},    {"--hidden", "688"},
                  {"--layers", "2"}, {"--heads", "8"},   {"--kv-heads", "4"}, {"--vocab", "1000"},
                  {"--seq", "24"},   {"--save-dtype", "f32"}};
  if (!flags.parse("hf_parity", argc, argv)) return 2;
  ZT_CHECK(!flags["--out"].empty() && !flags["--logits"].empty(),
           "hf_parity: --out DIR and --logits FILE are required");
  auto num = [&](const char* key) { return flags.integer(key); };
  const LlamaConfig c = flags.model_config(256);
  DType save_dtype = DType::f32;
  ZT_CHECK(parse_dtype(flags["--save-dtype"], &save_dtype), "hf_parity: --save-dtype f32|bf16");

  LlamaParams params(c);
  params.init_random(5, 0.05f);
  if (save_dtype == DType::bf16) {  // the values the checkpoint holds, so both sides agree
    for (ParamGroup& g : params.groups()) {
      float* p = g.data.f32();
      for (int64_t i = 0; i < g.data.numel(); ++i) p[i] = bf16_to_f32(f32_to_bf16(p[i]));
    }
  }
  HfCheckpointOptions save;
  save.save_dtype = save_dtype;
  write_hf_checkpoint(flags["--out"], params, json::Value(), nullptr, save);

  Rng rng(6);
  std::vector<int32_t> ids(static_cast<size_t>(num("--seq")));
  for (auto& id : ids)
    id = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(c.vocab_size));
  LlamaGenerator generator(params, static_cast<int64_t>(ids.size()));
  json::Value logits = json::Value::array();
  for (size_t t = 0; t < ids.size(); ++t) {
    json::Value row = json::Value::array();
    for (float v : generator.forward_positions({ids[t]}, static_cast<int64_t>(t))) {
      row.push_back(static_cast<double>(v));
    }
    logits.push_back(std::move(row));
  }
  json::Value out = json::Value::object();
  json::Value id_list = json::Value::array();
  for (int32_t id : ids) id_list.push_back(static_cast<int64_t>(id));
  out.set("ids", std::move(id_list));
  out.set("logits", std::move(logits));
  out.set("cpu_loss", mean_loss(params, ids, Placement{}));
  if (cuda_device_count() > 0) {
    out.set("gpu_loss_f32", mean_loss(params, ids, Placement{Device::cuda(0), DType::f32}));
    out.set("gpu_loss_bf16", mean_loss(params, ids, Placement{Device::cuda(0), DType::bf16}));
  }
  std::ofstream file(flags["--logits"]);
  ZT_CHECK(file, flags["--logits"], ": cannot write");
  file << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  try {
    return zerotune::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hf_parity: error: %s\n", e.what());
    return 1;
  }
}
