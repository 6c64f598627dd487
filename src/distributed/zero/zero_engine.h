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
// Frozen groups (ParamGroup::trainable false: LoRA's base) keep only the compute copy, sharded at
// stage 3 like any group; they get no gradient, master copy or AdamW state and are not part of the
// training state.
// Each flat group of numel elements is padded to a multiple of N; rank r owns elements
// [r * shard, (r + 1) * shard).
//
// The compute copy (what the model reads: replicated groups whole, stage-3 groups as shards) has
// the compute dtype and lives on the compute device. AdamW updates an f32 master copy of the
// elements this rank owns (all of them at stage 0): the compute copy itself where that is f32 in
// the optimizer's memory (the CPU backend, f32 on a GPU), else a separate f32 buffer, from which
// the updated values are rounded into the compute copy.
//
// With the optimizer in host memory (--offload-optimizer cpu|nvme) and the model on a GPU, AdamW
// runs on a host thread:
// optimizer_step queues the gradients' copy to the host and returns; the thread updates group by
// group in the forward's order and uploads each group's new values on the upload stream, and the
// next step's forward waits for a group only when it reaches it (fetch_params), so the host
// optimizer overlaps the next step's compute without changing the arithmetic.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/device_memory.h"
#include "distributed/communicator.h"
#include "kernels/adamw.h"
#include "model/llama.h"

namespace zerotune {

enum class OptimizerPlacement : uint8_t { device, cpu, nvme };

struct ZeroOptions {
  int stage = 3;
  // Where the model computes. On a GPU the engine keeps an f32 master copy beside a bf16 compute
  // copy, gradients in f32, and AdamW on the GPU or, with OptimizerPlacement::cpu or nvme, in host
  // memory. Several GPUs need a communicator that takes device buffers (NCCL).
  Placement compute;
  // Stage 3: groups with fewer elements stay replicated on every rank (DeepSpeed's
  // stage3_param_persistence_threshold).
  int64_t param_persistence_threshold = 0;
  OptimizerPlacement optimizer_placement = OptimizerPlacement::device;
  std::string nvme_path;  // OptimizerPlacement::nvme: folder for the paged AdamW moments
  AdamWConfig adam;
  // The host optimizer runs on its own thread when the model computes on a GPU; on the CPU it
  // runs inline (a thread would only compete for the same cores) unless this is set (tests).
  bool host_thread_on_cpu = false;
  // Keeps the f32 master apart from an f32 compute copy, as the GPU's bf16 runs do (tests run the
  // GPU's code paths on CPU ranks with this and host_thread_on_cpu).
  bool separate_master = false;
};

// Bytes this rank holds, by role (slots: gathered parameters and unreduced gradients in flight;
// staging: host buffers of uploads to the GPU and of the NVMe-paged moments). On a GPU: params,
// grads and slots are on the device; master, optimizer and host_grads are in host memory with the
// optimizer offloaded, on the device otherwise.
struct ZeroMemory {
  int64_t params = 0, master = 0, grads = 0, host_grads = 0, optimizer = 0, slots = 0;
  int64_t staging = 0, nvme_file = 0;
  int64_t resident() const {
    return params + master + grads + host_grads + optimizer + slots + staging;
  }
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
  // (returns the global gradient norm), optionally scale_gradients, then optimizer_step. With the
  // optimizer on the host, optimizer_step returns while the update runs; the model's next use of
  // a group, gather_tensor, save_state and finish_updates wait for it.
  void zero_grads();
  double reduce_gradients();
  void scale_gradients(float factor);
  void optimizer_step(double lr);
  int64_t optimizer_steps() const { return step_; }
  // Collective: completes the last optimizer_step everywhere (the model's forward does it group by
  // group; call this before reading parameters any other way).
  void finish_updates();

  // Collective: rank 0's out[numel] <- the named tensor (HF name), assembled from the ranks' shards
  // one tensor at a time; `out` is ignored on other ranks.
  void gather_tensor(const std::string& name, float* out);

  // Training state: this rank's part of every group (parameters, exp_avg, exp_avg_sq) is written
  // to `path`; load reads the parts of every rank file of a state saved with `saved_world` ranks,
  // so a run can resume on another rank count.
  void save_state(const std::string& path);
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
  Buffer take_slot(int64_t count, DType dtype);
  void give_slot(Buffer slot);
  void start_gather(Group& g);
  // Group g on this rank as the optimizer sees it: the compute copy's owned elements, the f32
  // master values, the reduced gradient (all [optimizer_count]), and the group element index of
  // their first element.
  int64_t optimizer_count(const Group& g) const;  // 0 for a frozen group
  // A trainable group's gradient, master and AdamW memory (NVMe: its offset in the file).
  void allocate_training_state(Group& g, int64_t& optimizer_floats);
  int64_t optimizer_offset(const Group& g) const;
  Tensor compute_slice(const Group& g) const;
  Tensor master(const Group& g) const;
  Tensor reduced_grads(const Group& g) const;
  // compute_slice <- master, rounded to the compute dtype (nothing when they are one buffer).
  void round_into_compute_copy(Group& g, int staging_slot);
  // The host optimizer's thread and the model's side of it.
  void host_optimizer_loop();
  void host_update_all(double lr, int64_t step);
  void wait_host_update(size_t group);
  void finish_host_job();
  // Makes group g's compute copy current after an optimizer step (collective for replicated
  // groups at stages 1-3: their slices are all-gathered here).
  void ensure_current(Group& g);

  Communicator& comm_;
  ZeroOptions options_;
  int stage_ = 0;
  int rank_ = 0, world_ = 1;
  LlamaConfig config_;
  std::vector<std::unique_ptr<Group>> groups_;
  LlamaModel* model_ = nullptr;
  std::vector<std::vector<Buffer>> free_slots_;  // by size class
  std::vector<std::pair<int64_t, DType>> slot_kinds_;
  int64_t slot_bytes_ = 0;
  // Stages 2-3: a group's reduce-scatter is posted when its backward ends and completed when the
  // next group's is posted (so it overlaps that group's backward), or before the gradients are
  // read or zeroed. At most two are in flight.
  struct PendingReduce {
    Group* group = nullptr;
    std::unique_ptr<CommRequest> request;
    Buffer slot;  // the unreduced gradient [shard * world]
    Buffer sum;   // [shard] the reduced part, to be added into grad_shard (later micro-batches)
  };
  std::vector<PendingReduce> pending_reduces_;
  void complete_reduces(size_t keep);  // completes all but the `keep` newest
  void prepare_grads(Group& g);
  DeviceEvent backward_done_;     // the host optimizer with a GPU: the gradients are final
  Device device_;                 // where the model computes
  bool host_optimizer_ = false;   // AdamW runs in host memory
  bool host_thread_ = false;      // ... on its own thread
  bool separate_master_ = false;  // the master copy is not the compute copy
  bool copy_grads_ = false;       // the gradients are copied to host memory for the optimizer
  // Pinned host staging for uploads: two slots of the largest group's elements, compute dtype.
  struct Pinned;
  std::unique_ptr<Pinned> staging_[2];
  DeviceEvent staging_free_[2];
  int64_t step_ = 0;
  std::unique_ptr<NvmeStore> nvme_;
  Buffer nvme_moments_[2];  // NVMe: two staging pairs of the largest group's moments, reused

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool job_pending_ = false, stopping_ = false;
  double job_lr_ = 0.0;
  int64_t job_step_ = 0;
  size_t updated_ = 0;  // groups of the running job whose update is queued
  std::exception_ptr worker_error_;
};

}  // namespace zerotune
