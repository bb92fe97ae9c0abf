// Vectorised row loops of the lens reduction (see row_reduce.h). Plain C++ loops with
// `#pragma omp simd` reductions (-fopenmp-simd: no OpenMP runtime), cloned per instruction set.
//
// Why: reduce_layer used to call libm's scalar expf and update the top-k and rank counts in the same
// loop, which kept the compiler from vectorising anything. For GPT-2 (vocab 50257) at 128 positions
// that loop took ~0.45 s of a 1.4 s run, three times the unembedding matmuls it reduces.
#include "row_reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/fast_exp.h"

namespace lens::detail {

LENS_CLONES float row_max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t v = 0; v < n; ++v) m = x[v] > m ? x[v] : m;
  return m;
}

LENS_CLONES void row_widen(const bf16_t* x, int64_t n, float* out) {
#pragma omp simd
  for (int64_t v = 0; v < n; ++v) out[v] = __builtin_bit_cast(float, static_cast<uint32_t>(x[v]) << 16);
}

int64_t row_find(const float* x, int64_t n, float value) {
  for (int64_t v = 0; v < n; ++v)
    if (x[v] == value) return v;
  return n;
}

LENS_CLONES int64_t row_count_above(const float* x, int64_t n, float threshold) {
  int64_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int64_t v = 0; v < n; ++v) count += x[v] > threshold ? 1 : 0;
  return count;
}

namespace {

// sum_v exp(z_v - z_max): float lanes within blocks of kBlock values, double across blocks.
constexpr int64_t kBlock = 512;

// Helpers are always inlined, so that each instruction-set clone of their callers gets its own
// vectorised copy (an out-of-line call runs the baseline SSE2 code).
__attribute__((always_inline)) inline double sum_exp(const float* z, int64_t n, float z_max) {
  double s = 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    float bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t v = start; v < end; ++v) bs += exp_nonpositive(z[v] - z_max);
    s += bs;
  }
  return s;
}

// One block of row_sums; x = z - z_max, so the sums stay small and well conditioned. s and a in
// float lanes, b in double ones (both vectorise).
__attribute__((always_inline)) inline void block_sums(const float* z, const float* pf, int64_t n, float z_max, float* sa, double* sb) {
  float s = 0, a = 0;
  double b = 0;  // a float32 x float32 product is exact in double: b feeds the KL's cancelling difference
#pragma omp simd reduction(+ : s, a, b)
  for (int64_t v = 0; v < n; ++v) {
    const float x = z[v] - z_max;
    const float e = exp_nonpositive(x);
    s += e;
    a += e * x;
    b += static_cast<double>(pf[v]) * static_cast<double>(x);
  }
  sa[0] = s;
  sa[1] = a;
  *sb = b;
}

}  // namespace

LENS_CLONES RowSums row_sums(const float* z, const float* pf, int64_t n, float z_max) {
  // s and a: float sums over blocks of kBlock values (16 lanes x 32 terms each), then double across
  // blocks (~1e-7 relative, the precision of float32 logits; entropy is their ratio). b in double.
  RowSums out;
  for (int64_t start = 0; start < n; start += kBlock) {
    float sa[2];
    double sb;
    block_sums(z + start, pf + start, std::min(kBlock, n - start), z_max, sa, &sb);
    out.s += sa[0];
    out.a += sa[1];
    out.b += sb;
  }
  return out;
}

LENS_CLONES RowSoftmax row_softmax(const float* z, int64_t n, float* p) {
  RowSoftmax out;
  out.max = row_max(z, n);
  out.log_s = std::log(sum_exp(z, n, out.max));
  // p = exp((z - max) - log_s): z - max is exact for the large values, and the sums below use the
  // stored (rounded) p, so that the KL's two halves carry the same rounding and cancel it.
  const float log_s = static_cast<float>(out.log_s);
  double sum_p = 0, sum_p_logp = 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    double bp = 0, bpl = 0;  // in double, as RowSums::b, with which sum_p_logp cancels in the KL
#pragma omp simd reduction(+ : bp, bpl)
    for (int64_t v = start; v < end; ++v) {
      const float logp = (z[v] - out.max) - log_s;
      const float pv = exp_nonpositive(logp);
      p[v] = pv;
      bp += pv;
      bpl += static_cast<double>(pv) * static_cast<double>(logp);
    }
    sum_p += bp;
    sum_p_logp += bpl;
  }
  out.sum_p = sum_p;
  out.sum_p_logp = sum_p_logp;
  return out;
}

LENS_CLONES double row_kl_grad(const float* z, const float* p, int64_t n, float coef, float* grad) {
  const float m = row_max(z, n);
  const float log_s = static_cast<float>(std::log(sum_exp(z, n, m)));
  double pz = 0;  // sum p (z - m - log s) = sum p log q
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    float bpz = 0;
#pragma omp simd reduction(+ : bpz)
    for (int64_t v = start; v < end; ++v) {
      const float logq = (z[v] - m) - log_s;
      grad[v] = coef * (exp_nonpositive(logq) - p[v]);
      bpz += p[v] * logq;
    }
    pz += bpz;
  }
  return pz;
}

LENS_CLONES void row_top_k(const float* x, int64_t n, int64_t k, float* top_val, int64_t* top_id) {
  for (int64_t i = 0; i < k; ++i) {
    top_val[i] = -std::numeric_limits<float>::infinity();
    top_id[i] = 0;
  }
  int64_t filled = 0;  // entries taken so far; until k are, every value goes in
  constexpr int64_t kSkipBlock = 64;
  for (int64_t start = 0; start < n; start += kSkipBlock) {
    const int64_t end = start + kSkipBlock < n ? start + kSkipBlock : n;
    if (filled >= k) {
      float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
      for (int64_t v = start; v < end; ++v) m = x[v] > m ? x[v] : m;
      if (!(m > top_val[k - 1])) continue;
    }
    for (int64_t v = start; v < end; ++v) {
      const float xv = x[v];
      if (filled >= k && !(xv > top_val[k - 1])) continue;
      int64_t i = filled < k ? filled++ : k - 1;  // insert into the descending list, later ties after
      while (i > 0 && top_val[i - 1] < xv) {
        top_val[i] = top_val[i - 1];
        top_id[i] = top_id[i - 1];
        --i;
      }
      top_val[i] = xv;
      top_id[i] = v;
    }
  }
}

}  // namespace lens::detail
