// The ZeRO engine on one rank (every stage is stage 0 there) against the plain model + AdamW, the
// single-rank communicator, and the NVMe store. Several ranks are tested end to end under mpirun
// by check_zero.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/rng.h"
#include "distributed/communicator.h"
#include "distributed/zero/nvme_store.h"
#include "distributed/zero/zero_engine.h"
#include "io/safetensors.h"
#include "support/adamw_reference.h"
#include "support/tiny_llama.h"

namespace zerotune {
namespace {

LlamaConfig config(bool tied) {
  return tiny_llama_config({53, 32, 72, 3, 4, 2, 8, 64, tied});
}

TokenBatch batch(uint64_t seed, int64_t vocab) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> rows(3, std::vector<int32_t>(21));
  for (auto& row : rows) {
    for (auto& id : row) id = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(vocab));
  }
  return TokenBatch::from_rows(rows, rows);
}

// Three AdamW steps through the engine (the optimizer in memory, on the host thread, or on the
// host thread with NVMe-paged moments) equal the plain model + AdamWOptimizer bit for bit. After
// each step an evaluation forward runs while a host-thread optimizer may still be updating: it
// must see every group's new values.
void expect_engine_matches_plain(bool tied, OptimizerPlacement placement) {
  const LlamaConfig c = config(tied);
  LlamaParams init(c);
  init.init_random(11);

  LlamaParams plain_params(c);
  for (size_t g = 0; g < init.groups().size(); ++g) {
    std::memcpy(plain_params.groups()[g].data.f32(), init.groups()[g].data.f32(),
                static_cast<size_t>(init.groups()[g].data.view().nbytes()));
  }
  LlamaModel plain(std::move(plain_params), Checkpointing::per_layer);
  AdamWConfig adam;
  adam.weight_decay = 0.01;
  AdamWOptimizer optimizer(plain.params(), adam);

  auto comm = make_single_communicator();
  ZeroOptions options;
  options.stage = 3;
  options.adam = adam;
  options.optimizer_placement = placement;
  options.host_thread_on_cpu = placement == OptimizerPlacement::cpu;
  options.nvme_path = (std::filesystem::temp_directory_path() / "zt-zero-test-nvme").string();
  const LlamaParams layout(c, Storage::none);
  ZeroEngine engine(layout, *comm, options);
  EXPECT_EQ(engine.stage(), 0);
  for (size_t g = 0; g < init.groups().size(); ++g)
    engine.set_group_params(g, init.groups()[g].data);
  LlamaModel sharded(LlamaParams(c, Storage::none), Checkpointing::per_layer,
                     GradStorage::external);
  engine.attach(sharded);

  for (int step = 0; step < 3; ++step) {
    const TokenBatch b = batch(100 + static_cast<uint64_t>(step), c.vocab_size);
    const float scale = 1.0f / static_cast<float>(b.count_targets());
    plain.grads().zero();
    const double plain_loss = plain.forward_backward(b, scale).loss_sum;
    const double plain_norm = global_grad_norm(plain.grads());
    scale_grads(plain.grads(), 0.5f);
    optimizer.step(plain.params(), plain.grads(), 1e-2);

    engine.zero_grads();
    const double loss = sharded.forward_backward(b, scale).loss_sum;
    const double norm = engine.reduce_gradients();
    engine.scale_gradients(0.5f);
    engine.optimizer_step(1e-2);
    EXPECT_EQ(loss, plain_loss) << "step " << step;
    EXPECT_EQ(norm, plain_norm) << "step " << step;
    const TokenBatch eval = batch(200 + static_cast<uint64_t>(step), c.vocab_size);
    EXPECT_EQ(sharded.forward_loss(eval).loss_sum, plain.forward_loss(eval).loss_sum)
        << "evaluation after step " << step;
  }
  for (const auto& [name, tensor] : plain.params().named()) {
    std::vector<float> gathered(static_cast<size_t>(tensor.numel()));
    engine.gather_tensor(name, gathered.data());
    EXPECT_EQ(std::memcmp(gathered.data(), tensor.data, static_cast<size_t>(tensor.nbytes())), 0)
        << name;
  }
  const ZeroMemory m = engine.memory();
  EXPECT_EQ(m.params, init.numel() * 4);
  EXPECT_EQ(m.master, 0);  // f32 on the CPU: the compute copy is the master copy
  EXPECT_EQ(m.grads, init.numel() * 4);
  EXPECT_EQ(m.optimizer, placement == OptimizerPlacement::nvme ? 0 : 2 * init.numel() * 4);
  EXPECT_EQ(m.nvme_file, placement == OptimizerPlacement::nvme ? 2 * init.numel() * 4 : 0);
}

TEST(ZeroEngine, OneRankEqualsPlainModelAndAdamW) {
  expect_engine_matches_plain(false, OptimizerPlacement::device);
  expect_engine_matches_plain(true, OptimizerPlacement::device);
}

TEST(ZeroEngine, NvmePagedMomentsEqualInMemoryOnes) {
  expect_engine_matches_plain(false, OptimizerPlacement::nvme);
  expect_engine_matches_plain(true, OptimizerPlacement::nvme);
}

TEST(ZeroEngine, HostThreadOptimizerEqualsInline) {
  expect_engine_matches_plain(false, OptimizerPlacement::cpu);
  expect_engine_matches_plain(true, OptimizerPlacement::cpu);
}

// An error on the optimizer's host thread reaches the caller at the next use of the parameters
// and the engine still shuts down cleanly.
TEST(ZeroEngine, HostThreadErrorsReachTheCaller) {
  const LlamaConfig c = config(false);
  LlamaParams init(c);
  init.init_random(5);
  auto comm = make_single_communicator();
  ZeroOptions options;
  options.optimizer_placement = OptimizerPlacement::cpu;
  options.host_thread_on_cpu = true;
  options.adam.lr = 1e-3;
  const LlamaParams layout(c, Storage::none);
  ZeroEngine engine(layout, *comm, options);
  for (size_t g = 0; g < init.groups().size(); ++g)
    engine.set_group_params(g, init.groups()[g].data);
  engine.zero_grads();
  engine.set_optimizer_steps(-1);  // the next step is step 0: AdamW refuses it
  engine.optimizer_step(1e-3);
  std::vector<float> x(static_cast<size_t>(c.vocab_size * c.hidden_size));
  try {
    engine.gather_tensor("model.embed_tokens.weight", x.data());
    FAIL() << "expected the host thread's error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step counts from 1"), std::string::npos) << e.what();
  }
}

// A rank of a communicator whose collectives this test never reaches: loading, saving and setting
// parameters are local.
class LocalRankOnly final : public Communicator {
 public:
  LocalRankOnly(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "test"; }
  std::unique_ptr<CommRequest> all_gather_async(const void*, void*, int64_t, DType) override {
    fail("all_gather in a local test");
  }
  std::unique_ptr<CommRequest> reduce_scatter_async(const void*, void*, int64_t, DType) override {
    fail("reduce_scatter in a local test");
  }
  std::unique_ptr<CommRequest> all_reduce_async(void*, int64_t, DType) override {
    fail("all_reduce in a local test");
  }
  void broadcast(void*, int64_t, int) override { fail("broadcast in a local test"); }
  void gather_to_root(const void*, const int64_t*, void*, DType) override {
    fail("gather_to_root in a local test");
  }
  void barrier() override { fail("barrier in a local test"); }

 private:
  int rank_, size_;
};

// The last of 5 ranks owns nothing of the 6-element norm groups (shard 2: it would start at 8):
// setting, loading and saving its (empty) ranges works at every stage, with the master copy apart
// or not, and its state file holds exactly its ranges of a 1-rank state.
TEST(ZeroEngine, RanksWithNothingOfAGroupLoadAndSave) {
  const LlamaConfig c = tiny_llama_config({11, 6, 10, 1, 3, 3, 2, 8});
  LlamaParams init(c);
  init.init_random(9);
  const LlamaParams layout(c, Storage::none);
  const auto dir = std::filesystem::temp_directory_path() / "zt-zero-empty-rank-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto single = make_single_communicator();
  ZeroEngine one(layout, *single, ZeroOptions{});
  for (size_t g = 0; g < init.groups().size(); ++g) one.set_group_params(g, init.groups()[g].data);
  one.save_state((dir / ZeroEngine::state_file_name(0, 1)).string());
  for (int stage : {0, 1, 3}) {
    for (bool separate : {false, true}) {
      SCOPED_TRACE(testing::Message() << "stage " << stage << ", separate master " << separate);
      LocalRankOnly last(4, 5);
      ZeroOptions options;
      options.stage = stage;
      options.separate_master = separate;
      ZeroEngine engine(layout, last, options);
      for (size_t g = 0; g < init.groups().size(); ++g)
        engine.set_group_params(g, init.groups()[g].data);
      engine.load_state(dir.string(), 1);
      const auto path = dir / ZeroEngine::state_file_name(4, 5);
      engine.save_state(path.string());
      const SafetensorsFile saved = SafetensorsFile::open(path.string());
      for (size_t g = 0; g < layout.groups().size(); ++g) {
        const int64_t numel = layout.group_numel(g), shard = (numel + 4) / 5;
        const int64_t begin = std::min(numel, 4 * shard), count = numel - begin;
        const SafetensorsEntry* entry = saved.find("param/" + layout.groups()[g].name);
        ASSERT_NE(entry, nullptr) << layout.groups()[g].name;
        ASSERT_EQ(entry->shape, Shape{count}) << layout.groups()[g].name;
        const float* values = static_cast<const float*>(saved.tensor(*entry).data);
        const float* expected = init.groups()[g].data.f32() + begin;
        EXPECT_EQ(std::vector<float>(values, values + count),
                  std::vector<float>(expected, expected + count))
            << layout.groups()[g].name;
      }
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(ZeroEngine, StateRoundTripsAndNamesMissingTensors) {
  const LlamaConfig c = config(false);
  LlamaParams init(c);
  init.init_random(3);
  auto comm = make_single_communicator();
  const LlamaParams layout(c, Storage::none);
  ZeroEngine a(layout, *comm, ZeroOptions{}), b(layout, *comm, ZeroOptions{});
  for (size_t g = 0; g < init.groups().size(); ++g) a.set_group_params(g, init.groups()[g].data);
  const auto dir = std::filesystem::temp_directory_path() / "zt-zero-state-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  a.save_state((dir / ZeroEngine::state_file_name(0, 1)).string());
  b.load_state(dir.string(), 1);
  std::vector<float> x(static_cast<size_t>(c.vocab_size * c.hidden_size)), y(x.size());
  a.gather_tensor("model.embed_tokens.weight", x.data());
  b.gather_tensor("model.embed_tokens.weight", y.data());
  EXPECT_EQ(x, y);
  try {
    b.load_state(dir.string(), 2);  // no rank-1 file
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank-00000-of-00002.safetensors"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(SingleCommunicator, CopiesAndCounts) {
  auto comm = make_single_communicator();
  EXPECT_EQ(comm->size(), 1);
  std::vector<float> shard = {1, 2, 3}, full(3);
  comm->all_gather(shard.data(), full.data(), 3, DType::f32);
  EXPECT_EQ(full, shard);
  std::vector<float> out(3);
  comm->reduce_scatter(full.data(), out.data(), 3, DType::f32);
  EXPECT_EQ(out, shard);
  EXPECT_EQ(comm->all_reduce_sum(2.5), 2.5);
  EXPECT_EQ(comm->volume().all_gather, 12);
  EXPECT_EQ(comm->volume().reduce_scatter, 12);
}

TEST(NvmeStore, OverlappedTransfersLandWhereAsked) {
  const auto dir = std::filesystem::temp_directory_path() / "zt-nvme-test";
  {
    NvmeStore store(dir.string(), 0, 1000);
    std::vector<float> a(400), b(600), back(1000);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
    for (size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i);
    const int64_t ta = store.write_async(0, a.data(), 400);
    const int64_t tb = store.write_async(400, b.data(), 600);
    store.wait(tb);
    store.wait(ta);
    store.wait(store.read_async(0, back.data(), 1000));
    EXPECT_EQ(std::vector<float>(back.begin(), back.begin() + 400), a);
    EXPECT_EQ(std::vector<float>(back.begin() + 400, back.end()), b);
    EXPECT_THROW(store.read_async(900, back.data(), 101), Error);
    EXPECT_TRUE(std::filesystem::exists(store.path()));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));  // the file goes with the store
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zerotune
