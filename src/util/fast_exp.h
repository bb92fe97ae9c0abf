// exp for the vectorised row loops (lens reduction, causal softmax): plain float arithmetic that
// GCC vectorises inside `#pragma omp simd` loops, unlike a call to libm's expf.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
// Compile a function for AVX-512, AVX2 and baseline x86-64; the loader picks one (GCC ifunc).
#define LENS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LENS_CLONES
#endif

namespace lens::detail {

// exp(x) for x in [-87, 0] (callers pass values minus their maximum; below -87 the result is
// clamped to exp(-87) ~ 1.6e-38, which no sum here can see). x = n ln2 + r with |r| <= ln2 / 2,
// exp(r) by its Taylor series to r^7 (truncation error < 0.35^8 / 8! ~ 6e-9 relative), 2^n put
// into the exponent bits. Measured against double exp on [-80, 0] in steps of 1e-4: worst relative
// error 1.0e-7. The rounding of n uses the 1.5 * 2^23 trick, which needs no SSE4.1 round
// instruction.
//
// exp_parts does the range reduction and the polynomial for a float or a GCC float vector type
// (attention_kernels.cpp); the callers put 2^n into the exponent bits their own way.
template <typename F>
inline F exp_parts(F x, F& n) {
  const float kLog2e = 1.44269504088896341f;
  const float kShift = 12582912.0f;          // 1.5 * 2^23
  const float kLn2Hi = 0.693145751953125f;   // ln 2 split so that n * kLn2Hi is exact
  const float kLn2Lo = 1.42860682030941723212e-6f;
  n = (x * kLog2e + kShift) - kShift;
  const F r = (x - n * kLn2Hi) - n * kLn2Lo;
  F p = r * 0.0f + 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

inline float exp_nonpositive(float x) {
  float n;
  const float p = exp_parts(std::max(x, -87.0f), n);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);  // memcpy here keeps GCC 12 from vectorising
}

}  // namespace lens::detail
