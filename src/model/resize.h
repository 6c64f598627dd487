// Growing the vocabulary for added tokens, as transformers' resize_token_embeddings does by default
// (mean_resizing=True, since 4.46).
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "model/params.h"

namespace zerotune {

// transformers samples new rows from N(mean, kResizeCovarianceScale * covariance of the old rows)
// (modeling_utils._init_added_embeddings_weights_with_mean): close to the mean, yet distinct.
constexpr double kResizeCovarianceScale = 1e-9;
// Above this model dim the D x D covariance and its Cholesky cost too much for a one-off step
// (O(V D^2 + D^3)); new rows are then the mean alone, which differs from sampling by ~3e-5 std.
constexpr int64_t kResizeMaxCovarianceDim = 2048;

// Returns a copy of `params` with config().vocab_size = new_vocab: old embedding and (untied) head
// rows copied exactly, every other tensor copied, new rows of each matrix drawn from the normal
// above using that matrix's own rows (the mean alone when D > kResizeMaxCovarianceDim or the
// covariance is not positive definite; a line on stderr says so). Deterministic for a seed.
// new_vocab == vocab_size is a plain copy; shrinking is an error.
LlamaParams resize_vocab(const LlamaParams& params, int64_t new_vocab, uint64_t seed);

// The rows of one vocabulary matrix (embedding or untied head): src [V_old, D] is copied into
// dst [V_new, D] and the new rows drawn as resize_vocab does, from `rng` (resize_vocab's single
// stream: the embedding first, then the head), so that group-by-group loading gives the same bits.
void resize_vocab_rows(const char* name, const Tensor& src, const Tensor& dst, Rng& rng);

// Lower Cholesky factor in place: a [n, n] row-major symmetric matrix becomes L (upper triangle
// zeroed) with L L^T = a. False, leaving `a` partly overwritten, when a pivot is not positive
// (the matrix is not numerically positive definite).
bool cholesky_in_place(double* a, int64_t n);

}  // namespace zerotune
