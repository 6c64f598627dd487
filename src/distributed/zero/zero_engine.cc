#include "distributed/zero/zero_engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/device_memory.h"
#include "distributed/zero/nvme_store.h"
#include "io/safetensors.h"
#include "kernels/adamw.h"

namespace zerotune {

namespace fs = std::filesystem;

// Page-locked host memory for the transfers between the GPU and the host optimizer.
struct ZeroEngine::Pinned {
  Pinned(DType dtype, int64_t n)
      : data(pinned_alloc(n * dtype_size(dtype))), bytes(n * dtype_size(dtype)) {}
  ~Pinned() { pinned_free(data); }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  void* data;
  int64_t bytes;
};

struct ZeroEngine::Group {
  size_t index = 0;
  std::string name;
  std::vector<ParamView> views;
  int64_t numel = 0;  // real elements
  int64_t shard = 0;  // elements per rank; the padded group is shard * world
  int64_t begin = 0;  // this rank's first element
  int64_t count = 0;  // this rank's real elements (the last ranks' shards may be short or empty)
  bool replicated = true;
  // False for a frozen group (LoRA's base): only the compute copy, no gradient, master or moments.
  bool trainable = true;
  // The compute copy (compute dtype, compute device).
  Buffer full;         // [shard * world] replicated parameters
  Buffer param_shard;  // [shard] stage 3: this rank's parameters
  Buffer master;       // [optimizer elements] f32, when separate from the compute copy
  Buffer grad_full;    // [shard * world] stages 0-1: gradients accumulated over micro-batches
  Buffer grad_shard;   // [shard] stages 1-3: this rank's reduced gradient
  Buffer exp_avg, exp_avg_sq;  // [optimizer elements], unless paged to NVMe
  int64_t nvme_offset = 0;     // exp_avg at nvme_offset, exp_avg_sq right after it
  Buffer gathered;             // [shard * world] stage 3: the gathered parameters while in use
  std::unique_ptr<CommRequest> pending_gather;
  int uses = 0;
  Buffer grad_slot;        // [shard * world] stages 2-3: one micro-batch's unreduced gradient
  bool grad_fresh = true;  // grad_shard holds nothing from this step yet
  // The host optimizer with a GPU: the gradient's host copy and the transfers' completion.
  std::unique_ptr<Pinned> host_grads;  // [optimizer elements] f32
  DeviceEvent grads_copied, uploaded;
  bool stale = false;         // updated by the optimizer, not yet current in the compute copy
  bool zero_pending = false;  // the gradients are still being copied out: zeroed at first use
};

namespace {

// Elements [offset, offset + count) of a flat tensor; a rank with nothing of a group (count 0) may
// have an offset past its end.
Tensor range(const Tensor& t, int64_t offset, int64_t count) {
  return count == 0 ? t.flat(0, 0) : t.flat(offset, count);
}

}  // namespace

ZeroEngine::ZeroEngine(const LlamaParams& layout, Communicator& comm, const ZeroOptions& options)
    : comm_(comm), options_(options), config_(layout.config()) {
  ZT_CHECK(options.stage >= 0 && options.stage <= 3, "zero: stage must be 0-3, got ",
           options.stage);
  ZT_CHECK(options.param_persistence_threshold >= 0,
           "zero: --param-persistence-threshold must be >= 0, got ",
           options.param_persistence_threshold);
  rank_ = comm.rank();
  world_ = comm.size();
  stage_ = world_ == 1 ? 0 : options.stage;
  device_ = options.compute.device;
  const DType dtype = options.compute.dtype;
  ZT_CHECK(!device_.is_cpu() || dtype == DType::f32, "zero: the CPU backend computes in f32, not ",
           dtype_name(dtype));
  ZT_CHECK(device_.is_cpu() || world_ == 1 || std::string(comm.backend()) != "mpi",
           "zero: ", world_, " ranks on GPUs need the NCCL communicator, not ", comm.backend());
  host_optimizer_ = options.optimizer_placement != OptimizerPlacement::device;
  const Device optimizer_device = host_optimizer_ ? Device::cpu() : device_;
  separate_master_ =
      options.separate_master || dtype != DType::f32 || !(optimizer_device == device_);
  copy_grads_ = host_optimizer_ && !device_.is_cpu();
  host_thread_ = host_optimizer_ && (!device_.is_cpu() || options.host_thread_on_cpu);
  int64_t max_optimizer = 0, optimizer_floats = 0;
  for (size_t i = 0; i < layout.groups().size(); ++i) {
    auto g = std::make_unique<Group>();
    g->index = i;
    g->name = layout.groups()[i].name;
    g->views = layout.groups()[i].views;
    g->numel = layout.group_numel(i);
    g->shard = (g->numel + world_ - 1) / world_;
    g->begin = g->shard * rank_;
    g->count = std::clamp<int64_t>(g->numel - g->begin, 0, g->shard);
    g->replicated = stage_ < 3 || g->numel < options.param_persistence_threshold;
    g->trainable = layout.groups()[i].trainable;
    const int64_t padded = g->shard * world_;
    const int64_t opt = optimizer_count(*g);
    if (g->replicated) {
      g->full = Buffer(dtype, Shape{padded}, device_);
    } else {
      g->param_shard = Buffer(dtype, Shape{g->shard}, device_);
    }
    groups_.push_back(std::move(g));
    Group& group = *groups_.back();
    if (!group.trainable) continue;  // the compute copy is all a frozen group holds
    allocate_training_state(group, optimizer_floats);
    max_optimizer = std::max(max_optimizer, opt);
  }

  if (copy_grads_) backward_done_ = DeviceEvent(device_);
  if (copy_grads_ && separate_master_) {  // uploads to the GPU go through pinned staging
    for (int s = 0; s < 2; ++s) {
      staging_[s] = std::make_unique<Pinned>(dtype, std::max<int64_t>(max_optimizer, 1));
      staging_free_[s] = DeviceEvent(device_);
    }
  }
  if (options.optimizer_placement == OptimizerPlacement::nvme) {
    ZT_CHECK(!options.nvme_path.empty(), "zero: --offload-optimizer nvme needs --nvme-path");
    nvme_ = std::make_unique<NvmeStore>(options.nvme_path, rank_, optimizer_floats);
    for (Buffer& m : nvme_moments_) {
      m = Buffer(DType::f32, Shape{2 * std::max<int64_t>(max_optimizer, 1)});
    }
  }
  if (host_thread_) worker_ = std::thread([this] { host_optimizer_loop(); });
}

ZeroEngine::~ZeroEngine() {
  if (!worker_.joinable()) return;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !job_pending_; });
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
  // The last uploads read the pinned staging buffers, which are freed next.
  if (copy_grads_) device_synchronize(device_);
}

void ZeroEngine::allocate_training_state(Group& g, int64_t& optimizer_floats) {
  const bool host_optimizer = options_.optimizer_placement != OptimizerPlacement::device;
  const Device optimizer_device = host_optimizer ? Device::cpu() : device_;
  const int64_t padded = g.shard * world_, opt = optimizer_count(g);
  if (separate_master_) g.master = Buffer(DType::f32, Shape{opt}, optimizer_device);
  if (stage_ <= 1) g.grad_full = Buffer(DType::f32, Shape{padded}, device_);
  if (stage_ >= 1) g.grad_shard = Buffer(DType::f32, Shape{g.shard}, device_);
  if (copy_grads_) {
    g.host_grads = std::make_unique<Pinned>(DType::f32, std::max<int64_t>(opt, 1));
    g.grads_copied = DeviceEvent(device_);
    g.uploaded = DeviceEvent(device_);
  }
  if (options_.optimizer_placement == OptimizerPlacement::nvme) {
    g.nvme_offset = optimizer_floats;
    optimizer_floats += 2 * opt;
  } else {
    g.exp_avg = Buffer(DType::f32, Shape{opt}, optimizer_device);
    g.exp_avg_sq = Buffer(DType::f32, Shape{opt}, optimizer_device);
  }
}

int64_t ZeroEngine::optimizer_count(const Group& g) const {
  if (!g.trainable) return 0;
  return stage_ == 0 ? g.numel : g.count;
}

int64_t ZeroEngine::optimizer_offset(const Group& g) const {
  return stage_ == 0 ? 0 : g.begin;
}

Tensor ZeroEngine::compute_slice(const Group& g) const {
  const int64_t n = optimizer_count(g);
  if (!g.replicated) return g.param_shard.view().flat(0, n);
  return g.full.view().flat(optimizer_offset(g), n);
}

Tensor ZeroEngine::master(const Group& g) const {
  return separate_master_ ? g.master.view() : compute_slice(g);
}

Tensor ZeroEngine::reduced_grads(const Group& g) const {
  const int64_t n = optimizer_count(g);
  return stage_ == 0 ? g.grad_full.view().flat(0, n) : g.grad_shard.view().flat(0, n);
}

void ZeroEngine::round_into_compute_copy(Group& g, int slot) {
  if (!separate_master_) return;
  const Tensor from = master(g), to = compute_slice(g);
  const int64_t n = from.numel();
  if (n == 0) return;
  if (!from.device.is_cpu()) {  // on the GPU (loading): a one-off conversion through the host
    convert_copy(to, from);
    return;
  }
  if (to.device.is_cpu()) {
    convert(to.data, to.dtype, from.data, DType::f32, n);
    return;
  }
  // Host master, GPU compute copy: round into pinned staging, upload on the to_device queue.
  staging_free_[slot].wait_host();
  convert(staging_[slot]->data, to.dtype, from.data, DType::f32, n);
  copy_bytes_async(to.data, to.device, staging_[slot]->data, Device::cpu(), to.nbytes(),
                   CopyQueue::to_device);
  staging_free_[slot].record(CopyQueue::to_device);
  g.uploaded.record(CopyQueue::to_device);
}

void ZeroEngine::set_group_params(size_t i, const Tensor& full) {
  Group& g = *groups_.at(i);
  ZT_CHECK(full.dtype == DType::f32 && full.numel() == g.numel, "zero: group ", g.name, " is ",
           describe(full), ", expected f32[", g.numel, "]");
  finish_updates();
  const Tensor flat = full.reshape(Shape{g.numel});
  if (g.replicated) {
    convert_copy(g.full.view().flat(0, g.numel), flat);
  } else {
    convert_copy(g.param_shard.view().flat(0, g.count), range(flat, g.begin, g.count));
  }
  if (separate_master_ && g.trainable) {
    copy(master(g), range(flat, optimizer_offset(g), optimizer_count(g)));
  }
}

void ZeroEngine::attach(LlamaModel& model) {
  auto& params = model.params().groups();
  auto& grads = model.grads().groups();
  ZT_CHECK(params.size() == groups_.size() && grads.size() == groups_.size(),
           "zero: the model has ", params.size(), " parameter groups, the engine ", groups_.size());
  for (size_t i = 0; i < groups_.size(); ++i) {
    Group& g = *groups_[i];
    ZT_CHECK(params[i].name == g.name && params[i].data.view().data == nullptr &&
                 grads[i].data.view().data == nullptr,
             "zero: the model's group ", params[i].name,
             " must be unallocated (Storage::none, GradStorage::external)");
    if (g.replicated) params[i].data = Buffer::borrow(g.full.view().flat(0, g.numel));
    if (stage_ <= 1 && g.trainable) {
      grads[i].data = Buffer::borrow(g.grad_full.view().flat(0, g.numel));
    }
  }
  model_ = &model;
  model.set_hooks(this);
}

Buffer ZeroEngine::take_slot(int64_t count, DType dtype) {
  for (size_t c = 0; c < slot_kinds_.size(); ++c) {
    if (slot_kinds_[c] == std::pair{count, dtype} && !free_slots_[c].empty()) {
      Buffer b = std::move(free_slots_[c].back());
      free_slots_[c].pop_back();
      return b;
    }
  }
  slot_bytes_ += count * dtype_size(dtype);
  return Buffer(dtype, Shape{count}, device_);
}

void ZeroEngine::give_slot(Buffer slot) {
  const std::pair kind{slot.numel(), slot.view().dtype};
  for (size_t c = 0; c < slot_kinds_.size(); ++c) {
    if (slot_kinds_[c] == kind) {
      free_slots_[c].push_back(std::move(slot));
      return;
    }
  }
  slot_kinds_.push_back(kind);
  free_slots_.emplace_back();
  free_slots_.back().push_back(std::move(slot));
}

void ZeroEngine::start_gather(Group& g) {
  ensure_current(g);
  g.gathered = take_slot(g.shard * world_, options_.compute.dtype);
  g.pending_gather = comm_.all_gather_async(g.param_shard.view().data, g.gathered.view().data,
                                            g.shard, options_.compute.dtype);
}

void ZeroEngine::fetch_params(int64_t group, int64_t next) {
  Group& g = *groups_.at(static_cast<size_t>(group));
  ensure_current(g);
  if (!g.replicated) {
    if (!g.gathered.view().data) start_gather(g);
    if (g.pending_gather) {
      g.pending_gather->wait();
      g.pending_gather.reset();
    }
    if (g.uses++ == 0) {
      model_->params().groups()[static_cast<size_t>(group)].data =
          Buffer::borrow(g.gathered.view().flat(0, g.numel));
    }
  }
  if (next >= 0) {
    Group& n = *groups_.at(static_cast<size_t>(next));
    // Started now, completed when the model fetches it: the gather overlaps this group's compute.
    if (!n.replicated && !n.gathered.view().data) start_gather(n);
  }
}

void ZeroEngine::release_params(int64_t group) {
  Group& g = *groups_.at(static_cast<size_t>(group));
  if (g.replicated || --g.uses > 0) return;
  model_->params().groups()[static_cast<size_t>(group)].data = Buffer();
  give_slot(std::move(g.gathered));
  g.gathered = Buffer();
}

// The gradient buffers of a step start at zero. With a GPU and the optimizer on the host the last
// step's gradients may still be on their way to the host when the next step starts: each group's
// are zeroed when its backward first needs them, after its copy (the forward runs meanwhile).
void ZeroEngine::prepare_grads(Group& g) {
  if (!g.zero_pending) return;
  g.grads_copied.wait_on_compute();
  g.grad_full.zero();
  g.grad_shard.zero();
  g.zero_pending = false;
}

void ZeroEngine::begin_grads(int64_t group) {
  Group& g = *groups_.at(static_cast<size_t>(group));
  prepare_grads(g);
  if (stage_ <= 1 || !g.trainable) return;
  g.grad_slot = take_slot(g.shard * world_, DType::f32);
  g.grad_slot.zero();
  model_->grads().groups()[static_cast<size_t>(group)].data =
      Buffer::borrow(g.grad_slot.view().flat(0, g.numel));
}

void ZeroEngine::end_grads(int64_t group) {
  Group& g = *groups_.at(static_cast<size_t>(group));
  if (stage_ <= 1 || !g.trainable) return;
  PendingReduce p;
  p.group = &g;
  p.slot = std::move(g.grad_slot);
  g.grad_slot = Buffer();
  model_->grads().groups()[static_cast<size_t>(group)].data = Buffer();
  void* target = g.grad_shard.view().data;
  if (!g.grad_fresh) {  // a later micro-batch: reduced apart, then added
    p.sum = take_slot(g.shard, DType::f32);
    target = p.sum.view().data;
  }
  g.grad_fresh = false;
  p.request = comm_.reduce_scatter_async(p.slot.view().data, target, g.shard, DType::f32);
  pending_reduces_.push_back(std::move(p));
  complete_reduces(1);  // the previous group's: it ran beside this group's backward
}

void ZeroEngine::complete_reduces(size_t keep) {
  size_t done = 0;
  for (; done + keep < pending_reduces_.size(); ++done) {
    PendingReduce& p = pending_reduces_[done];
    p.request->wait();
    p.request.reset();
    if (p.sum.view().data) {
      add_in_place(p.group->grad_shard, p.sum.view().flat(0, p.group->shard));
      give_slot(std::move(p.sum));
    }
    give_slot(std::move(p.slot));
  }
  pending_reduces_.erase(pending_reduces_.begin(),
                         pending_reduces_.begin() + static_cast<std::ptrdiff_t>(done));
}

void ZeroEngine::zero_grads() {
  complete_reduces(0);
  // On the CPU the host optimizer's thread reads the gradients in place: it must be done.
  if (host_thread_ && !copy_grads_) finish_host_job();
  for (auto& g : groups_) {
    g->grad_fresh = true;
    if (!g->trainable) continue;
    if (copy_grads_) {
      g->zero_pending = true;  // prepare_grads, after the copy to the host
    } else {
      g->grad_full.zero();
      g->grad_shard.zero();
    }
  }
}

double ZeroEngine::reduce_gradients() {
  complete_reduces(0);
  for (auto& g : groups_) prepare_grads(*g);  // a group no backward reached
  double total = 0.0;
  if (stage_ == 0) {
    if (world_ > 1) {
      std::vector<std::unique_ptr<CommRequest>> inflight;
      for (auto& g : groups_) {
        if (!g->trainable) continue;
        inflight.push_back(comm_.all_reduce_async(g->grad_full.f32(), g->numel, DType::f32));
      }
      for (auto& r : inflight) r->wait();
    }
    // Every rank holds the whole reduced gradient: the norm needs no communication.
    for (auto& g : groups_) {
      if (g->trainable) total += sum_of_squares(reduced_grads(*g));
    }
    return std::sqrt(total);
  }
  if (stage_ == 1) {
    for (auto& g : groups_) {
      if (!g->trainable) continue;
      comm_.reduce_scatter(g->grad_full.f32(), g->grad_shard.f32(), g->shard, DType::f32);
    }
  }
  for (auto& g : groups_) {
    if (g->trainable) total += sum_of_squares(reduced_grads(*g));
  }
  return std::sqrt(comm_.all_reduce_sum(total));  // one all-reduce of the squared norms
}

void ZeroEngine::scale_gradients(float factor) {
  for (auto& g : groups_) {
    if (g->trainable) scale_in_place(reduced_grads(*g), factor);
  }
}

void ZeroEngine::optimizer_step(double lr) {
  finish_updates();  // the previous step's, where nothing has used the parameters since
  ++step_;
  if (host_optimizer_) {
    if (copy_grads_) {
      // On the download stream after everything queued so far (backward, reduction, clipping);
      // the host thread waits for each group's copy, the next backward zeroes it after it.
      backward_done_.record(CopyQueue::compute);
      backward_done_.wait_on(CopyQueue::to_host);
      for (auto& g : groups_) {
        if (!g->trainable) continue;
        const Tensor grads = reduced_grads(*g);
        copy_bytes_async(g->host_grads->data, Device::cpu(), grads.data, device_, grads.nbytes(),
                         CopyQueue::to_host);
        g->grads_copied.record(CopyQueue::to_host);
      }
    }
    if (host_thread_) {
      for (auto& g : groups_) g->stale = g->trainable;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        job_pending_ = true;
        job_lr_ = lr;
        job_step_ = step_;
        updated_ = 0;
      }
      changed_.notify_all();
      return;
    }
    host_update_all(lr, step_);
  } else {
    AdamWConfig c = options_.adam;
    c.lr = lr;
    for (auto& gp : groups_) {
      Group& g = *gp;
      if (optimizer_count(g) == 0) continue;
      if (separate_master_) {
        adamw_step_mixed(master(g), reduced_grads(g), g.exp_avg, g.exp_avg_sq, compute_slice(g), c,
                         step_);
      } else {
        adamw_step(master(g), reduced_grads(g), g.exp_avg, g.exp_avg_sq, c, step_);
      }
    }
  }
  if (stage_ >= 1 && world_ > 1) {
    // Replicated groups: every rank updated its own slice; gather the slices in place.
    std::vector<std::unique_ptr<CommRequest>> inflight;
    for (auto& g : groups_) {
      if (!g->replicated || !g->trainable) continue;
      char* full = static_cast<char*>(g->full.view().data);
      inflight.push_back(
          comm_.all_gather_async(full + g->begin * dtype_size(options_.compute.dtype), full,
                                 g->shard, options_.compute.dtype));
    }
    for (auto& r : inflight) r->wait();
  }
}

void ZeroEngine::host_optimizer_loop() {
  device_select(device_);  // this thread's CUDA calls go to the engine's GPU
  for (;;) {
    double lr = 0.0;
    int64_t step = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return job_pending_ || stopping_; });
      if (!job_pending_) return;
      lr = job_lr_;
      step = job_step_;
    }
    try {
      host_update_all(lr, step);
    } catch (...) {
      if (nvme_) {  // no I/O into the staging pairs may outlive the failed job
        try {
          nvme_->wait_all();
        } catch (...) {
        }
      }
      std::lock_guard<std::mutex> lock(mutex_);
      worker_error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      updated_ = groups_.size();
      job_pending_ = false;
    }
    changed_.notify_all();
  }
}

// On the host thread: every group in the forward's order. With NVMe, group i+1's moments are read
// while group i updates, and group i's are written back while group i+1 updates.
void ZeroEngine::host_update_all(double lr, int64_t step) {
  AdamWConfig c = options_.adam;
  c.lr = lr;
  Buffer* moments = nvme_moments_;
  int64_t reads[2] = {0, 0}, writes[2] = {0, 0};
  auto read_moments = [&](size_t i) {
    Group& g = *groups_[i];
    reads[i % 2] = nvme_->read_async(g.nvme_offset, moments[i % 2].f32(), 2 * optimizer_count(g));
  };
  if (nvme_) read_moments(0);
  for (size_t i = 0; i < groups_.size(); ++i) {
    Group& g = *groups_[i];
    const int64_t n = optimizer_count(g);
    if (nvme_ && i + 1 < groups_.size()) {
      if (writes[(i + 1) % 2]) nvme_->wait(writes[(i + 1) % 2]);
      read_moments(i + 1);
    }
    if (n > 0) {
      g.grads_copied.wait_host();
      const Shape shape{n};
      const Tensor grads =
          copy_grads_ ? Tensor(g.host_grads->data, DType::f32, shape) : reduced_grads(g);
      Tensor avg = g.exp_avg, avg_sq = g.exp_avg_sq;
      if (nvme_) {
        nvme_->wait(reads[i % 2]);
        avg = moments[i % 2].view().flat(0, n);
        avg_sq = moments[i % 2].view().flat(n, n);
      }
      adamw_step(master(g), grads, avg, avg_sq, c, step);
      if (nvme_) writes[i % 2] = nvme_->write_async(g.nvme_offset, avg.ptr<float>(), 2 * n);
      round_into_compute_copy(g, static_cast<int>(i % 2));
    } else if (nvme_) {
      nvme_->wait(reads[i % 2]);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      updated_ = i + 1;
    }
    changed_.notify_all();
  }
  if (nvme_) nvme_->wait_all();
}

void ZeroEngine::wait_host_update(size_t group) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !job_pending_ || updated_ > group; });
  if (worker_error_) std::rethrow_exception(worker_error_);
}

void ZeroEngine::finish_host_job() {
  if (!host_thread_) return;
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !job_pending_; });
  if (worker_error_) std::rethrow_exception(worker_error_);
}

void ZeroEngine::ensure_current(Group& g) {
  if (!g.stale) return;
  wait_host_update(g.index);
  g.uploaded.wait_on_compute();
  if (stage_ >= 1 && world_ > 1 && g.replicated) {
    char* full = static_cast<char*>(g.full.view().data);
    comm_.all_gather(full + g.begin * dtype_size(options_.compute.dtype), full, g.shard,
                     options_.compute.dtype);
  }
  g.stale = false;
}

void ZeroEngine::finish_updates() {
  for (auto& g : groups_) ensure_current(*g);
  finish_host_job();
}

void ZeroEngine::gather_tensor(const std::string& name, float* out) {
  finish_updates();
  for (auto& gp : groups_) {
    Group& g = *gp;
    for (const ParamView& v : g.views) {
      if (v.name != name) continue;
      ZT_CHECK(g.trainable, "zero: \"", name,
               "\" is frozen (LoRA's base): read it from the model folder");
      const int64_t lo = v.offset, n = v.shape.numel();
      // The f32 master values: whole on every rank at stage 0, else each rank's own range.
      const Tensor values = master(g);
      if (stage_ == 0) {
        if (rank_ == 0)
          copy_bytes(out, Device::cpu(), values.ptr<float>() + lo, values.device, n * 4);
        return;
      }
      std::vector<int64_t> counts(static_cast<size_t>(world_));
      for (int r = 0; r < world_; ++r) {
        const int64_t b = g.shard * r, e = std::min(g.numel, b + g.shard);
        counts[static_cast<size_t>(r)] =
            std::max<int64_t>(0, std::min(e, lo + n) - std::max(b, lo));
      }
      const int64_t mine = std::clamp<int64_t>(lo, g.begin, g.begin + g.count);
      comm_.gather_to_root(values.ptr<float>() + (mine - g.begin), counts.data(), out, DType::f32);
      return;
    }
  }
  fail(str("zero: no parameter named \"", name, "\""));
}

std::string ZeroEngine::state_file_name(int rank, int world) {
  char name[64];
  std::snprintf(name, sizeof(name), "rank-%05d-of-%05d.safetensors", rank, world);
  return name;
}

void ZeroEngine::save_state(const std::string& path) {
  // This rank's own range [begin, begin + count) of every group, whatever the stage, in f32:
  // parameters from the master copy, then the moments (read back from NVMe or the GPU).
  finish_updates();
  std::vector<Buffer> host;  // copies of what is not in host memory
  std::vector<NamedTensor> tensors;
  auto on_host = [&](const Tensor& t) {
    if (t.device.is_cpu()) return t;
    host.emplace_back(t.dtype, t.shape);
    copy(host.back(), t);
    return host.back().view();
  };
  for (const auto& gp : groups_) {
    const Group& g = *gp;
    if (!g.trainable) continue;  // frozen: reloaded from the model folder, never changed
    const int64_t n = optimizer_count(g), skip = g.begin - optimizer_offset(g);
    Tensor avg, avg_sq;
    if (nvme_) {
      host.emplace_back(DType::f32, Shape{std::max<int64_t>(2 * n, 1)});
      nvme_->wait(nvme_->read_async(g.nvme_offset, host.back().f32(), 2 * n));
      avg = host.back().view().flat(0, n);
      avg_sq = host.back().view().flat(n, n);
    } else {
      avg = on_host(g.exp_avg.view().flat(0, n));
      avg_sq = on_host(g.exp_avg_sq.view().flat(0, n));
    }
    const Tensor params = on_host(master(g));
    tensors.push_back({"param/" + g.name, range(params, skip, g.count)});
    tensors.push_back({"exp_avg/" + g.name, range(avg, skip, g.count)});
    tensors.push_back({"exp_avg_sq/" + g.name, range(avg_sq, skip, g.count)});
  }
  write_safetensors(path, tensors);
}

void ZeroEngine::load_state(const std::string& dir, int saved_world) {
  ZT_CHECK(saved_world >= 1, dir, ": saved world size ", saved_world);
  finish_updates();
  std::vector<SafetensorsFile> files;
  for (int r = 0; r < saved_world; ++r) {
    files.push_back(
        SafetensorsFile::open((fs::path(dir) / state_file_name(r, saved_world)).string()));
  }
  // dst[0, hi - lo) <- elements [lo, hi) of `kind/group`, assembled from the saved ranks' ranges.
  auto read_range = [&](const std::string& kind, const Group& g, int64_t lo, int64_t hi,
                        float* dst) {
    const int64_t saved_shard = (g.numel + saved_world - 1) / saved_world;
    const std::string name = kind + "/" + g.name;
    for (int r = 0; r < saved_world; ++r) {
      const int64_t b = saved_shard * r, e = std::min(g.numel, b + saved_shard);
      const int64_t from = std::max(lo, b), to = std::min(hi, e);
      if (from >= to) continue;
      const SafetensorsFile& f = files[static_cast<size_t>(r)];
      const SafetensorsEntry* entry = f.find(name);
      ZT_CHECK(entry, f.path(), ": tensor \"", name, "\" missing");
      const int64_t expected = std::max<int64_t>(0, e - b);
      ZT_CHECK(entry->dtype == DType::f32 && entry->shape == Shape{expected}, f.path(),
               ": tensor \"", name, "\" is ", dtype_safetensors_name(entry->dtype), entry->shape,
               ", expected F32[", expected, "] (was the state written for another model?)");
      const float* src = static_cast<const float*>(f.tensor(*entry).data);
      std::memcpy(dst + (from - lo), src + (from - b), static_cast<size_t>(to - from) * 4);
    }
  };
  for (auto& gp : groups_) {
    Group& g = *gp;
    if (!g.trainable) continue;
    // The compute copy: the whole group where it is replicated, else this rank's shard.
    const int64_t lo = g.replicated ? 0 : g.begin, hi = g.replicated ? g.numel : g.begin + g.count;
    Buffer values(DType::f32, Shape{std::max<int64_t>(hi - lo, 1)});
    read_range("param", g, lo, hi, values.f32());
    const Tensor compute =
        g.replicated ? g.full.view().flat(0, g.numel) : g.param_shard.view().flat(0, g.count);
    convert_copy(compute, values.view().flat(0, hi - lo));
    const int64_t n = optimizer_count(g), first = optimizer_offset(g);
    if (separate_master_) copy(master(g), range(values.view(), first - lo, n));
    Buffer moments(DType::f32, Shape{std::max<int64_t>(2 * n, 1)});
    read_range("exp_avg", g, first, first + n, moments.f32());
    read_range("exp_avg_sq", g, first, first + n, moments.f32() + n);
    if (nvme_) {
      nvme_->wait(nvme_->write_async(g.nvme_offset, moments.f32(), 2 * n));
    } else {
      copy(g.exp_avg.view().flat(0, n), moments.view().flat(0, n));
      copy(g.exp_avg_sq.view().flat(0, n), moments.view().flat(n, n));
    }
  }
}

ZeroMemory ZeroEngine::memory() const {
  auto bytes = [](const Buffer& b) { return b.view().data ? b.view().nbytes() : int64_t{0}; };
  ZeroMemory m;
  for (const auto& g : groups_) {
    m.params += bytes(g->full) + bytes(g->param_shard);
    m.master += bytes(g->master);
    m.grads += bytes(g->grad_full) + bytes(g->grad_shard);
    m.host_grads += g->host_grads ? g->host_grads->bytes : 0;
    m.optimizer += bytes(g->exp_avg) + bytes(g->exp_avg_sq);
  }
  m.slots = slot_bytes_;
  for (const auto& s : staging_) m.staging += s ? s->bytes : 0;
  for (const Buffer& b : nvme_moments_) m.staging += bytes(b);
  m.nvme_file = nvme_ ? nvme_->bytes() : 0;
  return m;
}

}  // namespace zerotune
