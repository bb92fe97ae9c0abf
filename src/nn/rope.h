// Rotary position embedding, every rope type transformers 5.23 implements (modeling_rope_utils.py):
// default, linear, dynamic (NTK, depends on the sequence length), yarn, longrope (short / long
// factors chosen by the sequence length) and llama3, with partial rotary and both pairings.
// The inverse frequencies are computed with the same float32 tensor operations as transformers,
// so the angles agree to the last bit wherever libtorch's kernels do. What this file does not do:
// multimodal (mrope), proportional or per-position-id variants; the config reader refuses them.
// Shapes: T positions, rd rotary dims of a head (rd / 2 frequencies).
#pragma once

#include <ATen/ATen.h>

#include <mutex>
#include <utility>

#include "lens/config.h"

namespace lens {

/// (inv_freq (rd / 2) float32, attention scaling) for a forward pass over `seq_len` tokens starting
/// at position 0 on a freshly loaded model (dynamic and longrope depend on seq_len).
std::pair<at::Tensor, double> rope_inv_freq(const RopeConfig& r, int64_t seq_len);

/// cos / sin tables for positions 0..T-1, (T, rd) float32 in the rotate_half layout
/// [f_0 .. f_{rd/2-1}, f_0 .. f_{rd/2-1}], already multiplied by the attention scaling.
struct RopeTables {
  at::Tensor cos, sin;
};

/// Rotates the first rd dims of each head of x (B, H, T, dh) by the tables (T rows used from row 0).
at::Tensor apply_rotary(const at::Tensor& x, const RopeTables& t, RopePairing pairing);

/// The tables of one RopeConfig, cached for the lengths that do not change the frequencies.
class RopeCache {
 public:
  RopeCache() = default;
  explicit RopeCache(const RopeConfig& r) : r_(r) {}
  const RopeConfig& config() const { return r_; }
  /// Tables for a T-token forward pass on `device`. Thread-safe.
  RopeTables tables(int64_t T, const at::Device& device);

 private:
  RopeConfig r_;
  std::mutex mu_;
  at::Tensor cos_, sin_;  // (cached_T, rd) for types whose frequencies do not depend on T
};

}  // namespace lens
