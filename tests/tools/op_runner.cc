// op_runner OP IN.safetensors OUT.safetensors: runs one kernel's forward and backward on the
// inputs a reference script wrote and saves the results, so that tests/reference/check_ops.py
// can compare every op with PyTorch autograd.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/bias.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/matmul.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace zerotune {
namespace {

class Io {
 public:
  explicit Io(const std::string& path) : file_(SafetensorsFile::open(path)) {}

  // A writable copy of an input tensor (the mapping is read-only).
  Tensor in(const std::string& name) {
    const SafetensorsEntry* e = file_.find(name);
    ZT_CHECK(e, file_.path(), ": op input \"", name, "\" missing");
    Buffer& b = copies_[name];
    b = Buffer(e->dtype, e->shape);
    std::memcpy(b.view().data, file_.tensor(*e).data, static_cast<size_t>(b.view().nbytes()));
    return b.view();
  }
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }
  float scalar(const std::string& name) { return in(name).f32()[0]; }
  double scalar64(const std::string& name, int64_t i) {
    const Tensor t = in(name);
    ZT_CHECK(t.dtype == DType::i64 && i < t.numel(), name, ": expected f64 values as i64 bits");
    double value;
    std::memcpy(&value, static_cast<const char*>(t.data) + 8 * i, sizeof(value));
    return value;
  }
  int64_t integer(const std::string& name, int64_t i = 0) { return in(name).i32()[i]; }

  Tensor out(const std::string& name, Shape shape, DType dtype = DType::f32) {
    Buffer& b = outputs_[name];
    b = Buffer(dtype, shape);
    return b.view();
  }
  void write(const std::string& path) {
    std::vector<NamedTensor> named;
    for (auto& [name, buffer] : outputs_) named.push_back({name, buffer.view()});
    write_safetensors(path, named);
  }

 private:
  SafetensorsFile file_;
  std::map<std::string, Buffer> copies_, outputs_;
};

void run(const std::string& op, Io& io) {
  if (op == "embedding") {
    const Tensor table = io.in("table"), ids = io.in("ids"), dout = io.in("dout");
    embedding_forward(io.out("out", dout.shape), ids, table);
    embedding_backward(io.out("dtable", table.shape), ids, dout);
  } else if (op == "rmsnorm") {
    const Tensor x = io.in("x"), w = io.in("weight"), dout = io.in("dout");
    const Tensor out = io.out("out", x.shape), rstd = io.out("rstd", Shape{x.dim(0)});
    rmsnorm_forward(out, rstd, x, w, io.scalar("eps"));
    rmsnorm_backward(io.out("dx", x.shape), io.out("dweight", w.shape), dout, x, w, rstd,
                     Accumulate::no);
  } else if (op == "rope") {
    const Tensor x = io.in("x"), dout = io.in("dout"), pos = io.in("positions");
    const int64_t n_heads = io.integer("n_heads"), head_dim = io.integer("head_dim");
    const int64_t max_pos = io.integer("max_positions");
    Buffer cos(DType::f32, Shape{max_pos, head_dim / 2}),
        sin(DType::f32, Shape{max_pos, head_dim / 2});
    RopeScaling scaling;  // llama3: f32 [factor, low_freq_factor, high_freq_factor, original]
    if (io.has("llama3")) {
      const float* l3 = io.in("llama3").f32();
      scaling = {RopeScalingType::llama3, l3[0], l3[1], l3[2], static_cast<int64_t>(l3[3])};
    }
    rope_tables(cos, sin, io.scalar("theta"), scaling);
    const Tensor out = io.out("out", x.shape), dx = io.out("dx", x.shape);
    std::memcpy(out.data, x.data, static_cast<size_t>(x.nbytes()));
    std::memcpy(dx.data, dout.data, static_cast<size_t>(x.nbytes()));
    rope_apply(out, n_heads, pos, cos, sin, RopeDirection::forward);
    rope_apply(dx, n_heads, pos, cos, sin, RopeDirection::backward);
  } else if (op == "attention") {
    const Tensor qkv = io.in("qkv"), dout = io.in("dout");
    const AttentionShape s{io.integer("dims", 0), io.integer("dims", 1), io.integer("dims", 2),
                           io.integer("dims", 3), io.integer("dims", 4)};
    const Tensor segments = io.has("segments") ? io.in("segments") : Tensor();
    const Tensor out = io.out("out", dout.shape);
    const Tensor lse = io.out("lse", Shape{s.batch, s.n_heads, s.seq_len});
    attention_forward(out, lse, qkv, segments, s);
    attention_backward(io.out("dqkv", qkv.shape), dout, qkv, out, lse, segments, s);
  } else if (op == "bias") {
    const Tensor y = io.in("y"), bias = io.in("bias"), dout = io.in("dout");
    const Tensor out = io.out("out", y.shape), dbias = io.out("dbias", bias.shape);
    std::memcpy(out.data, y.data, static_cast<size_t>(y.nbytes()));
    bias_forward(out, bias);
    std::memset(dbias.data, 0, static_cast<size_t>(dbias.nbytes()));
    bias_backward(dbias, dout);
  } else if (op == "swiglu") {
    const Tensor gate_up = io.in("gate_up"), dout = io.in("dout");
    swiglu_forward(io.out("out", dout.shape), gate_up);
    swiglu_backward(io.out("dgate_up", gate_up.shape), dout, gate_up);
  } else if (op == "linear") {
    const Tensor x = io.in("x"), w = io.in("w"), dout = io.in("dout");
    linear_forward(io.out("out", dout.shape), x, w);
    linear_backward(io.out("dx", x.shape), io.out("dw", w.shape), dout, x, w);
  } else if (op == "cross_entropy") {
    const Tensor x = io.in("x"), w = io.in("w"), targets = io.in("targets");
    int64_t count = 0;
    for (int64_t i = 0; i < targets.numel(); ++i) count += targets.i32()[i] != kIgnoreIndex;
    const CrossEntropyResult r = lm_head_cross_entropy(
        x, w, targets, 1.0f / static_cast<float>(count), io.out("dx", x.shape),
        io.out("dw", w.shape), io.integer("chunk_rows"));
    io.out("loss", Shape{1}).f32()[0] =
        static_cast<float>(r.loss_sum / static_cast<double>(r.count));
    const CrossEntropyResult eval = lm_head_cross_entropy(x, w, targets, 0.0f, Tensor(), Tensor());
    io.out("loss_eval", Shape{1}).f32()[0] =
        static_cast<float>(eval.loss_sum / static_cast<double>(eval.count));
  } else if (op == "adamw") {
    const Tensor grads = io.in("grads");  // [S, n]: one gradient per step
    // hyper: f64 [lr, beta1, beta2, eps, weight_decay]
    const int64_t n = grads.dim(1);
    const Tensor param = io.out("param", Shape{n}), m = io.out("exp_avg", Shape{n});
    const Tensor v = io.out("exp_avg_sq", Shape{n});
    std::memcpy(param.data, io.in("param").data, static_cast<size_t>(param.nbytes()));
    // The reference's hyperparameters are Python floats; float32 copies of them would differ.
    const AdamWConfig config{io.scalar64("hyper", 0), io.scalar64("hyper", 1),
                             io.scalar64("hyper", 2), io.scalar64("hyper", 3),
                             io.scalar64("hyper", 4)};
    for (int64_t s = 0; s < grads.dim(0); ++s) {
      adamw_step(param, grads.rows(s, 1).reshape(Shape{n}), m, v, config, s + 1);
    }
  } else {
    fail(str("op_runner: unknown op '", op, "'"));
  }
}

}  // namespace
}  // namespace zerotune

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: op_runner OP IN.safetensors OUT.safetensors\n");
    return 2;
  }
  try {
    zerotune::Io io(argv[2]);
    zerotune::run(argv[1], io);
    io.write(argv[3]);
  } catch (const zerotune::Error& e) {
    std::fprintf(stderr, "op_runner: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
