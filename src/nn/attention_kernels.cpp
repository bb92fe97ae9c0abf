// CPU attention kernels (see layers.h): a causal (and sliding-window) softmax of materialised
// scores in one pass per row, where masked_fill(-inf) + softmax made four; and a fused causal
// attention for small head dims that never materialises the (T, T) scores.
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "nn/layers.h"
#include "util/fast_exp.h"

namespace lens {

namespace {

// Row of query i: keys [lo, i] get softmax(s), the others 0.
LENS_CLONES void softmax_row(float* s, int64_t n_key, int64_t lo, int64_t hi) {
  float* row = s + lo;       // the visible keys, as a zero-based loop (GCC vectorises that form)
  const int64_t n = hi + 1 - lo;
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = row[j] > m ? row[j] : m;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) {
    const float e = detail::exp_nonpositive(row[j] - m);
    row[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  for (int64_t j = 0; j < lo; ++j) s[j] = 0;
  for (int64_t j = hi + 1; j < n_key; ++j) s[j] = 0;
}

constexpr int64_t kLanes = 16;  // keys per block: one AVX-512 register, two AVX2 ones

// GCC vector types: arithmetic on them stays in registers (a float[16] accumulator in a loop
// over d was kept in memory, which made this kernel no faster than the two batched matmuls).
typedef float VecF __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t VecI __attribute__((vector_size(kLanes * sizeof(int32_t))));

__attribute__((always_inline)) inline VecF load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

__attribute__((always_inline)) inline void store(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }

// Horizontal sum and max by halving (4 vector steps, not 15 scalar ones: they run once per head
// dim and query row).
typedef float VecF8 __attribute__((vector_size(8 * sizeof(float))));
typedef float VecF4 __attribute__((vector_size(4 * sizeof(float))));

__attribute__((always_inline)) inline VecF4 fold_to_4(VecF v, bool max) {
  const VecF8 lo8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const VecF8 hi8 = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const VecF8 a = max ? (lo8 > hi8 ? lo8 : hi8) : lo8 + hi8;
  const VecF4 lo4 = __builtin_shufflevector(a, a, 0, 1, 2, 3);
  const VecF4 hi4 = __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return max ? (lo4 > hi4 ? lo4 : hi4) : lo4 + hi4;
}

__attribute__((always_inline)) inline float hsum(VecF v) {
  const VecF4 b = fold_to_4(v, false);
  return (b[0] + b[1]) + (b[2] + b[3]);
}

__attribute__((always_inline)) inline float hmax(VecF v) {
  const VecF4 b = fold_to_4(v, true);
  const float x = b[0] > b[1] ? b[0] : b[1], y = b[2] > b[3] ? b[2] : b[3];
  return x > y ? x : y;
}

// detail::exp_nonpositive on a vector (see util/fast_exp.h).
__attribute__((always_inline)) inline VecF exp_nonpositive(VecF x) {
  const VecF lowest = VecF{} - 87.0f;
  VecF n;
  const VecF p = detail::exp_parts(x < lowest ? lowest : x, n);
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
  VecF scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// One query row of fused attention: q (dh); keys and values transposed, kt and vt (dh, Tp) with
// row stride Tp, zero-padded so that blocks of kLanes keys may run past the last visible key;
// visible keys [lo, lo + n); s is scratch for n rounded up to kLanes scores; writes out (dh).
LENS_CLONES void attend_row(const float* q, const float* kt, const float* vt, int64_t Tp, int64_t dh, int64_t lo,
                            int64_t n, float* s, float* out) {
  const int64_t blocks = (n + kLanes - 1) / kLanes;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  VecF lane{};
  for (int64_t l = 0; l < kLanes; ++l) lane[l] = static_cast<float>(l);
  VecF vmax = VecF{} + kNegInf;
  for (int64_t jb = 0; jb < blocks; ++jb) {
    VecF acc{};
    for (int64_t d = 0; d < dh; ++d) acc += q[d] * load(kt + d * Tp + lo + jb * kLanes);
    // Keys past the last visible one score -inf (their padded k is 0, not masked).
    acc = lane < static_cast<float>(n - jb * kLanes) ? acc : VecF{} + kNegInf;
    store(s + jb * kLanes, acc);
    vmax = acc > vmax ? acc : vmax;
  }
  const float m = hmax(vmax);
  VecF vsum{};
  for (int64_t jb = 0; jb < blocks; ++jb) {
    const VecF x = load(s + jb * kLanes);
    VecF e = exp_nonpositive(x - m);
    e = x == kNegInf ? VecF{} : e;  // exactly 0 for the masked keys
    store(s + jb * kLanes, e);
    vsum += e;
  }
  const float inv = 1.0f / hsum(vsum);
  for (int64_t d = 0; d < dh; ++d) {
    const float* vr = vt + d * Tp + lo;
    VecF acc{};
    for (int64_t jb = 0; jb < blocks; ++jb) acc += load(s + jb * kLanes) * load(vr + jb * kLanes);
    out[d] = hsum(acc) * inv;
  }
}

}  // namespace

at::Tensor fused_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t window) {
  TORCH_CHECK(q.device().is_cpu() && q.scalar_type() == at::kFloat && q.dim() == 4,
              "fused_causal_attention: q must be (B, Hkv, rep*T, dh) float32 on the CPU");
  const int64_t B = k.size(0), G = k.size(1), T = k.size(2), dh = k.size(3);
  const int64_t rows = q.size(2);  // rep * T
  at::Tensor qc = q.contiguous();
  // Keys and values transposed to (B, G, dh, Tp), zero-padded by kLanes past T (see attend_row).
  const int64_t Tp = T + kLanes;
  at::Tensor kt = at::zeros({B, G, dh, Tp}, k.options());
  at::Tensor vt = at::zeros({B, G, dh, Tp}, v.options());
  kt.narrow(3, 0, T).copy_(k.transpose(-1, -2));
  vt.narrow(3, 0, T).copy_(v.transpose(-1, -2));
  at::Tensor out = at::empty_like(qc);  // (B, G, rep*T, dh)
  const float* qp = qc.data_ptr<float>();
  const float* kp = kt.data_ptr<float>();
  const float* vp = vt.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * G * rows, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(Tp));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bg = r / rows;  // (b, g) pair
      const int64_t i = (r % rows) % T;  // query position
      const int64_t lo = window > 0 && i >= window ? i - window + 1 : 0;
      attend_row(qp + r * dh, kp + bg * dh * Tp, vp + bg * dh * Tp, Tp, dh, lo, i + 1 - lo, scratch.data(), op + r * dh);
    }
  });
  return out;
}

void causal_softmax_(at::Tensor& scores, int64_t window) {
  TORCH_CHECK(scores.device().is_cpu() && scores.scalar_type() == at::kFloat && scores.is_contiguous(),
              "causal_softmax_: scores must be contiguous float32 on the CPU");
  const int64_t T = scores.size(-1);
  const int64_t rows = scores.numel() / T;
  float* base = scores.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % T;  // query position: rows are (..., T queries) x T keys
      const int64_t lo = window > 0 && i >= window ? i - window + 1 : 0;
      softmax_row(base + r * T, T, lo, i);
    }
  });
}

}  // namespace lens
