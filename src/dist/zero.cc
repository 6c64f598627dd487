#include "dist/zero.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/device_memory.h"
#include "dist/nvme_store.h"
#include "io/safetensors.h"
#include "kernels/adamw.h"

namespace zerotune {

namespace fs = std::filesystem;

struct ZeroEngine::Group {
  std::string name;
  std::vector<ParamView> views;
  int64_t numel = 0;  // real elements
  int64_t shard = 0;  // elements per rank; the padded group is shard * world
  int64_t begin = 0;  // this rank's first element
  int64_t count = 0;  // this rank's real elements (the last ranks' shards may be short or empty)
  bool replicated = true;
  Buffer full;         // [shard * world] replicated parameters
  Buffer param_shard;  // [shard] stage 3: parameters and fp32 master
  Buffer grad_full;    // [shard * world] stages 0-1: gradients accumulated over micro-batches
  Buffer grad_shard;   // [shard] stages 1-3: this rank's reduced gradient
  Buffer exp_avg, exp_avg_sq;  // [optimizer elements], unless paged to NVMe
  int64_t nvme_offset = 0;     // exp_avg at nvme_offset, exp_avg_sq right after it
  Buffer gathered;             // [shard * world] stage 3: the gathered parameters while in use
  std::unique_ptr<CommRequest> pending_gather;
  int uses = 0;
  Buffer master;           // device mode: [numel] f32 master weights unless the compute copy is f32
  Buffer grad_host;        // device mode with the optimizer on the host: [numel] f32 gradient copy
  Buffer grad_slot;        // [shard * world] stages 2-3: one micro-batch's unreduced gradient
  bool grad_fresh = true;  // grad_shard holds nothing from this step yet
};

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
  device_ = !options.compute.device.is_cpu();
  host_optimizer_ = device_ && options.optimizer_placement == OptimizerPlacement::cpu;
  ZT_CHECK(!device_ || world_ == 1, "zero: sharding over ", world_,
           " GPUs is not implemented in "
           "this version (the NCCL communicator is, the engine's GPU stages are not); train on one "
           "GPU, or on CPU ranks");
  ZT_CHECK(!device_ || options.optimizer_placement != OptimizerPlacement::nvme,
           "zero: --offload-optimizer nvme is not available with --device cuda in this version");
  ZT_CHECK(device_ || options.compute.dtype == DType::f32,
           "zero: the CPU backend computes in f32, not ", dtype_name(options.compute.dtype));
  int64_t max_shard = 0, optimizer_floats = 0;
  for (size_t i = 0; i < layout.groups().size(); ++i) {
    auto g = std::make_unique<Group>();
    g->name = layout.groups()[i].name;
    g->views = layout.groups()[i].views;
    g->numel = layout.group_numel(i);
    g->shard = (g->numel + world_ - 1) / world_;
    g->begin = g->shard * rank_;
    g->count = std::clamp<int64_t>(g->numel - g->begin, 0, g->shard);
    g->replicated = stage_ < 3 || g->numel < options.param_persistence_threshold;
    const int64_t padded = g->shard * world_;
    if (device_) {  // one GPU: stage 0
      const Device dev = options.compute.device;
      const Device opt_dev = host_optimizer_ ? Device::cpu() : dev;
      g->full = Buffer(options.compute.dtype, Shape{padded}, dev);
      if (options.compute.dtype != DType::f32 || host_optimizer_) {
        g->master = Buffer(DType::f32, Shape{g->numel}, opt_dev);
      }
      g->grad_full = Buffer(DType::f32, Shape{padded}, dev);
      if (host_optimizer_) g->grad_host = Buffer(DType::f32, Shape{g->numel});
      g->exp_avg = Buffer(DType::f32, Shape{g->numel}, opt_dev);
      g->exp_avg_sq = Buffer(DType::f32, Shape{g->numel}, opt_dev);
      max_shard = std::max(max_shard, g->numel);
      groups_.push_back(std::move(g));
      continue;
    }
    if (g->replicated) {
      g->full = Buffer(DType::f32, Shape{padded});
    } else {
      g->param_shard = Buffer(DType::f32, Shape{g->shard});
    }
    if (stage_ <= 1) g->grad_full = Buffer(DType::f32, Shape{padded});
    if (stage_ >= 1) g->grad_shard = Buffer(DType::f32, Shape{g->shard});
    const int64_t opt = optimizer_count(*g);
    if (options.optimizer_placement == OptimizerPlacement::nvme) {
      g->nvme_offset = optimizer_floats;
      optimizer_floats += 2 * opt;
    } else {
      g->exp_avg = Buffer(DType::f32, Shape{opt});
      g->exp_avg_sq = Buffer(DType::f32, Shape{opt});
    }
    max_shard = std::max(max_shard, g->shard);
    groups_.push_back(std::move(g));
  }
  if (stage_ >= 2) reduce_tmp_ = Buffer(DType::f32, Shape{max_shard});
  if (device_) staging_ = Buffer(options.compute.dtype, Shape{max_shard});
  if (options.optimizer_placement == OptimizerPlacement::nvme) {
    ZT_CHECK(!options.nvme_path.empty(), "zero: --offload-optimizer nvme needs --nvme-path");
    nvme_ = std::make_unique<NvmeStore>(options.nvme_path, rank_, optimizer_floats);
  }
}

ZeroEngine::~ZeroEngine() = default;

int64_t ZeroEngine::optimizer_count(const Group& g) const {
  return stage_ == 0 ? g.numel : g.count;
}

float* ZeroEngine::optimizer_params(Group& g) {
  if (stage_ == 0) return g.full.f32();
  return g.replicated ? g.full.f32() + g.begin : g.param_shard.f32();
}

float* ZeroEngine::optimizer_grads(Group& g) {
  return stage_ == 0 ? g.grad_full.f32() : g.grad_shard.f32();
}

Tensor ZeroEngine::master_of(const Group& g) {
  return g.master.view().data ? g.master.view() : g.full.view().flat(0, g.numel);
}

// The compute copy on the GPU <- the master values, rounded to the compute dtype.
void ZeroEngine::upload_compute_copy(Group& g) {
  const Tensor master = master_of(g);
  if (master.data == g.full.view().data) return;  // f32 on the GPU: one copy
  if (!master.device.is_cpu()) {  // loading: a one-off conversion
    convert_copy(g.full.view().flat(0, g.numel), master);
    return;
  }
  // Every step with the optimizer on the host: through the persistent staging buffer.
  const Tensor staged = staging_.view().flat(0, g.numel);
  convert(staged.data, staged.dtype, master.data, DType::f32, g.numel);
  copy(g.full.view().flat(0, g.numel), staged);
}

void ZeroEngine::set_group_params(size_t i, const Tensor& full) {
  Group& g = *groups_.at(i);
  ZT_CHECK(full.dtype == DType::f32 && full.numel() == g.numel, "zero: group ", g.name, " is ",
           describe(full), ", expected f32[", g.numel, "]");
  if (device_) {
    copy(master_of(g), full.reshape(Shape{g.numel}));
    upload_compute_copy(g);
    return;
  }
  if (g.replicated) {
    std::memcpy(g.full.f32(), full.f32(), static_cast<size_t>(g.numel) * 4);
  } else {
    std::memcpy(g.param_shard.f32(), full.f32() + g.begin, static_cast<size_t>(g.count) * 4);
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
    if (stage_ <= 1) grads[i].data = Buffer::borrow(g.grad_full.view().flat(0, g.numel));
  }
  model_ = &model;
  model.set_hooks(this);
}

Buffer ZeroEngine::take_slot(int64_t count) {
  for (size_t c = 0; c < slot_sizes_.size(); ++c) {
    if (slot_sizes_[c] == count && !free_slots_[c].empty()) {
      Buffer b = std::move(free_slots_[c].back());
      free_slots_[c].pop_back();
      return b;
    }
  }
  slot_bytes_ += count * 4;
  return Buffer(DType::f32, Shape{count});
}

void ZeroEngine::give_slot(Buffer slot) {
  const int64_t count = slot.numel();
  for (size_t c = 0; c < slot_sizes_.size(); ++c) {
    if (slot_sizes_[c] == count) {
      free_slots_[c].push_back(std::move(slot));
      return;
    }
  }
  slot_sizes_.push_back(count);
  free_slots_.emplace_back();
  free_slots_.back().push_back(std::move(slot));
}

void ZeroEngine::start_gather(Group& g) {
  g.gathered = take_slot(g.shard * world_);
  g.pending_gather =
      comm_.all_gather_async(g.param_shard.f32(), g.gathered.f32(), g.shard, DType::f32);
}

void ZeroEngine::fetch_params(int64_t group, int64_t next) {
  Group& g = *groups_.at(static_cast<size_t>(group));
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

void ZeroEngine::begin_grads(int64_t group) {
  if (stage_ <= 1) return;
  Group& g = *groups_.at(static_cast<size_t>(group));
  g.grad_slot = take_slot(g.shard * world_);
  g.grad_slot.zero();
  model_->grads().groups()[static_cast<size_t>(group)].data =
      Buffer::borrow(g.grad_slot.view().flat(0, g.numel));
}

void ZeroEngine::end_grads(int64_t group) {
  if (stage_ <= 1) return;
  Group& g = *groups_.at(static_cast<size_t>(group));
  if (g.grad_fresh) {
    comm_.reduce_scatter(g.grad_slot.f32(), g.grad_shard.f32(), g.shard, DType::f32);
    g.grad_fresh = false;
  } else {
    comm_.reduce_scatter(g.grad_slot.f32(), reduce_tmp_.f32(), g.shard, DType::f32);
    float* acc = g.grad_shard.f32();
    const float* add = reduce_tmp_.f32();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < g.shard; ++i) acc[i] += add[i];
  }
  model_->grads().groups()[static_cast<size_t>(group)].data = Buffer();
  give_slot(std::move(g.grad_slot));
  g.grad_slot = Buffer();
}

void ZeroEngine::zero_grads() {
  for (auto& g : groups_) {
    g->grad_full.zero();
    g->grad_shard.zero();
    g->grad_fresh = true;
  }
}

namespace {

double squares(const Buffer& b, int64_t n) {
  return n == 0 ? 0.0 : sum_of_squares(b.view().flat(0, n));
}

}  // namespace

double ZeroEngine::reduce_gradients() {
  double total = 0.0;
  if (stage_ == 0) {
    if (world_ > 1) {
      std::vector<std::unique_ptr<CommRequest>> inflight;
      for (auto& g : groups_) {
        inflight.push_back(comm_.all_reduce_async(g->grad_full.f32(), g->numel, DType::f32));
      }
      for (auto& r : inflight) r->wait();
    }
    // Every rank holds the whole reduced gradient: the norm needs no communication.
    for (auto& g : groups_) total += squares(g->grad_full, g->numel);
    return std::sqrt(total);
  }
  if (stage_ == 1) {
    for (auto& g : groups_) {
      comm_.reduce_scatter(g->grad_full.f32(), g->grad_shard.f32(), g->shard, DType::f32);
    }
  }
  for (auto& g : groups_) total += squares(g->grad_shard, g->count);
  return std::sqrt(comm_.all_reduce_sum(total));  // one all-reduce of the squared norms
}

void ZeroEngine::scale_gradients(float factor) {
  for (auto& g : groups_) {
    const Buffer& grads = stage_ == 0 ? g->grad_full : g->grad_shard;
    const int64_t n = optimizer_count(*g);
    if (n > 0) scale_in_place(grads.view().flat(0, n), factor);
  }
}

void ZeroEngine::adam_group(Group& g, float* exp_avg, float* exp_avg_sq, double lr) {
  AdamWConfig c = options_.adam;
  c.lr = lr;
  const int64_t n = optimizer_count(g);
  if (n == 0) return;
  const Shape shape{n};
  adamw_step(Tensor(optimizer_params(g), DType::f32, shape),
             Tensor(optimizer_grads(g), DType::f32, shape), Tensor(exp_avg, DType::f32, shape),
             Tensor(exp_avg_sq, DType::f32, shape), c, step_);
}

void ZeroEngine::optimizer_step(double lr) {
  ++step_;
  if (device_) {
    AdamWConfig c = options_.adam;
    c.lr = lr;
    for (auto& gp : groups_) {
      Group& g = *gp;
      const Tensor grads = g.grad_full.view().flat(0, g.numel);
      if (host_optimizer_) {  // gradients down, AdamW on the host, the compute copy back up
        copy(g.grad_host, grads);
        adamw_step(g.master, g.grad_host, g.exp_avg, g.exp_avg_sq, c, step_);
        upload_compute_copy(g);
      } else if (g.master.view().data) {
        adamw_step_mixed(g.master, grads, g.exp_avg, g.exp_avg_sq, g.full.view().flat(0, g.numel),
                         c, step_);
      } else {
        adamw_step(g.full.view().flat(0, g.numel), grads, g.exp_avg, g.exp_avg_sq, c, step_);
      }
    }
    return;
  }
  if (!nvme_) {
    for (auto& g : groups_) adam_group(*g, g->exp_avg.f32(), g->exp_avg_sq.f32(), lr);
  } else {
    // Two staging pairs: group i+1's moments are read while group i updates, and group i's are
    // written back while group i+1 updates.
    int64_t largest = 0;
    for (auto& g : groups_) largest = std::max(largest, optimizer_count(*g));
    Buffer stage[2] = {Buffer(DType::f32, Shape{2 * largest}),
                       Buffer(DType::f32, Shape{2 * largest})};
    int64_t reads[2] = {0, 0}, writes[2] = {0, 0};
    auto read_group = [&](size_t i) {
      Group& g = *groups_[i];
      reads[i % 2] = nvme_->read_async(g.nvme_offset, stage[i % 2].f32(), 2 * optimizer_count(g));
    };
    read_group(0);
    for (size_t i = 0; i < groups_.size(); ++i) {
      Group& g = *groups_[i];
      const int64_t n = optimizer_count(g);
      if (i + 1 < groups_.size()) {
        if (writes[(i + 1) % 2]) nvme_->wait(writes[(i + 1) % 2]);
        read_group(i + 1);
      }
      nvme_->wait(reads[i % 2]);
      float* moments = stage[i % 2].f32();
      adam_group(g, moments, moments + n, lr);
      writes[i % 2] = nvme_->write_async(g.nvme_offset, moments, 2 * n);
    }
    nvme_->wait_all();
  }
  if (stage_ >= 1 && world_ > 1) {
    // Replicated groups: every rank updated its own slice; gather the slices in place.
    std::vector<std::unique_ptr<CommRequest>> inflight;
    for (auto& g : groups_) {
      if (!g->replicated) continue;
      inflight.push_back(
          comm_.all_gather_async(g->full.f32() + g->begin, g->full.f32(), g->shard, DType::f32));
    }
    for (auto& r : inflight) r->wait();
  }
}

void ZeroEngine::gather_tensor(const std::string& name, float* out) {
  for (auto& gp : groups_) {
    Group& g = *gp;
    for (const ParamView& v : g.views) {
      if (v.name != name) continue;
      const int64_t lo = v.offset, n = v.shape.numel();
      if (device_) {
        copy_bytes(out, Device::cpu(), master_of(g).ptr<float>() + lo, master_of(g).device, n * 4);
        return;
      }
      if (g.replicated) {
        if (rank_ == 0) std::memcpy(out, g.full.f32() + lo, static_cast<size_t>(n) * 4);
        return;
      }
      std::vector<int64_t> counts(static_cast<size_t>(world_));
      for (int r = 0; r < world_; ++r) {
        const int64_t b = g.shard * r, e = std::min(g.numel, b + g.shard);
        counts[static_cast<size_t>(r)] =
            std::max<int64_t>(0, std::min(e, lo + n) - std::max(b, lo));
      }
      const int64_t mine = std::max(g.begin, lo);
      comm_.gather_to_root(g.param_shard.f32() + (mine - g.begin), counts.data(), out, DType::f32);
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

void ZeroEngine::save_state(const std::string& path) const {
  // This rank's own range [begin, begin + count) of every group, whatever the stage.
  std::vector<Buffer> moments;  // NVMe pages read back for the file (device mode: host copies)
  std::vector<NamedTensor> tensors;
  if (device_) {  // one rank: every group whole, copied to the host
    for (const auto& gp : groups_) {
      const Group& g = *gp;
      for (const auto& [kind, source] : {std::pair<const char*, Tensor>{"param/", master_of(g)},
                                         {"exp_avg/", g.exp_avg.view()},
                                         {"exp_avg_sq/", g.exp_avg_sq.view()}}) {
        moments.emplace_back(DType::f32, Shape{g.numel});
        copy(moments.back(), source);
        tensors.push_back({kind + g.name, moments.back().view()});
      }
    }
    write_safetensors(path, tensors);
    return;
  }
  for (const auto& gp : groups_) {
    const Group& g = *gp;
    const float* params = g.replicated ? g.full.f32() + g.begin : g.param_shard.f32();
    const int64_t moment_offset = stage_ == 0 ? g.begin : 0;
    const float *avg = nullptr, *avg_sq = nullptr;
    if (nvme_) {
      const int64_t n = optimizer_count(g);
      moments.emplace_back(DType::f32, Shape{std::max<int64_t>(2 * n, 1)});
      nvme_->wait(nvme_->read_async(g.nvme_offset, moments.back().f32(), 2 * n));
      avg = moments.back().f32();
      avg_sq = avg + n;
    } else {
      avg = g.exp_avg.f32();
      avg_sq = g.exp_avg_sq.f32();
    }
    const Shape shape{g.count};
    tensors.push_back({"param/" + g.name, Tensor(const_cast<float*>(params), DType::f32, shape)});
    tensors.push_back(
        {"exp_avg/" + g.name, Tensor(const_cast<float*>(avg + moment_offset), DType::f32, shape)});
    tensors.push_back({"exp_avg_sq/" + g.name,
                       Tensor(const_cast<float*>(avg_sq + moment_offset), DType::f32, shape)});
  }
  write_safetensors(path, tensors);
}

void ZeroEngine::load_state(const std::string& dir, int saved_world) {
  ZT_CHECK(saved_world >= 1, dir, ": saved world size ", saved_world);
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
    if (device_) {  // through host buffers into the device's (or the host optimizer's) copies
      for (const auto& [kind, target] : {std::pair<const char*, Tensor>{"param", master_of(g)},
                                         {"exp_avg", g.exp_avg.view()},
                                         {"exp_avg_sq", g.exp_avg_sq.view()}}) {
        Buffer host(DType::f32, Shape{g.numel});
        read_range(kind, g, 0, g.numel, host.f32());
        copy(target, host);
      }
      upload_compute_copy(g);
      continue;
    }
    if (g.replicated) {
      read_range("param", g, 0, g.numel, g.full.f32());
    } else {
      read_range("param", g, g.begin, g.begin + g.count, g.param_shard.f32());
    }
    const int64_t lo = stage_ == 0 ? 0 : g.begin;
    const int64_t n = optimizer_count(g);
    Buffer staging;
    float *avg = g.exp_avg.f32(), *avg_sq = g.exp_avg_sq.f32();
    if (nvme_) {
      staging = Buffer(DType::f32, Shape{std::max<int64_t>(2 * n, 1)});
      avg = staging.f32();
      avg_sq = avg + n;
    }
    read_range("exp_avg", g, lo, lo + n, avg);
    read_range("exp_avg_sq", g, lo, lo + n, avg_sq);
    if (nvme_) nvme_->wait(nvme_->write_async(g.nvme_offset, avg, 2 * n));
  }
}

ZeroMemory ZeroEngine::memory() const {
  auto bytes = [](const Buffer& b) { return b.view().data ? b.view().nbytes() : int64_t{0}; };
  ZeroMemory m;
  for (const auto& g : groups_) {
    m.params += bytes(g->full) + bytes(g->param_shard);
    m.grads += bytes(g->grad_full) + bytes(g->grad_shard);
    m.optimizer += bytes(g->exp_avg) + bytes(g->exp_avg_sq);
  }
  m.grads += bytes(reduce_tmp_);
  m.slots = slot_bytes_;
  m.nvme_file = nvme_ ? nvme_->bytes() : 0;
  return m;
}

}  // namespace zerotune
