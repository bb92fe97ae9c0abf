// Rotary position embedding; see rope.h. Each formula follows transformers 5.23's
// modeling_rope_utils.py step by step, including its float32 tensor arithmetic: the frequencies of
// a scaled rope type differ from the default ones by factors that must round the same way here.
#include "nn/rope.h"

#include <cmath>

#include "lens/error.h"

namespace lens {

namespace {

const at::TensorOptions kF32 = at::TensorOptions().dtype(at::kFloat);

// arange(0, dim, 2).float() / dim: the exponent of each frequency, float32 as in transformers.
at::Tensor freq_exponents(int64_t dim) { return at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim); }

// 1 / base ** exponents with a float32 base tensor or scalar.
at::Tensor default_inv_freq(double base, int64_t dim) {
  return 1.0 / at::pow(base, freq_exponents(dim));
}

double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

std::pair<at::Tensor, double> yarn_inv_freq(const RopeConfig& r) {
  const int64_t dim = r.rotary_dim;
  const double base = r.theta;
  const double factor = r.factor ? *r.factor : static_cast<double>(r.max_position) / r.original_max_position;
  double attention_factor;
  if (r.attention_factor) {
    attention_factor = *r.attention_factor;
  } else if (r.mscale && r.mscale_all_dim && *r.mscale != 0 && *r.mscale_all_dim != 0) {
    attention_factor = yarn_mscale(factor, *r.mscale) / yarn_mscale(factor, *r.mscale_all_dim);
  } else {
    attention_factor = yarn_mscale(factor, 1.0);
  }
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(static_cast<double>(r.original_max_position) / (rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
  if (r.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // transformers: prevent a singularity
  const at::Tensor pos_freqs = at::pow(base, at::arange(0, dim, 2, kF32) / static_cast<double>(dim));  // (rd/2)
  const at::Tensor inv_extrapolation = 1.0 / pos_freqs;
  const at::Tensor inv_interpolation = 1.0 / (factor * pos_freqs);
  const at::Tensor ramp = ((at::arange(dim / 2, kF32) - low) / (high - low)).clamp(0, 1);
  const at::Tensor extrapolation_factor = 1 - ramp;
  at::Tensor inv = inv_interpolation * (1 - extrapolation_factor) + inv_extrapolation * extrapolation_factor;
  return {inv, attention_factor};
}

std::pair<at::Tensor, double> longrope_inv_freq(const RopeConfig& r, int64_t seq_len) {
  const int64_t dim = r.rotary_dim;
  const double factor = r.factor ? *r.factor : static_cast<double>(r.max_position) / r.original_max_position;
  double attention_factor;
  if (r.attention_factor) {
    attention_factor = *r.attention_factor;
  } else {
    attention_factor = factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(r.original_max_position)));
  }
  const std::vector<double>& ext = seq_len > r.original_max_position ? r.long_factor : r.short_factor;
  if (static_cast<int64_t>(ext.size()) != dim / 2)
    throw ModelError("config.json: longrope " + std::string(seq_len > r.original_max_position ? "long" : "short") +
                     "_factor has " + std::to_string(ext.size()) + " entries, the rotary dims need " +
                     std::to_string(dim / 2));
  const at::Tensor ext_factors = at::tensor(ext, at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
  const at::Tensor inv = 1.0 / (ext_factors * at::pow(r.theta, freq_exponents(dim)));
  return {inv, attention_factor};
}

at::Tensor llama3_inv_freq(const RopeConfig& r) {
  const at::Tensor inv = default_inv_freq(r.theta, r.rotary_dim);
  const double factor = *r.factor;
  const double old_ctx = static_cast<double>(r.original_max_position);
  const double low_freq_wavelen = old_ctx / r.low_freq_factor;
  const double high_freq_wavelen = old_ctx / r.high_freq_factor;
  const at::Tensor wavelen = 2 * M_PI / inv;
  at::Tensor inv_llama = at::where(wavelen > low_freq_wavelen, inv / factor, inv);
  const at::Tensor smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama;
  const at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return at::where(medium, smoothed, inv_llama);
}

std::pair<at::Tensor, double> dynamic_inv_freq(const RopeConfig& r, int64_t seq_len) {
  // dynamic_rope_update: a fresh model recomputes only when seq_len > max_position_embeddings,
  // with seq_len as an int64 tensor, so the new base is float32 tensor arithmetic.
  if (seq_len <= r.max_position) return {default_inv_freq(r.theta, r.rotary_dim), 1.0};
  const int64_t dim = r.rotary_dim;
  const double factor = *r.factor;
  const at::Tensor s = at::scalar_tensor(seq_len, at::TensorOptions().dtype(at::kLong));
  const at::Tensor ratio = (factor * s / static_cast<double>(r.max_position)) - (factor - 1);  // float32
  const at::Tensor base = r.theta * at::pow(ratio, static_cast<double>(dim) / static_cast<double>(dim - 2));
  return {1.0 / at::pow(base, freq_exponents(dim)), 1.0};
}

bool depends_on_length(const RopeConfig& r) { return r.type == "dynamic" || r.type == "longrope"; }

RopeTables make_tables(const RopeConfig& r, int64_t T, int64_t seq_len) {
  auto [inv, scaling] = rope_inv_freq(r, seq_len);
  // transformers: freqs = inv_freq[:, None] @ position_ids[None, :] in float32, emb = cat(freqs, freqs),
  // cos = emb.cos() * attention_scaling.
  const at::Tensor pos = at::arange(T, kF32);                // (T)
  const at::Tensor freqs = at::outer(pos, inv.to(at::kFloat));  // (T, rd/2)
  const at::Tensor emb = at::cat({freqs, freqs}, -1);        // (T, rd)
  RopeTables t;
  t.cos = emb.cos();
  t.sin = emb.sin();
  if (scaling != 1.0) {
    t.cos = t.cos * scaling;
    t.sin = t.sin * scaling;
  }
  return t;
}

}  // namespace

std::pair<at::Tensor, double> rope_inv_freq(const RopeConfig& r, int64_t seq_len) {
  if (r.rotary_dim < 2 || r.rotary_dim % 2 != 0)
    throw ModelError("rotary embedding with " + std::to_string(r.rotary_dim) + " dims; need an even number >= 2");
  if (r.type == "default") return {default_inv_freq(r.theta, r.rotary_dim), 1.0};
  if (r.type == "linear") return {default_inv_freq(r.theta, r.rotary_dim) / *r.factor, 1.0};
  if (r.type == "dynamic") return dynamic_inv_freq(r, seq_len);
  if (r.type == "yarn") return yarn_inv_freq(r);
  if (r.type == "longrope") return longrope_inv_freq(r, seq_len);
  if (r.type == "llama3") return {llama3_inv_freq(r), 1.0};
  if (r.type == "ntk_alpha") {
    const double dim = static_cast<double>(r.rotary_dim);
    const double base = r.theta * std::pow(*r.alpha, dim / (dim - 2));
    return {1.0 / at::pow(base, at::arange(0, r.rotary_dim, 2, kF32) / dim), 1.0};
  }
  throw ModelError("rope_type '" + r.type + "' is not implemented");
}

RopeTables RopeCache::tables(int64_t T, const at::Device& device) {
  if (depends_on_length(r_)) {
    RopeTables t = make_tables(r_, T, T);
    return {t.cos.to(device), t.sin.to(device)};
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cos_.defined() || cos_.size(0) < T || cos_.device() != device) {
    const int64_t n = std::max<int64_t>(T, cos_.defined() ? cos_.size(0) : 0);
    RopeTables t = make_tables(r_, n, n);
    cos_ = t.cos.to(device);
    sin_ = t.sin.to(device);
  }
  return {cos_.narrow(0, 0, T), sin_.narrow(0, 0, T)};
}

at::Tensor apply_rotary(const at::Tensor& x, const RopeTables& t, RopePairing pairing) {
  const int64_t T = x.size(2), dh = x.size(3), rd = t.cos.size(1);
  at::Tensor cos = t.cos.narrow(0, 0, T), sin = t.sin.narrow(0, 0, T);  // (T, rd)
  at::Tensor xr = rd == dh ? x : x.narrow(-1, 0, rd);
  at::Tensor rotated;
  if (pairing == RopePairing::kHalf) {
    const int64_t half = rd / 2;
    rotated = at::cat({-xr.narrow(-1, half, half), xr.narrow(-1, 0, half)}, -1);  // rotate_half
  } else {
    // GPT-J / GLM style: pairs (2i, 2i + 1) share frequency i; cos = first half repeated per pair.
    cos = cos.narrow(-1, 0, rd / 2).repeat_interleave(2, -1);
    sin = sin.narrow(-1, 0, rd / 2).repeat_interleave(2, -1);
    const at::Tensor pairs = xr.unflatten(-1, {rd / 2, 2});                        // (..., rd/2, 2)
    rotated = at::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);  // (-x_odd, x_even)
  }
  at::Tensor out = xr * cos + rotated * sin;
  if (rd == dh) return out;
  return at::cat({out, x.narrow(-1, rd, dh - rd)}, -1);
}

}  // namespace lens
