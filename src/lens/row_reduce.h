// Vectorised loops over one row of V lens logits, used by reduce_layer (lens/lens.h). Each loop is
// compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC target_clones), so one
// binary runs everywhere and uses the wide units where they exist.
#pragma once

#include <cstdint>

namespace lens::detail {

/// Sums over v of one row, with x_v = z_v - z_max (z_max = max_v z_v, passed in), e_v = exp(x_v) and
/// pf the final layer's probs:
struct RowSums {
  double s = 0;    // sum e
  double a = 0;    // sum e x
  double b = 0;    // sum pf x
};

/// A bfloat16 as stored (c10::BFloat16's bits): the high half of a float32.
using bf16_t = uint16_t;

/// out_v = x_v widened to float32 (exact). A bfloat16 model's unembedding writes bfloat16 logits; the
/// reduction widens one row at a time into a buffer that stays in cache, instead of a float32 copy of
/// every layer's logits in memory.
void row_widen(const bf16_t* x, int64_t n, float* out);

/// max_v x_v.
float row_max(const float* x, int64_t n);

/// Index of the first v with x_v == value (n if none).
int64_t row_find(const float* x, int64_t n, float value);

/// How many v have x_v > threshold.
int64_t row_count_above(const float* x, int64_t n, float threshold);

/// The RowSums of z (lens logits) and pf (final probs) given z_max. exp is a
/// polynomial with relative error below 2e-7 on [-87, 0] (float32 round-off); s and a are float within
/// blocks of 512 values and double across blocks; b is double throughout (it cancels in the KL).
RowSums row_sums(const float* z, const float* pf, int64_t n, float z_max);

/// softmax(z) written to p, and the pieces of its log: log p_v = z_v - max - log_s.
struct RowSoftmax {
  float max = 0;
  double log_s = 0;       // log sum_v exp(z_v - max)
  double sum_p = 0;       // sum_v p_v of the stored (float) p: 1 up to round-off
  double sum_p_logp = 0;  // sum_v p_v log p_v (minus the entropy)
};
RowSoftmax row_softmax(const float* z, int64_t n, float* p);

/// Tuned-lens training: for one row of lens logits z against the final probs p, writes
/// grad = coef * (softmax(z) - p) (the KL's gradient, scaled) and returns sum_v p_v log q_v with
/// q = softmax(z), so that KL(p || q) = sum p log p - the result. Three reads of z, one of p.
double row_kl_grad(const float* z, const float* p, int64_t n, float coef, float* grad);

/// The k largest values of x, descending, with their indices (ties: lower index first). Blocks whose
/// maximum cannot enter the current top-k are skipped after one vectorised max.
void row_top_k(const float* x, int64_t n, int64_t k, float* top_val, int64_t* top_id);

}  // namespace lens::detail
