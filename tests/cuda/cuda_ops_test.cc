// Every CUDA op against the CPU backend on the same inputs: f32 storage within ~1e-5 relative,
// bf16 storage within ~1e-2 (inputs rounded to bf16 first, so both sides see the same values).
// Skips when no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/cuda/attention_flash.h"
#include "core/device_memory.h"
#include "core/rng.h"
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

#define REQUIRE_GPU()                                                               \
  do {                                                                              \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine"; \
  } while (0)

const Device kGpu = Device::cuda(0);

// A host f32 buffer of normal(0, scale) values, rounded through `storage` (bf16 keeps only what
// a bf16 tensor can hold).
Buffer random_host(Shape shape, uint64_t seed, DType storage, float scale = 1.0f) {
  Buffer b(DType::f32, shape);
  Rng rng(seed);
  float* p = b.f32();
  for (int64_t i = 0; i < b.numel(); ++i) {
    p[i] = scale * rng.normal();
    if (storage == DType::bf16) p[i] = bf16_to_f32(f32_to_bf16(p[i]));
  }
  return b;
}

// The host f32 values on the GPU in `storage`.
Buffer to_gpu(const Buffer& host, DType storage) {
  Buffer gpu(storage, host.view().shape, kGpu);
  convert_copy(gpu, host);
  return gpu;
}

std::vector<float> to_host(const Tensor& gpu) {
  std::vector<float> out(static_cast<size_t>(gpu.numel()));
  convert_copy(Tensor(out.data(), DType::f32, gpu.shape), gpu);
  return out;
}

// max |a - b| / max |b|
double rel_error(const std::vector<float>& got, const Tensor& want) {
  const float* w = want.f32();
  double diff = 0.0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - w[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(w[i])));
  }
  return diff / scale;
}

double tolerance(DType storage) {
  return storage == DType::bf16 ? 1e-2 : 1e-5;
}

class CudaOps : public ::testing::TestWithParam<DType> {};

TEST_P(CudaOps, RmsnormForwardBackward) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 37, d = 96;
  Buffer x = random_host({n, d}, 1, t), w = random_host({d}, 2, t),
         dout = random_host({n, d}, 3, t);
  Buffer out(DType::f32, {n, d}), rstd(DType::f32, {n}), dx(DType::f32, {n, d}),
      dw(DType::f32, {d});
  rmsnorm_forward(out, rstd, x, w, 1e-5f);
  rmsnorm_backward(dx, dw, dout, x, w, rstd, Accumulate::no);

  Buffer gx = to_gpu(x, t), gw = to_gpu(w, t), gdout = to_gpu(dout, t);
  Buffer gout(t, {n, d}, kGpu), grstd(DType::f32, {n}, kGpu), gdx(t, {n, d}, kGpu),
      gdw(DType::f32, {d}, kGpu);
  rmsnorm_forward(gout, grstd, gx, gw, 1e-5f);
  rmsnorm_backward(gdx, gdw, gdout, gx, gw, grstd, Accumulate::no);
  EXPECT_LE(rel_error(to_host(gout), out), tolerance(t));
  EXPECT_LE(rel_error(to_host(grstd), rstd), 1e-5);
  EXPECT_LE(rel_error(to_host(gdx), dx), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdw), dw), tolerance(t));
}

TEST_P(CudaOps, SwigluForwardBackward) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 19, f = 111;
  Buffer gu = random_host({n, 2 * f}, 4, t), dh = random_host({n, f}, 5, t);
  Buffer h(DType::f32, {n, f}), dgu(DType::f32, {n, 2 * f});
  swiglu_forward(h, gu);
  swiglu_backward(dgu, dh, gu);
  Buffer ggu = to_gpu(gu, t), gdh = to_gpu(dh, t);
  Buffer gh(t, {n, f}, kGpu), gdgu(t, {n, 2 * f}, kGpu);
  swiglu_forward(gh, ggu);
  swiglu_backward(gdgu, gdh, ggu);
  EXPECT_LE(rel_error(to_host(gh), h), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdgu), dgu), tolerance(t));
}

TEST_P(CudaOps, BiasForwardAndColumnSums) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 67, out = 300;  // columns over more than one block of threads
  Buffer y = random_host({n, out}, 21, t), bias = random_host({out}, 22, t);
  Buffer dy = random_host({n, out}, 23, t), dbias = random_host({out}, 24, DType::f32);
  Buffer gy = to_gpu(y, t), gbias = to_gpu(bias, t), gdy = to_gpu(dy, t);
  Buffer gdbias = to_gpu(dbias, DType::f32);
  bias_forward(y, bias);
  bias_backward(dbias, dy);  // accumulates into the random start, as a parameter gradient
  bias_forward(gy, gbias);
  bias_backward(gdbias, gdy);
  EXPECT_LE(rel_error(to_host(gy), y), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdbias), dbias), 1e-5);  // f32 sums of the same inputs
}

TEST_P(CudaOps, RopeBothDirections) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 41, heads = 6, dh = 16, width = heads * dh + 32;
  Buffer cos(DType::f32, {64, dh / 2}), sin(DType::f32, {64, dh / 2});
  rope_tables(cos, sin, 10000.0f);
  Buffer positions(DType::i32, {n});
  for (int64_t i = 0; i < n; ++i)
    positions.view().ptr<int32_t>()[i] = static_cast<int32_t>((i * 7) % 64);
  Buffer gcos(DType::f32, cos.view().shape, kGpu), gsin(DType::f32, sin.view().shape, kGpu),
      gpos(DType::i32, {n}, kGpu);
  copy(gcos, cos);
  copy(gsin, sin);
  copy(gpos, positions);
  for (RopeDirection dir : {RopeDirection::forward, RopeDirection::backward}) {
    Buffer x = random_host({n, width}, 6, t);
    Buffer gx = to_gpu(x, t);
    rope_apply(x, heads, positions, cos, sin, dir);
    rope_apply(gx, heads, gpos, gcos, gsin, dir);
    EXPECT_LE(rel_error(to_host(gx), x), tolerance(t));
  }
}

TEST_P(CudaOps, EmbeddingForwardAndDeterministicBackward) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t v = 301, d = 48, n = 130;
  Buffer table = random_host({v, d}, 7, t), dout = random_host({n, d}, 8, t);
  Buffer ids(DType::i32, {n});
  for (int64_t i = 0; i < n; ++i) ids.view().ptr<int32_t>()[i] = static_cast<int32_t>((i * i) % 17);
  Buffer out(DType::f32, {n, d}), dtable(DType::f32, {v, d});
  embedding_forward(out, ids, table);
  embedding_backward(dtable, ids, dout);
  Buffer gtable = to_gpu(table, t), gdout = to_gpu(dout, t), gids(DType::i32, {n}, kGpu);
  copy(gids, ids);
  Buffer gout(t, {n, d}, kGpu), gdtable(DType::f32, {v, d}, kGpu);
  embedding_forward(gout, gids, gtable);
  embedding_backward(gdtable, gids, gdout);
  const std::vector<float> first = to_host(gdtable);
  EXPECT_LE(rel_error(to_host(gout), out), 0.0);  // a copy
  EXPECT_LE(rel_error(first, dtable), tolerance(t));
  gdtable.zero();
  embedding_backward(gdtable, gids, gdout);
  EXPECT_EQ(to_host(gdtable), first);  // bit for bit on a rerun
}

TEST_P(CudaOps, LinearForwardBackward) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 70, in = 96, out = 144;
  Buffer x = random_host({n, in}, 9, t), w = random_host({out, in}, 10, t, 0.1f),
         dy = random_host({n, out}, 11, t);
  Buffer y(DType::f32, {n, out}), dx(DType::f32, {n, in}), dw(DType::f32, {out, in});
  linear_forward(y, x, w);
  linear_backward(dx, dw, dy, x, w);
  Buffer gx = to_gpu(x, t), gw = to_gpu(w, t), gdy = to_gpu(dy, t);
  Buffer gy(t, {n, out}, kGpu), gdx(t, {n, in}, kGpu), gdw(DType::f32, {out, in}, kGpu);
  linear_forward(gy, gx, gw);
  linear_backward(gdx, gdw, gdy, gx, gw);
  EXPECT_LE(rel_error(to_host(gy), y), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdx), dx), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdw), dw), tolerance(t));
  // Accumulation: y += x w^T again doubles it.
  linear_forward(gy, gx, gw, Accumulate::yes);
  linear_forward(y, x, w, Accumulate::yes);
  EXPECT_LE(rel_error(to_host(gy), y), tolerance(t));
}

// attention_forward and attention_backward on the GPU in `t` storage against the CPU on the same
// (rounded) inputs, then bit-for-bit reruns. Packed rows split each sequence into runs of
// `segment_run` positions (ids 0, 1, ...).
void expect_attention_matches_cpu(const AttentionShape& s, DType t, int64_t segment_run) {
  const int64_t rows = s.batch * s.seq_len, out_width = s.n_heads * s.head_dim;
  const std::string where =
      str("B=", s.batch, " T=", s.seq_len, " H=", s.n_heads, " Hkv=", s.n_kv_heads,
          " Dh=", s.head_dim, " segment run ", segment_run);
  Buffer qkv = random_host({rows, s.qkv_width()}, 14, t),
         dout = random_host({rows, out_width}, 15, t);
  Buffer segments;
  if (segment_run > 0) {
    segments = Buffer(DType::i32, {rows});
    for (int64_t i = 0; i < rows; ++i) {
      segments.view().ptr<int32_t>()[i] = static_cast<int32_t>(i % s.seq_len / segment_run);
    }
  }
  Buffer out(DType::f32, {rows, out_width}), lse(DType::f32, {s.batch, s.n_heads, s.seq_len}),
      dqkv(DType::f32, {rows, s.qkv_width()});
  attention_forward(out, lse, qkv, segments, s);
  attention_backward(dqkv, dout, qkv, out, lse, segments, s);

  Buffer gqkv = to_gpu(qkv, t), gdout = to_gpu(dout, t), gseg;
  if (segment_run > 0) {
    gseg = Buffer(DType::i32, {rows}, kGpu);
    copy(gseg, segments);
  }
  Buffer gout(t, {rows, out_width}, kGpu), glse(DType::f32, {s.batch, s.n_heads, s.seq_len}, kGpu),
      gdqkv(t, {rows, s.qkv_width()}, kGpu);
  attention_forward(gout, glse, gqkv, gseg, s);
  attention_backward(gdqkv, gdout, gqkv, gout, glse, gseg, s);
  EXPECT_LE(rel_error(to_host(gout), out), tolerance(t)) << where;
  EXPECT_LE(rel_error(to_host(glse), lse), 1e-5) << where;
  // The backward reads the GPU's own out (rounded to bf16 there): a looser bound for bf16.
  EXPECT_LE(rel_error(to_host(gdqkv), dqkv), t == DType::bf16 ? 3e-2 : 1e-5) << where;

  const std::vector<float> first_out = to_host(gout), first_lse = to_host(glse),
                           first_dqkv = to_host(gdqkv);
  attention_forward(gout, glse, gqkv, gseg, s);
  attention_backward(gdqkv, gdout, gqkv, gout, glse, gseg, s);
  EXPECT_EQ(to_host(gout), first_out) << "forward rerun is bit for bit, " << where;
  EXPECT_EQ(to_host(glse), first_lse) << "forward rerun is bit for bit, " << where;
  EXPECT_EQ(to_host(gdqkv), first_dqkv) << "backward rerun is bit for bit, " << where;
}

TEST_P(CudaOps, AttentionGroupedQueryCausalAndPacked) {
  REQUIRE_GPU();
  for (const int64_t segment_run : {0, 20}) {
    expect_attention_matches_cpu(AttentionShape{2, 37, 6, 2, 16}, GetParam(), segment_run);
  }
}

// bf16 with head_dim 64 or 128 runs the tensor-core (flash) kernels, f32 the simple ones: sequences
// of one position, of part of a 64-row tile, of whole tiles and of several tiles with a partial
// last one; grouped and one-to-one kv heads; packed rows whose segments begin inside tiles.
TEST_P(CudaOps, AttentionTensorCoreTiles) {
  REQUIRE_GPU();
  const DType t = GetParam();
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t kv_heads : {2, 4}) {
      for (const int64_t seq_len : {1, 37, 128, 200}) {
        const AttentionShape s{2, seq_len, 4, kv_heads, head_dim};
        const int64_t rows = s.batch * s.seq_len;
        Buffer qkv(t, {rows, s.qkv_width()}, kGpu), out(t, {rows, s.n_heads * head_dim}, kGpu);
        EXPECT_EQ(cuda::flash_attention_supported(s, qkv, out), t == DType::bf16)
            << "Dh=" << head_dim;
        for (const int64_t segment_run : {int64_t{0}, (seq_len + 2) / 3}) {
          expect_attention_matches_cpu(s, t, segment_run);
        }
      }
    }
  }
}

TEST_P(CudaOps, LmHeadCrossEntropyInChunks) {
  REQUIRE_GPU();
  const DType t = GetParam();
  const int64_t n = 45, d = 64, v = 1001;
  Buffer x = random_host({n, d}, 16, t), w = random_host({v, d}, 17, t, 0.2f);
  Buffer targets(DType::i32, {n});
  for (int64_t i = 0; i < n; ++i) {
    targets.view().ptr<int32_t>()[i] =
        i % 7 == 3 ? kIgnoreIndex : static_cast<int32_t>((i * 37) % v);
  }
  Buffer dx(DType::f32, {n, d}), dw(DType::f32, {v, d});
  const CrossEntropyResult want = lm_head_cross_entropy(x, w, targets, 0.5f, dx, dw);
  Buffer gx = to_gpu(x, t), gw = to_gpu(w, t), gt(DType::i32, {n}, kGpu);
  copy(gt, targets);
  Buffer gdx(t, {n, d}, kGpu), gdw(DType::f32, {v, d}, kGpu);
  const CrossEntropyResult got = lm_head_cross_entropy(gx, gw, gt, 0.5f, gdx, gdw, 8);  // 6 chunks
  EXPECT_EQ(got.count, want.count);
  EXPECT_NEAR(got.loss_sum, want.loss_sum, 1e-5 * std::fabs(want.loss_sum));
  EXPECT_LE(rel_error(to_host(gdx), dx), tolerance(t));
  EXPECT_LE(rel_error(to_host(gdw), dw), tolerance(t));
  const CrossEntropyResult forward_only =
      lm_head_cross_entropy(gx, gw, gt, 0.0f, Tensor(), Tensor());
  EXPECT_NEAR(forward_only.loss_sum, want.loss_sum, 1e-5 * std::fabs(want.loss_sum));
}

INSTANTIATE_TEST_SUITE_P(Storage, CudaOps, ::testing::Values(DType::f32, DType::bf16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(CudaAdamW, MatchesCpuStep) {
  REQUIRE_GPU();
  const int64_t n = 1000;
  Buffer p = random_host({n}, 12, DType::f32), g = random_host({n}, 13, DType::f32);
  Buffer m(DType::f32, {n}), v(DType::f32, {n});
  Buffer gp = to_gpu(p, DType::f32), gg = to_gpu(g, DType::f32), gm(DType::f32, {n}, kGpu),
         gv(DType::f32, {n}, kGpu);
  AdamWConfig c;
  c.lr = 1e-2;
  c.weight_decay = 0.1;
  for (int64_t step = 1; step <= 3; ++step) {
    adamw_step(p, g, m, v, c, step);
    adamw_step(gp, gg, gm, gv, c, step);
  }
  EXPECT_LE(rel_error(to_host(gp), p), 1e-6);
  EXPECT_LE(rel_error(to_host(gm), m), 1e-6);
  EXPECT_LE(rel_error(to_host(gv), v), 1e-6);
}

TEST(CudaAdamW, MixedPrecisionWritesTheRoundedComputeCopy) {
  REQUIRE_GPU();
  const int64_t n = 777;
  Buffer p = random_host({n}, 18, DType::f32), g = random_host({n}, 19, DType::f32);
  Buffer m(DType::f32, {n}), v(DType::f32, {n});
  Buffer gp = to_gpu(p, DType::f32), gg = to_gpu(g, DType::f32), gm(DType::f32, {n}, kGpu),
         gv(DType::f32, {n}, kGpu), compute(DType::bf16, {n}, kGpu);
  AdamWConfig c;
  c.lr = 3e-3;
  adamw_step(p, g, m, v, c, 1);
  adamw_step_mixed(gp, gg, gm, gv, compute, c, 1);
  EXPECT_LE(rel_error(to_host(gp), p), 1e-6);
  const std::vector<float> master = to_host(gp), rounded = to_host(compute);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(rounded[static_cast<size_t>(i)],
              bf16_to_f32(f32_to_bf16(master[static_cast<size_t>(i)])));
  }
}

TEST(CudaReduce, SumOfSquaresAndScale) {
  REQUIRE_GPU();
  const int64_t n = 1 << 20;
  Buffer x = random_host({n}, 20, DType::f32);
  Buffer gx = to_gpu(x, DType::f32);
  const double want = sum_of_squares(x);
  EXPECT_NEAR(sum_of_squares(gx), want, 1e-9 * want);
  scale_in_place(gx, 0.5f);
  scale_in_place(x, 0.5f);
  EXPECT_EQ(to_host(gx), std::vector<float>(x.f32(), x.f32() + n));
}

TEST(CudaDevice, WithoutTheBackendAllocationFailsClearly) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW(Buffer(DType::f32, {4}, kGpu), Error);
}

}  // namespace
}  // namespace zerotune
