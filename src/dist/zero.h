// The ZeRO engine: data parallelism with parameters, gradients and AdamW state divided over the
// ranks of a Communicator, as DeepSpeed's stages define it.
//   stage 0: everything replicated; gradients all-reduced.
//   stage 1: AdamW state sharded; gradients reduce-scattered at the step, parameters all-gathered
//            after it.
//   stage 2: also gradients: each group's gradient is reduce-scattered into its owner's shard as
//            soon as the backward of that group is complete.
//   stage 3: also parameters: each rank keeps 1/N of every flat group; a group is all-gathered
//            just before its forward and again before its backward (the next group prefetched
//            while the current one computes) and released after use. Groups smaller than the
//            persistence threshold stay replicated.
// Each flat group of numel elements is padded to a multiple of N; rank r owns elements
// [r * shard, (r + 1) * shard). On the CPU backend the fp32 parameter shard is also AdamW's
// master copy (compute and master dtypes are the same).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "kernels/adamw.h"
#include "model/llama.h"

namespace zerotune {

enum class OptimizerPlacement : uint8_t { device, cpu, nvme };

struct ZeroOptions {
  int stage = 3;
  // Where the model computes. On a GPU the engine keeps an f32 master copy beside a bf16 compute
  // copy, gradients in f32, and AdamW on the GPU or, with OptimizerPlacement::cpu, in host memory.
  // (This version trains on one GPU; several GPUs need the NCCL communicator.)
  Placement compute;
  // Stage 3: groups with fewer elements stay replicated on every rank (DeepSpeed's
  // stage3_param_persistence_threshold).
  int64_t param_persistence_threshold = 0;
  OptimizerPlacement optimizer_placement = OptimizerPlacement::device;
  std::string nvme_path;  // OptimizerPlacement::nvme: folder for the paged AdamW moments
  AdamWConfig adam;
};

// Bytes this rank holds, by role (slots: gathered parameters and unreduced gradients in flight).
struct ZeroMemory {
  int64_t params = 0, grads = 0, optimizer = 0, slots = 0, nvme_file = 0;
  int64_t resident() const { return params + grads + optimizer + slots; }
};

class NvmeStore;

class ZeroEngine final : public GroupHooks {
 public:
  // `layout` describes the groups (Storage::none is enough). With one rank every stage is
  // stage 0: there is nothing to divide.
  ZeroEngine(const LlamaParams& layout, Communicator& comm, const ZeroOptions& options);
  ~ZeroEngine() override;
  ZeroEngine(const ZeroEngine&) = delete;
  ZeroEngine& operator=(const ZeroEngine&) = delete;

  int stage() const { return stage_; }
  Communicator& comm() { return comm_; }
  size_t group_count() const { return groups_.size(); }

  // Sets group g's parameters from its full value, which every rank passes ([numel] f32); the
  // engine keeps what this rank holds.
  void set_group_params(size_t g, const Tensor& full);
  // Binds the model's parameter and gradient groups to the engine's memory and installs the hooks.
  // The model must have been made from a Storage::none layout with GradStorage::external.
  void attach(LlamaModel& model);

  // One optimizer step: zero_grads, the micro-batches' forward_backward, then reduce_gradients
  // (returns the global gradient norm), optionally scale_gradients, then optimizer_step.
  void zero_grads();
  double reduce_gradients();
  void scale_gradients(float factor);
  void optimizer_step(double lr);
  int64_t optimizer_steps() const { return step_; }

  // Collective: rank 0's out[numel] <- the named tensor (HF name), assembled from the ranks' shards
  // one tensor at a time; `out` is ignored on other ranks.
  void gather_tensor(const std::string& name, float* out);

  // Training state: this rank's part of every group (parameters, exp_avg, exp_avg_sq) is written
  // to `path`; load reads the parts of every rank file of a state saved with `saved_world` ranks,
  // so a run can resume on another rank count.
  void save_state(const std::string& path) const;
  void load_state(const std::string& dir, int saved_world);
  static std::string state_file_name(int rank, int world);
  void set_optimizer_steps(int64_t steps) { step_ = steps; }

  ZeroMemory memory() const;

  // GroupHooks
  void fetch_params(int64_t group, int64_t next) override;
  void release_params(int64_t group) override;
  void begin_grads(int64_t group) override;
  void end_grads(int64_t group) override;

 private:
  struct Group;
  Buffer take_slot(int64_t count);
  void give_slot(Buffer slot);
  void start_gather(Group& g);
  // The optimizer's view of group g on this rank: parameters, gradients, element count.
  float* optimizer_params(Group& g);
  float* optimizer_grads(Group& g);
  int64_t optimizer_count(const Group& g) const;
  void adam_group(Group& g, float* exp_avg, float* exp_avg_sq, double lr);

  Communicator& comm_;
  ZeroOptions options_;
  int stage_ = 0;
  int rank_ = 0, world_ = 1;
  LlamaConfig config_;
  std::vector<std::unique_ptr<Group>> groups_;
  LlamaModel* model_ = nullptr;
  std::vector<std::vector<Buffer>> free_slots_;  // by size class
  std::vector<int64_t> slot_sizes_;
  int64_t slot_bytes_ = 0;
  Buffer reduce_tmp_;    // [largest shard] a reduce-scattered gradient before it is accumulated
  bool device_ = false;  // the model computes on a GPU
  bool host_optimizer_ = false;  // device_ and AdamW runs in host memory
  Buffer staging_;               // [largest group] host, compute dtype: the compute copy's upload
  static Tensor master_of(const Group& g);  // device_: the f32 master values [numel]
  void upload_compute_copy(Group& g);
  int64_t step_ = 0;
  std::unique_ptr<NvmeStore> nvme_;
};

}  // namespace zerotune
