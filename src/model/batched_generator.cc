#include "model/batched_generator.h"

#include "core/device_memory.h"
#include "kernels/bias.h"
#include "kernels/decode_attention.h"
#include "kernels/decode_linear.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace zerotune {

namespace {

constexpr int64_t kFree = -1;  // the length of a slot that holds no sequence

// A prefill runs one sequence's positions through the GEMMs; a decode step runs one row per
// sequence through the batch-invariant decode kernels.
enum class Pass : uint8_t { prefill, decode };

using LinearFn = void (*)(const Tensor&, const Tensor&, const Tensor&, Accumulate);

LinearFn linear_for(Pass pass) {
  return pass == Pass::prefill ? &linear_forward : &decode_linear;
}

// The rows of one forward call: row i is token ids[i] of slot slots[i] at position positions[i].
struct Rows {
  std::vector<int32_t> ids, slots, positions;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// Where every parameter lives and in which dtype: all groups alike, f32 on the CPU.
Tensor checked_placement(const LlamaParams& params) {
  const Tensor first = params.groups().front().data.view();
  for (const ParamGroup& g : params.groups()) {
    const Tensor& t = g.data.view();
    ZT_CHECK(t.data != nullptr, "BatchedGenerator: parameter group ", g.name, " has no memory");
    ZT_CHECK(t.device == first.device && t.dtype == first.dtype,
             "BatchedGenerator: parameter group ", g.name, " is ", describe(t), " on ",
             t.device.name(), " but ", params.groups()[0].name, " is ", describe(first), " on ",
             first.device.name());
  }
  ZT_CHECK(first.dtype == DType::f32 || (!first.device.is_cpu() && first.dtype == DType::bf16),
           "BatchedGenerator: parameters are ", dtype_name(first.dtype), " on ",
           first.device.name(), "; decoding takes f32 on the CPU, f32 or bf16 on a GPU");
  return first;
}

}  // namespace

struct BatchedGenerator::State {
  State(const LlamaParams& params, int64_t max_batch, int64_t max_seq_len);

  void reserve(int64_t rows);
  Tensor active(const Buffer& b, int64_t n) const { return b.view().rows(0, n); }
  Tensor index(int64_t which, int64_t n) const {  // 0 ids, 1 slots, 2 positions: [n] i32
    return row_index.view().flat(which * capacity, n);
  }
  Tensor cache(const Buffer& b, int64_t l) const {  // [S, T, Hkv, Dh] of layer l
    const Tensor all = b.view();
    return all.rows(l, 1).reshape(Shape{all.dim(1), all.dim(2), all.dim(3), all.dim(4)});
  }
  void upload(const Rows& rows);
  void run(const Rows& rows, Pass pass, float* logits_out);
  void layer_forward(int64_t l, int64_t n, Pass pass);
  void head(int64_t n, Pass pass, float* logits_out);
  void check_window(const Rows& rows) const;
  void check_ids(const char* op, const std::vector<int32_t>& ids) const;
  void check_slot(const char* op, int64_t slot) const;

  const LlamaParams& params;
  const LlamaConfig& config;
  Device device;
  DType dtype;
  int64_t max_batch, max_seq_len;
  std::vector<int64_t> lengths;  // [S] cached positions per slot, kFree for a free slot
  Buffer rope_cos, rope_sin;     // [T, Dh/2] f32
  Buffer k_cache, v_cache;       // [L, S, T, Hkv, Dh], keys after RoPE

  // Activations of the current call's rows, allocated for `capacity` rows.
  int64_t capacity = 0;
  Buffer x;           // [rows, D] residual stream
  Buffer xn, rstd;    // [rows, D], [rows] f32
  Buffer qkv;         // [rows, H*Dh + 2*Hkv*Dh]
  Buffer attn;        // [rows, H*Dh]
  Buffer gate_up;     // [rows, 2F]
  Buffer h;           // [rows, F]
  Buffer row_index;   // [3 * rows] i32: ids, slots, positions
  Buffer gpu_logits;  // [S, V] f32 on a GPU (on the CPU the logits go to the caller's memory)
};

BatchedGenerator::State::State(const LlamaParams& p, int64_t batch, int64_t seq_len)
    : params(p), config(p.config()), max_batch(batch), max_seq_len(seq_len) {
  const LlamaConfig& c = config;
  ZT_CHECK(max_batch >= 1 && max_batch <= (int64_t{1} << 20), "BatchedGenerator: max_batch ",
           max_batch, " must be in [1, 2^20]");
  ZT_CHECK(max_seq_len >= 1 && max_seq_len <= c.max_position_embeddings,
           "BatchedGenerator: max_seq_len ", max_seq_len,
           " must be in [1, max_position_embeddings = ", c.max_position_embeddings, "]");
  const Tensor placement = checked_placement(p);
  device = placement.device;
  dtype = placement.dtype;
  lengths.assign(static_cast<size_t>(max_batch), kFree);
  Buffer host_cos(DType::f32, Shape{max_seq_len, c.head_dim / 2});
  Buffer host_sin(DType::f32, Shape{max_seq_len, c.head_dim / 2});
  rope_tables(host_cos, host_sin, c.rope_theta, c.rope_scaling);
  rope_cos = Buffer(DType::f32, host_cos.view().shape, device);
  rope_sin = Buffer(DType::f32, host_sin.view().shape, device);
  copy(rope_cos, host_cos);
  copy(rope_sin, host_sin);
  const Shape cache_shape{c.num_hidden_layers, max_batch, max_seq_len, c.num_key_value_heads,
                          c.head_dim};
  k_cache = Buffer(dtype, cache_shape, device);
  v_cache = Buffer(dtype, cache_shape, device);
  if (!device.is_cpu()) gpu_logits = Buffer(DType::f32, Shape{max_batch, c.vocab_size}, device);
  reserve(max_batch);
}

void BatchedGenerator::State::reserve(int64_t rows) {
  if (rows <= capacity) return;
  const LlamaConfig& c = config;
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  capacity = rows;
  for (Buffer* b : {&x, &xn, &rstd, &qkv, &attn, &gate_up, &h, &row_index}) *b = Buffer();
  x = Buffer(dtype, Shape{rows, d}, device);
  xn = Buffer(dtype, Shape{rows, d}, device);
  rstd = Buffer(DType::f32, Shape{rows}, device);
  qkv = Buffer(dtype, Shape{rows, c.qkv_dim()}, device);
  attn = Buffer(dtype, Shape{rows, c.q_dim()}, device);
  gate_up = Buffer(dtype, Shape{rows, 2 * f}, device);
  h = Buffer(dtype, Shape{rows, f}, device);
  row_index = Buffer(DType::i32, Shape{3 * rows}, device);
}

void BatchedGenerator::State::upload(const Rows& rows) {
  const int64_t n = rows.size();
  const std::vector<int32_t>* parts[] = {&rows.ids, &rows.slots, &rows.positions};
  for (int64_t which = 0; which < 3; ++which) {
    const std::vector<int32_t>& part = *parts[which];
    copy(index(which, n), Tensor(const_cast<int32_t*>(part.data()), DType::i32, Shape{n}));
  }
}

// The training layer (LlamaModel::layer_forward) on n rows, keys and values going through the
// cache: x <- x + o(attn(rope(qkv(norm1(x))))); x <- x + down(swiglu(gate_up(norm2(x)))).
void BatchedGenerator::State::layer_forward(int64_t l, int64_t n, Pass pass) {
  const LlamaConfig& c = config;
  const LayerTensors w = params.layer(l);
  const LinearFn linear = linear_for(pass);
  const Tensor slots = index(1, n), positions = index(2, n);
  const Tensor x_n = active(x, n), xn_n = active(xn, n), rstd_n = active(rstd, n);
  const Tensor qkv_n = active(qkv, n), attn_n = active(attn, n);
  const Tensor k = cache(k_cache, l), v = cache(v_cache, l);
  rmsnorm_forward(xn_n, rstd_n, x_n, w.input_norm, c.rms_norm_eps);
  linear(qkv_n, xn_n, w.wqkv, Accumulate::no);
  if (c.qkv_bias) bias_forward(qkv_n, w.qkv_bias);
  rope_apply(qkv_n, c.num_attention_heads + c.num_key_value_heads, positions, rope_cos, rope_sin,
             RopeDirection::forward);
  decode_kv_store(k, v, qkv_n, slots, positions);
  decode_attention(attn_n, qkv_n, k, v, slots, positions);
  linear(x_n, attn_n, w.wo, Accumulate::yes);
  rmsnorm_forward(xn_n, rstd_n, x_n, w.post_norm, c.rms_norm_eps);
  linear(active(gate_up, n), xn_n, w.wgate_up, Accumulate::no);
  swiglu_forward(active(h, n), active(gate_up, n));
  linear(x_n, active(h, n), w.wdown, Accumulate::yes);
}

// Final norm and LM head: for a prefill only its last row's logits [1, V], for a decode step
// every row's [n, V].
void BatchedGenerator::State::head(int64_t n, Pass pass, float* logits_out) {
  const LlamaConfig& c = config;
  const int64_t m = pass == Pass::prefill ? 1 : n, first = n - m;
  const Tensor xn_m = xn.view().rows(first, m);
  rmsnorm_forward(xn_m, rstd.view().rows(first, m), x.view().rows(first, m), params.final_norm(),
                  c.rms_norm_eps);
  const Tensor out = device.is_cpu() ? Tensor(logits_out, DType::f32, Shape{m, c.vocab_size})
                                     : gpu_logits.view().rows(0, m);
  linear_for(pass)(out, xn_m, params.head(), Accumulate::no);
  if (!device.is_cpu()) copy_bytes(logits_out, Device::cpu(), out.data, device, out.nbytes());
}

void BatchedGenerator::State::run(const Rows& rows, Pass pass, float* logits_out) {
  const LlamaConfig& c = config;
  const int64_t n = rows.size();
  reserve(n);
  upload(rows);
  embedding_forward(active(x, n), index(0, n), params.embedding());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layer_forward(l, n, pass);
  head(n, pass, logits_out);
}

void BatchedGenerator::State::check_window(const Rows& rows) const {
  const int64_t window = config.sliding_window;
  for (const int32_t pos : rows.positions) {
    ZT_CHECK(window == 0 || pos < window, "BatchedGenerator: position ", pos,
             " is beyond the sliding window ", window, ", which is not implemented");
  }
}

void BatchedGenerator::State::check_ids(const char* op, const std::vector<int32_t>& ids) const {
  for (size_t i = 0; i < ids.size(); ++i) {
    ZT_CHECK(ids[i] >= 0 && ids[i] < config.vocab_size, "BatchedGenerator::", op, ": token id ",
             ids[i], " at index ", i, " is outside the vocabulary [0, ", config.vocab_size, ")");
  }
}

void BatchedGenerator::State::check_slot(const char* op, int64_t slot) const {
  ZT_CHECK(slot >= 0 && slot < max_batch, "BatchedGenerator::", op, ": slot ", slot,
           " is outside [0, max_batch = ", max_batch, ")");
  ZT_CHECK(lengths[static_cast<size_t>(slot)] != kFree, "BatchedGenerator::", op, ": slot ", slot,
           " holds no sequence (never started, or finished)");
}

BatchedGenerator::BatchedGenerator(const LlamaParams& params, int64_t max_batch,
                                   int64_t max_seq_len)
    : state_(new State(params, max_batch, max_seq_len)) {}

BatchedGenerator::~BatchedGenerator() {
  delete state_;
}

const LlamaConfig& BatchedGenerator::config() const {
  return state_->config;
}
int64_t BatchedGenerator::max_batch() const {
  return state_->max_batch;
}
int64_t BatchedGenerator::max_seq_len() const {
  return state_->max_seq_len;
}

int64_t BatchedGenerator::free_slots() const {
  int64_t free = 0;
  for (const int64_t length : state_->lengths) free += length == kFree ? 1 : 0;
  return free;
}

int64_t BatchedGenerator::length(int64_t slot) const {
  ZT_CHECK(slot >= 0 && slot < state_->max_batch, "BatchedGenerator::length: slot ", slot,
           " is outside [0, max_batch = ", state_->max_batch, ")");
  const int64_t length = state_->lengths[static_cast<size_t>(slot)];
  return length == kFree ? 0 : length;
}

int64_t BatchedGenerator::start(const std::vector<int32_t>& prompt, float* logits) {
  State& s = *state_;
  const int64_t p = static_cast<int64_t>(prompt.size());
  ZT_CHECK(p > 0, "BatchedGenerator::start: the prompt has no tokens");
  ZT_CHECK(p <= s.max_seq_len, "BatchedGenerator::start: the prompt's ", p,
           " tokens exceed max_seq_len ", s.max_seq_len);
  s.check_ids("start", prompt);
  int64_t slot = 0;
  while (slot < s.max_batch && s.lengths[static_cast<size_t>(slot)] != kFree) ++slot;
  ZT_CHECK(slot < s.max_batch, "BatchedGenerator::start: no free slot: all ", s.max_batch,
           " slots (max_batch) hold sequences");
  Rows rows{prompt, std::vector<int32_t>(prompt.size(), static_cast<int32_t>(slot)), {}};
  for (int64_t i = 0; i < p; ++i) rows.positions.push_back(static_cast<int32_t>(i));
  s.check_window(rows);
  s.run(rows, Pass::prefill, logits);  // the slot stays free should this throw
  s.lengths[static_cast<size_t>(slot)] = p;
  return slot;
}

void BatchedGenerator::extend(int64_t slot, const std::vector<int32_t>& ids, int64_t start_pos,
                              float* logits) {
  State& s = *state_;
  s.check_slot("extend", slot);
  const int64_t n = static_cast<int64_t>(ids.size()), cached = length(slot);
  ZT_CHECK(n > 0, "BatchedGenerator::extend: no ids");
  ZT_CHECK(start_pos >= 0 && start_pos <= cached, "BatchedGenerator::extend: start_pos ", start_pos,
           " must be in [0, ", cached, "] (the slot's cached positions)");
  ZT_CHECK(start_pos + n <= s.max_seq_len, "BatchedGenerator::extend: positions [", start_pos, ", ",
           start_pos + n, ") exceed max_seq_len ", s.max_seq_len);
  s.check_ids("extend", ids);
  Rows rows{ids, std::vector<int32_t>(ids.size(), static_cast<int32_t>(slot)), {}};
  for (int64_t i = 0; i < n; ++i) rows.positions.push_back(static_cast<int32_t>(start_pos + i));
  s.check_window(rows);
  // From here the cache holds valid positions only before start_pos, until the run completes.
  s.lengths[static_cast<size_t>(slot)] = start_pos;
  s.run(rows, Pass::prefill, logits);
  s.lengths[static_cast<size_t>(slot)] = start_pos + n;
}

void BatchedGenerator::step(const std::vector<int64_t>& slots, const std::vector<int32_t>& tokens,
                            float* logits) {
  State& s = *state_;
  ZT_CHECK(slots.size() == tokens.size(), "BatchedGenerator::step: ", slots.size(), " slots but ",
           tokens.size(), " tokens");
  if (slots.empty()) return;
  s.check_ids("step", tokens);
  std::vector<bool> stepping(static_cast<size_t>(s.max_batch), false);
  Rows rows{tokens, {}, {}};
  for (const int64_t slot : slots) {
    s.check_slot("step", slot);
    ZT_CHECK(!stepping[static_cast<size_t>(slot)], "BatchedGenerator::step: slot ", slot,
             " appears twice");
    stepping[static_cast<size_t>(slot)] = true;
    const int64_t cached = s.lengths[static_cast<size_t>(slot)];
    ZT_CHECK(cached < s.max_seq_len, "BatchedGenerator::step: slot ", slot, " already holds ",
             cached, " positions, its max_seq_len ", s.max_seq_len);
    rows.slots.push_back(static_cast<int32_t>(slot));
    rows.positions.push_back(static_cast<int32_t>(cached));
  }
  s.check_window(rows);
  s.run(rows, Pass::decode, logits);
  for (const int64_t slot : slots) s.lengths[static_cast<size_t>(slot)] += 1;
}

void BatchedGenerator::finish(int64_t slot) {
  state_->check_slot("finish", slot);
  state_->lengths[static_cast<size_t>(slot)] = kFree;
}

}  // namespace zerotune
